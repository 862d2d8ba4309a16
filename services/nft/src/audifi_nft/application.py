"""The nft service's eventsourcing application: one method per command."""

from audifi_kit.eventstore import ServiceApplication


class NftApplication(ServiceApplication):
    """Masters, IPOs, share holdings, distributions, funding projects and milestones, content."""
