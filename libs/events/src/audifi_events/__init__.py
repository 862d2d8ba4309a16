"""AudiFi's published language: one module per producing service, all in one registry."""

from audifi_events.registry import (
    EventType,
    IntegrationEvent,
    Registry,
    UndecodableEvent,
    UnknownEventType,
    encode,
    integration_event,
    registry,
)

__all__ = [
    "EventType",
    "IntegrationEvent",
    "Registry",
    "UndecodableEvent",
    "UnknownEventType",
    "encode",
    "integration_event",
    "registry",
]
