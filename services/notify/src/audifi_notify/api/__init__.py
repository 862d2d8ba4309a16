"""Notify's HTTP API: its seal key, the dev mailbox (embedded mode) and notification history."""

from audifi_notify.api.dev_mail import dev_mail
from audifi_notify.api.history import NotificationController
from audifi_notify.api.seal_key import seal_key

__all__ = ["NotificationController", "dev_mail", "seal_key"]
