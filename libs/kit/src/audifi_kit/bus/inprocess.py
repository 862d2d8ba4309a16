"""The bus inside one process (embedded mode): the same semantics as RabbitMQ, kept in memory.

Each declared queue is a FIFO of ready messages; publishing copies a message into every queue
with a binding that matches its routing key (AMQP topic rules). A consumer takes messages while
it has fewer than `prefetch` unsettled ones and runs each handler in its own task. Retries wait
on the event loop's timers (`loop.call_later`), then go to the back of their queue; parked
messages sit in a `<queue>.parking` FIFO. Nothing survives the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import deque
from collections.abc import Sequence

from audifi_kit.bus.base import (
    Handler,
    PublishError,
    QueueSpec,
    parking_queue,
    run_handler,
)
from audifi_kit.messages import ATTEMPT, LAST_ERROR, ORIGINAL_QUEUE, Message
from audifi_kit.topics import topic_matches

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 4096  # as RabbitBus, which must fit the error in one AMQP header frame


class _Fifo:
    """Ready messages of one queue; `get` waits until there is one."""

    def __init__(self) -> None:
        self.items: deque[tuple[Message, bool]] = deque()  # (message, redelivered)
        self._waiters: deque[asyncio.Future[None]] = deque()

    def put(self, message: Message, *, redelivered: bool = False, front: bool = False) -> None:
        if front:
            self.items.appendleft((message, redelivered))
        else:
            self.items.append((message, redelivered))
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def get(self) -> tuple[Message, bool]:
        while not self.items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken, then cancelled: pass the wake-up on
                raise
        return self.items.popleft()


@dataclasses.dataclass
class _Queue:
    spec: QueueSpec
    ready: _Fifo = dataclasses.field(default_factory=_Fifo)
    parked: _Fifo = dataclasses.field(default_factory=_Fifo)


class InProcessBus:
    def __init__(self) -> None:
        self._queues: dict[str, _Queue] = {}
        self._subscriptions: set[_Subscription] = set()
        self._timers: set[asyncio.TimerHandle] = set()

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.cancel()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    async def __aenter__(self) -> InProcessBus:
        await self.connect()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # -- publishing -------------------------------------------------------------------------

    async def publish(self, messages: Sequence[Message]) -> None:
        for message in messages:
            copy = dataclasses.replace(message, headers=dict(message.headers))
            for queue in self._queues.values():
                if any(topic_matches(b, message.routing_key) for b in queue.spec.bindings):
                    queue.ready.put(copy)

    async def send_to_queue(self, queue: str, messages: Sequence[Message]) -> None:
        fifo = self._fifo(queue)
        if fifo is None:
            raise PublishError(f"no queue {queue!r}: messages not routed")
        for message in messages:
            fifo.put(dataclasses.replace(message, headers=dict(message.headers)))

    def _fifo(self, name: str) -> _Fifo | None:
        if name in self._queues:
            return self._queues[name].ready
        for queue in self._queues.values():
            if parking_queue(queue.spec.name) == name:
                return queue.parked
        return None

    # -- queues -----------------------------------------------------------------------------

    async def declare_queue(self, spec: QueueSpec) -> None:
        existing = self._queues.get(spec.name)
        if existing is None:
            self._queues[spec.name] = _Queue(spec)
        else:  # keep the messages and add bindings, as redeclaring on a broker does
            bindings = tuple(dict.fromkeys(existing.spec.bindings + spec.bindings))
            existing.spec = dataclasses.replace(spec, bindings=bindings)

    async def delete_queue(self, spec: QueueSpec | str) -> None:
        """Drop a queue with its retry and parking queues (tests and tooling; not in `Bus`)."""
        self._queues.pop(spec if isinstance(spec, str) else spec.name, None)

    async def queue_depth(self, queue: str) -> int:
        fifo = self._fifo(queue)
        return 0 if fifo is None else len(fifo.items)

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 100) -> _Subscription:
        if queue not in self._queues:
            raise LookupError(f"queue {queue!r} does not exist")
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        subscription = _Subscription(self, queue, handler, prefetch)
        self._subscriptions.add(subscription)
        return subscription

    # -- settling (called by deliveries) ----------------------------------------------------

    def _retry(self, queue: str, message: Message, error: str) -> None:
        error = error[:MAX_ERROR_CHARS]
        delays = self._queues[queue].spec.retry_delays_ms if queue in self._queues else ()
        attempt = message.attempt
        if attempt > len(delays):
            self._park(queue, message, error)
            return
        again = message.with_headers(**{ATTEMPT: attempt + 1, LAST_ERROR: error})
        loop = asyncio.get_running_loop()

        def requeue() -> None:
            self._timers.discard(timer)
            target = self._queues.get(queue)
            if target is not None:  # deleted meanwhile: dropped, as a dead-letter would be
                target.ready.put(again)

        timer = loop.call_later(delays[attempt - 1] / 1000, requeue)
        self._timers.add(timer)

    def _park(self, queue: str, message: Message, error: str) -> None:
        parked = message.with_headers(
            **{LAST_ERROR: error[:MAX_ERROR_CHARS], ORIGINAL_QUEUE: queue, ATTEMPT: message.attempt}
        )
        target = self._queues.get(queue)
        if target is None:
            raise PublishError(f"no queue {queue!r} to park into")
        target.parked.put(parked)

    # -- parking ----------------------------------------------------------------------------

    async def parked(self, queue: str, limit: int = 100) -> list[Message]:
        target = self._queues.get(queue)
        if target is None:
            return []
        return [message for message, _ in list(target.parked.items)[:limit]]

    async def redrive(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        target = self._queues.get(queue)
        if target is None:
            return 0
        moved = self._take_parked(target, message_ids)
        for message in moved:
            target.ready.put(
                message.without_headers(LAST_ERROR, ORIGINAL_QUEUE).with_headers(**{ATTEMPT: 1})
            )
        return len(moved)

    async def discard(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        target = self._queues.get(queue)
        if target is None:
            return 0
        return len(self._take_parked(target, message_ids))

    @staticmethod
    def _take_parked(queue: _Queue, message_ids: Sequence[str] | None) -> list[Message]:
        wanted = None if message_ids is None else set(message_ids)
        taken: list[Message] = []
        kept: deque[tuple[Message, bool]] = deque()
        for message, redelivered in queue.parked.items:
            if wanted is None or message.message_id in wanted:
                taken.append(message)
            else:
                kept.append((message, redelivered))
        queue.parked.items = kept
        return taken


class _Delivery:
    def __init__(
        self,
        bus: InProcessBus,
        queue: str,
        message: Message,
        redelivered: bool,
        slot: asyncio.Semaphore,
    ) -> None:
        self.message = message
        self.queue = queue
        self._bus = bus
        self._redelivered = redelivered
        self._slot = slot  # released when settled: a prefetch slot frees up
        self.settled = False

    @property
    def attempt(self) -> int:
        return self.message.attempt

    @property
    def redelivered(self) -> bool:
        return self._redelivered

    def _settle(self) -> None:
        if self.settled:
            raise RuntimeError(f"delivery {self.message.message_id!r} was already settled")
        self.settled = True
        self._slot.release()

    async def ack(self) -> None:
        self._settle()

    async def retry(self, error: str) -> None:
        self._settle()
        self._bus._retry(self.queue, self.message, error)

    async def park(self, error: str) -> None:
        self._settle()
        self._bus._park(self.queue, self.message, error)


class _Subscription:
    def __init__(self, bus: InProcessBus, queue: str, handler: Handler, prefetch: int) -> None:
        self._bus = bus
        self._queue = queue
        self._handler = handler
        self._slots = asyncio.Semaphore(prefetch)
        self._handlers: set[asyncio.Task[None]] = set()
        self._pump = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self._slots.acquire()
            queue = self._bus._queues.get(self._queue)
            if queue is None:  # deleted under us: stop, as a broker cancels the consumer
                self._slots.release()
                return
            try:
                message, redelivered = await queue.ready.get()
            except BaseException:
                self._slots.release()
                raise
            delivery = _Delivery(self._bus, self._queue, message, redelivered, self._slots)
            task = asyncio.get_running_loop().create_task(self._handle(delivery))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    async def _handle(self, delivery: _Delivery) -> None:
        try:
            await run_handler(self._handler, delivery)
        except asyncio.CancelledError:
            if not delivery.settled:  # never lose it: back to the head of its queue
                delivery.settled = True
                self._slots.release()
                queue = self._bus._queues.get(self._queue)
                if queue is not None:
                    queue.ready.put(delivery.message, redelivered=True, front=True)
            raise

    async def cancel(self) -> None:
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        self._bus._subscriptions.discard(self)
