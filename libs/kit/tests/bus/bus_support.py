"""Helpers shared by the bus tests: a per-test namespace of queues and routing keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from audifi_kit.bus import Bus, Delivery, QueueSpec, Subscription
from audifi_kit.messages import Message


@dataclass
class BusTestEnv:
    """Queue names and routing keys unique to one test, so tests never see each other's
    messages on a shared broker; `close()` cancels subscriptions and deletes the queues."""

    bus: Bus
    prefix: str
    specs: list[QueueSpec] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)

    def key(self, suffix: str) -> str:
        return f"{self.prefix}.{suffix}"

    def message(self, message_id: str, key: str = "thing.happened", **kw: Any) -> Message:
        return Message(message_id=message_id, routing_key=self.key(key), body=b"{}", **kw)

    async def queue(
        self, purpose: str, *patterns: str, delays: tuple[int, ...] = (50, 100)
    ) -> QueueSpec:
        spec = QueueSpec(
            name=f"{self.prefix}.{purpose}",
            bindings=tuple(self.key(p) for p in patterns),
            retry_delays_ms=delays,
        )
        await self.bus.declare_queue(spec)
        self.specs.append(spec)
        return spec

    async def consume(
        self, spec: QueueSpec, handler: Callable[[Delivery], Awaitable[None]], prefetch: int = 100
    ) -> Subscription:
        subscription = await self.bus.consume(spec.name, handler, prefetch=prefetch)
        self.subscriptions.append(subscription)
        return subscription

    async def close(self) -> None:
        for subscription in self.subscriptions:
            await subscription.cancel()
        for spec in self.specs:
            await self.bus.delete_queue(spec)  # type: ignore[attr-defined]
        await self.bus.close()
