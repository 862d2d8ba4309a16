"""Builds the vstudio application: in memory for application tests, on PostgreSQL for the runtime.

The one place adapters are chosen; the application has none yet, so both builds are the bare
event store.
"""

from __future__ import annotations

from audifi_kit.eventstore import IN_MEMORY, EventStore, open_event_store
from audifi_kit.settings import Settings

from audifi_vstudio.application import VstudioApplication


def in_memory() -> VstudioApplication:
    """The application on eventsourcing's in-memory persistence: no database, no I/O."""
    return VstudioApplication(IN_MEMORY)


async def on_postgres(settings: Settings) -> EventStore[VstudioApplication]:
    """The application on the service's own PostgreSQL database (created when missing)."""
    return await open_event_store("vstudio", VstudioApplication, settings)
