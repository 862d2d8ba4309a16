"""Builds the nft application: in memory for application tests, on PostgreSQL for the runtime.

The one place adapters are chosen; the application has none yet, so both builds are the bare
event store.
"""

from __future__ import annotations

from audifi_kit.eventstore import IN_MEMORY, EventStore, open_event_store
from audifi_kit.settings import Settings

from audifi_nft.application import NftApplication


def in_memory() -> NftApplication:
    """The application on eventsourcing's in-memory persistence: no database, no I/O."""
    return NftApplication(IN_MEMORY)


async def on_postgres(settings: Settings) -> EventStore[NftApplication]:
    """The application on the service's own PostgreSQL database (created when missing)."""
    return await open_event_store("nft", NftApplication, settings)
