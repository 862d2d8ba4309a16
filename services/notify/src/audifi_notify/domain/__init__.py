"""The notify service's aggregates and rules: plain Python, no I/O, no framework."""

from audifi_notify.domain.notification import (
    Notification,
    NotificationClosed,
    RetryPolicy,
    Status,
    Template,
    notification_id_for,
)
from audifi_notify.domain.recipient import Recipient, RecipientErased

__all__ = [
    "Notification",
    "NotificationClosed",
    "Recipient",
    "RecipientErased",
    "RetryPolicy",
    "Status",
    "Template",
    "notification_id_for",
]
