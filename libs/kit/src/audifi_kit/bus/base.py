"""What every bus transport promises (RabbitMQ in production, in-process when embedded).

Semantics, identical for both transports and checked by one contract test suite:

* `publish` routes each message through the topic exchange `audifi.events` by its routing key
  (`*` matches one word, `#` zero or more) and returns only when every message is confirmed;
  a message that matches no queue is dropped, as AMQP does.
* A consumer queue is declared from a `QueueSpec`; declaring it again is harmless.
* A handler gets a `Delivery` and must settle it exactly once: `ack()` removes it; `retry(error)`
  schedules it again after `retry_delays_ms[attempt - 1]` with the attempt counter raised, or
  parks it once the delays are used up; `park(error)` moves it to `<queue>.parking` at once,
  with the error and source queue in its headers. A handler that raises without settling is
  treated as `retry(str(exc))`.
* Parking queues are inspected, redriven (back to their queue, attempt reset to 1) or discarded.
* At most `prefetch` unsettled deliveries are in flight per consumer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from audifi_kit.messages import Message

log = logging.getLogger(__name__)

EXCHANGE = "audifi.events"


def parking_queue(queue: str) -> str:
    return f"{queue}.parking"


def retry_queue(queue: str, index: int) -> str:
    return f"{queue}.retry.{index}"


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A consumer's durable queue: `<consumer>.<purpose>`, bound to routing-key patterns."""

    name: str
    bindings: tuple[str, ...]
    retry_delays_ms: tuple[int, ...] = (1_000, 5_000, 30_000)

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays_ms) + 1


class Delivery(Protocol):
    message: Message
    queue: str
    settled: bool

    @property
    def attempt(self) -> int: ...

    @property
    def redelivered(self) -> bool: ...

    async def ack(self) -> None: ...

    async def retry(self, error: str) -> None: ...

    async def park(self, error: str) -> None: ...


Handler = Callable[[Delivery], Awaitable[None]]


async def run_handler(handler: Handler, delivery: Delivery) -> None:
    """Run a handler under the contract: raising or returning unsettled means retry."""
    try:
        await handler(delivery)
    except Exception as exc:
        if delivery.settled:
            log.exception("handler for %s failed after settling", delivery.queue)
            return
        error = str(exc) or type(exc).__name__
    else:
        if delivery.settled:
            return
        log.error("handler for %s returned without settling; retrying", delivery.queue)
        error = "handler returned without settling the delivery"
    try:
        await delivery.retry(error)
    except Exception:
        log.exception("could not retry a message of %s; it stays unsettled", delivery.queue)


class Subscription(Protocol):
    async def cancel(self) -> None: ...


class PublishError(Exception):
    """The broker did not confirm every message; the caller must publish them again."""


class Bus(Protocol):
    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(self, messages: Sequence[Message]) -> None:
        """Publish through the exchange; return once all are confirmed, else raise PublishError."""

    async def send_to_queue(self, queue: str, messages: Sequence[Message]) -> None:
        """Deliver straight to one queue (republish to a single consumer), confirmed."""

    async def declare_queue(self, spec: QueueSpec) -> None: ...

    async def consume(
        self, queue: str, handler: Handler, *, prefetch: int = 100
    ) -> Subscription: ...

    async def queue_depth(self, queue: str) -> int:
        """Messages ready in the queue (not counting unacked ones in flight)."""

    async def parked(self, queue: str, limit: int = 100) -> list[Message]:
        """Peek at `<queue>.parking` without removing anything."""

    async def redrive(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        """Move parked messages (all, or those ids) back to `queue` with attempt 1."""

    async def discard(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        """Drop parked messages (all, or those ids) for good."""
