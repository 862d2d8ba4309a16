"""The notify service's eventsourcing application: one method per command."""

from audifi_kit.eventstore import ServiceApplication


class NotifyApplication(ServiceApplication):
    """E-mail: each message a Notification (pending, sent, failed), sent over SMTP from
    templates.
    """
