"""Notify's read models, fed from its own notification log."""

from audifi_notify.projections.history import NotificationHistory

__all__ = ["NotificationHistory"]
