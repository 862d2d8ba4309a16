"""Who caused an event: the request or message id that leads to each stored domain event.

The values live in a context variable that the HTTP layer (request id) and the inbox consumer
(the consumed message) set; `asyncio.to_thread` copies the context, so the event store's
worker thread sees them. They travel inside the stored event (see `MetadataMapper`) and the
outbox relay puts them on the integration event's envelope (ARCHITECTURE.md §5.3).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EventMetadata:
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None

    def as_dict(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (
                ("correlation_id", self.correlation_id),
                ("causation_id", self.causation_id),
                ("traceparent", self.traceparent),
            )
            if v is not None
        }

    @classmethod
    def from_dict(cls, data: dict[str, str] | None) -> EventMetadata:
        if not data:
            return EMPTY
        return cls(data.get("correlation_id"), data.get("causation_id"), data.get("traceparent"))


EMPTY = EventMetadata()
current: ContextVar[EventMetadata] = ContextVar("audifi_event_metadata", default=EMPTY)


@contextmanager
def caused_by(metadata: EventMetadata) -> Iterator[EventMetadata]:
    token = current.set(metadata)
    try:
        yield metadata
    finally:
        current.reset(token)
