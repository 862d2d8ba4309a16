"""The vstudio service's eventsourcing application: one method per command."""

from audifi_kit.eventstore import ServiceApplication


class VstudioApplication(ServiceApplication):
    """V Studio: live sessions, decisions, votes and the master lock, with their WebSocket rooms."""
