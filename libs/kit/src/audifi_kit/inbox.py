"""Inbox consumers: other services' integration events, each applied exactly once.

A consumer is `<service>.<purpose>`: one durable queue bound to the routing-key patterns of
its handlers. Every delivery is handled in one asyncpg transaction that also inserts
`(consumer, message_id)` into `kit_inbox`; a duplicate finds the row there, is acknowledged
and skipped. A handler that raises is retried with growing delays, then parked with the error
in a header; a message that cannot be decoded is parked at once (ARCHITECTURE.md §5.4).

A handler that changes the service's *event store* instead declares `store=True`: it runs
outside the asyncpg transaction and saves through `ctx.save(...)`, which writes the same inbox
row inside the event store's own transaction.

Under load the deliveries waiting for a transaction are applied together: one transaction, one
multi-row inbox insert, the handlers in arrival order, then each is acked. If any handler of a
batch raises, the batch rolls back and each of its messages is applied alone, so one bad message
is retried by itself and the others commit. Each message is still applied exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from audifi_events import IntegrationEvent, Registry, UndecodableEvent, UnknownEventType
from audifi_events import registry as default_registry
from eventsourcing.persistence import IntegrityError

from audifi_kit import metadata as meta
from audifi_kit.bus import Bus, Delivery, QueueSpec, Subscription
from audifi_kit.eventstore import INBOX_TABLE, EventStore
from audifi_kit.messages import Message
from audifi_kit.topics import topic_matches

log = logging.getLogger(__name__)

INBOX_DDL = f"""
CREATE TABLE IF NOT EXISTS {INBOX_TABLE} (
    consumer text NOT NULL,
    message_id text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
)
"""


@dataclass(slots=True)
class HandlerContext:
    consumer: str
    message: Message
    conn: asyncpg.Connection | None = None
    store: EventStore[Any] | None = None

    @property
    def metadata(self) -> meta.EventMetadata:
        """What events caused by this message carry: same correlation, caused by this message."""
        return meta.EventMetadata(
            correlation_id=self.message.correlation_id,
            causation_id=self.message.message_id,
            traceparent=self.message.traceparent,
        )

    async def save(self, *aggregates: Any) -> None:
        """Save aggregates to the service's event store together with this message's inbox row."""
        if self.store is None:
            raise RuntimeError("save() is for handlers declared with store=True")
        inbox = (self.consumer, self.message.message_id)
        await self.store.call(self.store.app.save, *aggregates, inbox=inbox)


EventHandler = Callable[[Any, HandlerContext], Awaitable[None]]


@dataclass(slots=True)
class _Route:
    pattern: str
    handler: EventHandler
    store: bool


@dataclass
class Consumer:
    """The integration events one service consumes for one purpose."""

    service: str
    purpose: str
    retry_delays_ms: tuple[int, ...] = (1_000, 5_000, 30_000)
    registry: Registry = field(default=default_registry)
    _routes: list[_Route] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.service}.{self.purpose}"

    @property
    def spec(self) -> QueueSpec:
        return QueueSpec(
            self.name,
            tuple(dict.fromkeys(r.pattern for r in self._routes)),
            self.retry_delays_ms,
        )

    def handler(
        self, pattern: str, *, store: bool = False
    ) -> Callable[[EventHandler], EventHandler]:
        def decorate(fn: EventHandler) -> EventHandler:
            self._routes.append(_Route(pattern, fn, store))
            return fn

        return decorate

    def route(self, routing_key: str) -> _Route | None:
        for r in self._routes:
            if topic_matches(r.pattern, routing_key):
                return r
        return None


class _HandlerFailed(Exception):
    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(str(error))
        self.index, self.error = index, error


@dataclass(slots=True)
class _Waiting:
    route: _Route
    event: IntegrationEvent
    message: Message
    done: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class InboxWorker:
    """Runs one Consumer against a bus, with its inbox in the service's database."""

    def __init__(
        self,
        consumer: Consumer,
        bus: Bus,
        pool: asyncpg.Pool,
        *,
        store: EventStore[Any] | None = None,
        prefetch: int = 500,
        max_batch: int = 500,
    ) -> None:
        self.consumer = consumer
        self.bus = bus
        self.pool = pool
        self.store = store
        self.prefetch = prefetch
        self.max_batch = max_batch
        self.handled = 0
        self.duplicates = 0
        self.parked = 0
        self.batches = 0
        self._subscription: Subscription | None = None
        self._waiting: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._batcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(INBOX_DDL)
        await self.bus.declare_queue(self.consumer.spec)
        self._batcher = asyncio.get_running_loop().create_task(self._apply_batches())
        self._subscription = await self.bus.consume(
            self.consumer.name, self.deliver, prefetch=self.prefetch
        )

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.cancel()  # waits for the deliveries in hand
            self._subscription = None
        if self._batcher is not None:
            self._batcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._batcher
            self._batcher = None

    async def deliver(self, delivery: Delivery) -> None:
        message = delivery.message
        try:
            event = self.consumer.registry.decode(
                message.routing_key, message.schema_version, message.body
            )
        except (UnknownEventType, UndecodableEvent) as exc:
            self.parked += 1
            log.error("%s: parking undecodable %s: %s", self.consumer.name, message.message_id, exc)
            await delivery.park(f"undecodable: {exc}")
            return
        route = self.consumer.route(message.routing_key)
        if route is None:  # bound by an older deployment's pattern: nothing to do here now
            await delivery.ack()
            return
        try:
            if route.store:
                applied = await self._apply_to_store(route, event, message)
            else:
                waiting = _Waiting(route, event, message)
                self._waiting.put_nowait(waiting)
                applied = await waiting.done
        except Exception as exc:
            log.warning(
                "%s: %s attempt %d failed: %r",
                self.consumer.name,
                message.message_id,
                delivery.attempt,
                exc,
            )
            if delivery.attempt >= self.consumer.spec.max_attempts:
                self.parked += 1
            await delivery.retry(f"{type(exc).__name__}: {exc}")
            return
        if applied:
            self.handled += 1
        else:
            self.duplicates += 1
        await delivery.ack()

    async def _apply_batches(self) -> None:
        """Take every delivery waiting (up to max_batch) and apply them in one transaction."""
        while True:
            batch = [await self._waiting.get()]
            while len(batch) < self.max_batch and not self._waiting.empty():
                batch.append(self._waiting.get_nowait())
            while batch:
                batch = await self._apply_batch(batch)

    async def _apply_batch(self, batch: list[_Waiting]) -> list[_Waiting]:
        """Apply a batch in one transaction; answer what must be applied next, at once.

        When a handler fails the batch rolls back. The failing message is retried by itself
        (its handler ran once for this attempt, as it would alone); the ones before it ran
        and are applied again together straight away, on their own, so that a stream of
        retried poisoned messages can never keep the good ones from committing; the ones
        after it have not run yet and go back to the head of the waiting line.
        """
        batch = [w for w in batch if not w.done.done()]  # a cancelled delivery's task
        if not batch:
            return []
        try:
            if len(batch) == 1:
                only = batch[0]
                outcomes = [await self._apply(only.route, only.event, only.message)]
            else:
                outcomes = await self._apply_together(batch)
        except asyncio.CancelledError:
            for w in batch:
                if not w.done.done():
                    w.done.cancel()
            raise
        except _HandlerFailed as failed:
            if not batch[failed.index].done.done():
                batch[failed.index].done.set_exception(failed.error)
            self._requeue(batch[failed.index + 1 :])
            return batch[: failed.index]
        except Exception as exc:  # the inbox insert itself: each is retried
            for w in batch:
                if not w.done.done():
                    w.done.set_exception(exc)
            return []
        self.batches += 1
        for w, outcome in zip(batch, outcomes, strict=True):
            if not w.done.done():
                w.done.set_result(outcome)
        return []

    def _requeue(self, *parts: list[_Waiting]) -> None:
        """Put deliveries back at the head of the waiting line, in their order."""
        rest: list[_Waiting] = []
        while not self._waiting.empty():
            rest.append(self._waiting.get_nowait())
        for w in [*(w for part in parts for w in part), *rest]:
            self._waiting.put_nowait(w)

    async def _apply_together(self, batch: list[_Waiting]) -> list[bool]:
        ids = [w.message.message_id for w in batch]
        async with self.pool.acquire() as conn, conn.transaction():
            new = set(
                await conn.fetchval(
                    f"WITH n AS (INSERT INTO {INBOX_TABLE} (consumer, message_id) "
                    "SELECT $1, m FROM unnest($2::text[]) AS m "
                    "ON CONFLICT DO NOTHING RETURNING message_id) "
                    "SELECT coalesce(array_agg(message_id), '{}') FROM n",
                    self.consumer.name,
                    list(dict.fromkeys(ids)),
                )
            )
            outcomes = []
            for index, w in enumerate(batch):
                first = w.message.message_id in new
                new.discard(w.message.message_id)  # the same message twice: once
                if first:
                    ctx = HandlerContext(self.consumer.name, w.message, conn=conn, store=self.store)
                    try:
                        with meta.caused_by(ctx.metadata):
                            await w.route.handler(w.event, ctx)
                    except Exception as exc:
                        raise _HandlerFailed(index, exc) from exc
                outcomes.append(first)
            return outcomes

    async def _apply(self, route: _Route, event: IntegrationEvent, message: Message) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                f"INSERT INTO {INBOX_TABLE} (consumer, message_id) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING RETURNING true",
                self.consumer.name,
                message.message_id,
            )
            if not inserted:
                return False
            ctx = HandlerContext(self.consumer.name, message, conn=conn, store=self.store)
            with meta.caused_by(ctx.metadata):
                await route.handler(event, ctx)
            return True

    async def _apply_to_store(
        self, route: _Route, event: IntegrationEvent, message: Message
    ) -> bool:
        if await self._seen(message.message_id):
            return False
        ctx = HandlerContext(self.consumer.name, message, store=self.store)
        try:
            with meta.caused_by(ctx.metadata):
                await route.handler(event, ctx)
        except IntegrityError:
            if await self._seen(message.message_id):
                return False  # a concurrent redelivery applied it first
            raise
        return True

    async def _seen(self, message_id: str) -> bool:
        return bool(
            await self.pool.fetchval(
                f"SELECT true FROM {INBOX_TABLE} WHERE consumer=$1 AND message_id=$2",
                self.consumer.name,
                message_id,
            )
        )
