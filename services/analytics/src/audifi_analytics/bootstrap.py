"""Builds the analytics application: in memory for application tests, on PostgreSQL for the runtime.

The one place adapters are chosen; the application has none yet, so both builds are the bare
event store.
"""

from __future__ import annotations

from audifi_kit.eventstore import IN_MEMORY, EventStore, open_event_store
from audifi_kit.settings import Settings

from audifi_analytics.application import AnalyticsApplication


def in_memory() -> AnalyticsApplication:
    """The application on eventsourcing's in-memory persistence: no database, no I/O."""
    return AnalyticsApplication(IN_MEMORY)


async def on_postgres(settings: Settings) -> EventStore[AnalyticsApplication]:
    """The application on the service's own PostgreSQL database (created when missing)."""
    return await open_event_store("analytics", AnalyticsApplication, settings)
