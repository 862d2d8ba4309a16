"""Which domain events a service publishes, and as which integration events.

A service declares one `OutboxMapping`: for each public domain event class, a function that
builds the integration event (or returns None to keep that occurrence private). Domain event
classes without a mapping are private and never leave the service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from audifi_events import IntegrationEvent, encode, registry
from eventsourcing.utils import get_topic

from audifi_kit.messages import Message
from audifi_kit.metadata import EventMetadata

F = TypeVar("F", bound=Callable[[Any], IntegrationEvent | None])


class OutboxMapping:
    def __init__(self, service: str) -> None:
        self.service = service
        self._by_topic: dict[str, Callable[[Any], IntegrationEvent | None]] = {}

    def maps(self, *domain_event_classes: type) -> Callable[[F], F]:
        def decorate(fn: F) -> F:
            for cls in domain_event_classes:
                self._by_topic[get_topic(cls)] = fn
            return fn

        return decorate

    def publishes(self, topic: str) -> bool:
        return topic in self._by_topic

    def to_integration_event(self, topic: str, domain_event: Any) -> IntegrationEvent | None:
        fn = self._by_topic.get(topic)
        return None if fn is None else fn(domain_event)

    def to_message(
        self, notification_id: int, event: IntegrationEvent, event_meta: EventMetadata, when: Any
    ) -> Message:
        event_type = registry.type_of(event)
        kwargs: dict[str, Any] = {}
        if when is not None:
            kwargs["timestamp"] = when
        return Message(
            message_id=f"{self.service}-{notification_id}",
            routing_key=event_type.routing_key,
            body=encode(event),
            correlation_id=event_meta.correlation_id,
            causation_id=event_meta.causation_id,
            schema_version=event_type.schema_version,
            traceparent=event_meta.traceparent,
            **kwargs,
        )
