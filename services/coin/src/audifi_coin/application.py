"""The coin service's eventsourcing application: one method per command."""

from audifi_kit.eventstore import ServiceApplication


class CoinApplication(ServiceApplication):
    """Artist coins, staking, liquidity pools and the lottery."""
