"""The analytics service's eventsourcing application: one method per command."""

from audifi_kit.eventstore import ServiceApplication


class AnalyticsApplication(ServiceApplication):
    """Read models over every service's events: dashboards, campaigns, anomalies."""
