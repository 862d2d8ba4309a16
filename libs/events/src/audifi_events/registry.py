"""The published language's backbone: routing key <-> Struct type <-> schema version.

Every integration event is a frozen msgspec Struct declared with `@integration_event`. Its
routing key `<service>.<aggregate>.<event>` is also its AMQP `type`; the schema version says
which shape the body has, so a consumer can decode an older message by asking for the exact
(key, version) pair it received.

A shape that was replaced (a field renamed, an event renamed) stays registered with an
`upcast` to its successor: `decode` hands consumers the current shape whichever one a message
was published in, so a message still queued, parked or redriven from before the change is
read like a new one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import msgspec


class IntegrationEvent(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Base of every published event. Bodies are camelCase JSON (ARCHITECTURE §9).

    Subclasses repeat `kw_only=True` (msgspec does not inherit it; `register` checks).
    """

    routing_key: ClassVar[str]
    schema_version: ClassVar[int]


E = TypeVar("E", bound=type[IntegrationEvent])


class UnknownEventType(LookupError):
    pass


class UndecodableEvent(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class EventType:
    routing_key: str
    schema_version: int
    struct: type[IntegrationEvent]
    summary: str
    # A request other services send TO the key's service (payment.order.requested: nft and
    # coin ask payment to sell), rather than a fact the key's service publishes.
    senders: tuple[str, ...] = ()

    @property
    def producer(self) -> str:
        return self.routing_key.split(".", 1)[0]


class Registry:
    def __init__(self) -> None:
        self._by_key: dict[tuple[str, int], EventType] = {}
        self._latest: dict[str, EventType] = {}
        self._by_struct: dict[type[IntegrationEvent], EventType] = {}
        self._decoders: dict[type[IntegrationEvent], msgspec.json.Decoder[Any]] = {}
        self._upcasts: dict[type[IntegrationEvent], Callable[[Any], IntegrationEvent]] = {}

    def register(
        self,
        routing_key: str,
        version: int = 1,
        *,
        upcast: Callable[[Any], IntegrationEvent] | None = None,
        senders: tuple[str, ...] = (),
    ) -> Callable[[E], E]:
        """Declares a Struct as the body of `routing_key` at `version`. `upcast` turns a
        superseded shape into its successor's (which `decode` then answers). `senders`: the
        services that send it to the key's service (a request), when it is not that service's
        own published fact."""
        parts = routing_key.split(".")
        if len(parts) != 3 or not all(p.replace("_", "").isalnum() for p in parts):
            raise ValueError(f"routing key must be <service>.<aggregate>.<event>: {routing_key!r}")

        def decorate(struct: E) -> E:
            if not issubclass(struct, IntegrationEvent):
                raise TypeError(f"{struct.__name__} must subclass IntegrationEvent")
            if struct.__match_args__:  # msgspec does not inherit kw_only
                raise TypeError(
                    f"declare {struct.__name__}(IntegrationEvent, kw_only=True): "
                    "event fields are keyword-only"
                )
            if (routing_key, version) in self._by_key:
                raise ValueError(f"{routing_key} v{version} is registered twice")
            struct.routing_key = routing_key
            struct.schema_version = version
            event_type = EventType(
                routing_key, version, struct, (struct.__doc__ or "").strip(), tuple(senders)
            )
            self._by_key[(routing_key, version)] = event_type
            self._by_struct[struct] = event_type
            latest = self._latest.get(routing_key)
            if latest is None or latest.schema_version < version:
                self._latest[routing_key] = event_type
            self._decoders[struct] = msgspec.json.Decoder(struct)
            if upcast is not None:
                self._upcasts[struct] = upcast
            return struct

        return decorate

    def __iter__(self) -> Iterator[EventType]:
        return iter(sorted(self._by_key.values(), key=lambda t: (t.routing_key, t.schema_version)))

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, routing_key: str, version: int | None = None) -> EventType:
        found = (
            self._latest.get(routing_key)
            if version is None
            else self._by_key.get((routing_key, version))
        )
        if found is None:
            label = routing_key if version is None else f"{routing_key} v{version}"
            raise UnknownEventType(f"no integration event {label} is registered")
        return found

    def type_of(self, event: IntegrationEvent) -> EventType:
        try:
            return self._by_struct[type(event)]
        except KeyError:
            raise UnknownEventType(f"{type(event).__name__} is not registered") from None

    def decode(self, routing_key: str, version: int, body: bytes) -> IntegrationEvent:
        """The event in its current shape (a superseded one upcast)."""
        event_type = self.get(routing_key, version)
        try:
            event: IntegrationEvent = self._decoders[event_type.struct].decode(body)
        except msgspec.DecodeError as exc:
            raise UndecodableEvent(f"{routing_key} v{version}: {exc}") from exc
        while (upcast := self._upcasts.get(type(event))) is not None:
            event = upcast(event)
        return event


_encoder = msgspec.json.Encoder()


def encode(event: IntegrationEvent) -> bytes:
    return _encoder.encode(event)


registry = Registry()
integration_event = registry.register
