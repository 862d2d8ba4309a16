"""The RabbitMQ transport (aio-pika), the production implementation of `Bus`.

Topology, per consumer queue `q` (declared idempotently from its `QueueSpec`):

* `q`: durable quorum queue bound to the topic exchange `audifi.events` once per pattern;
* `q.retry.<i>`: durable classic queue with `x-message-ttl = retry_delays_ms[i]` that
  dead-letters through the default exchange back to `q`. Classic, not quorum: RabbitMQ 3.10's
  at-least-once dead-lettering (quorum only) crashed its DLX supervisor when such queues were
  deleted shortly before a restart, after which every new one failed to declare. Classic
  dead-lettering is at-most-once inside the broker (a node crash at the instant a message
  expires could drop it); the persistent copy sits safely in the retry queue until then.
* `q.parking`: durable quorum queue; nothing consumes it, operators inspect it.

Every publish waits for publisher confirms. A retry or park first publishes the copy
(confirmed), then acks the original: a crash in between duplicates the message, which the
consumer's inbox absorbs, but never loses it.

AMQP's `timestamp` property has whole seconds only; the exact time also travels in the
`x-audifi-timestamp-us` header (microseconds since the epoch), which is read back first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    DeliveryMode,
    ExchangeType,
)
from aio_pika.channel import Channel
from aio_pika.exceptions import ChannelNotFoundEntity

from audifi_kit.bus.base import (
    EXCHANGE,
    Handler,
    PublishError,
    QueueSpec,
    parking_queue,
    retry_queue,
    run_handler,
)
from audifi_kit.messages import (
    ATTEMPT,
    CAUSATION_ID,
    LAST_ERROR,
    ORIGINAL_QUEUE,
    SCHEMA_VERSION,
    TRACEPARENT,
    Message,
    utcnow,
)

log = logging.getLogger(__name__)

TIMESTAMP_US = "x-audifi-timestamp-us"
MAX_ERROR_CHARS = 4096  # an error travels in a header, and headers must fit in one AMQP frame
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Headers the broker adds (dead-lettering, quorum redelivery count): not part of a Message.
_BROKER_HEADER_PREFIXES = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count")
_DEFAULT_DELAYS = QueueSpec(name="", bindings=()).retry_delays_ms


class _Unroutable(PublishError):
    """The default exchange returned the message: the target queue does not exist."""


# -- envelope <-> AMQP ----------------------------------------------------------------------


def to_properties(message: Message) -> aiormq.spec.Basic.Properties:
    """The AMQP properties of a message (ARCHITECTURE.md §5.3): what an `aio_pika.Message` would
    build, made directly — the relay publishes thousands a second and aio-pika's Message
    (validated attribute by attribute) was most of the cost of a publish."""
    timestamp = message.timestamp
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    headers: dict[str, Any] = dict(message.headers)
    headers[SCHEMA_VERSION] = message.schema_version
    if message.causation_id is not None:
        headers[CAUSATION_ID] = message.causation_id
    if message.traceparent is not None:
        headers[TRACEPARENT] = message.traceparent
    headers[TIMESTAMP_US] = (timestamp - _EPOCH) // timedelta(microseconds=1)
    return aiormq.spec.Basic.Properties(
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        delivery_mode=int(DeliveryMode.PERSISTENT),
        headers=headers,
        message_id=message.message_id,
        message_type=message.routing_key,
        priority=0,
        timestamp=timestamp,
    )


def from_amqp(incoming: AbstractIncomingMessage) -> Message:
    headers = {
        key: value
        for key, value in (incoming.headers or {}).items()
        if not key.startswith(_BROKER_HEADER_PREFIXES)
    }
    causation_id = headers.pop(CAUSATION_ID, None)
    traceparent = headers.pop(TRACEPARENT, None)
    schema_version = headers.pop(SCHEMA_VERSION, 1)
    micros = headers.pop(TIMESTAMP_US, None)
    timestamp = incoming.timestamp if isinstance(incoming.timestamp, datetime) else utcnow()
    if isinstance(micros, int):
        with contextlib.suppress(OverflowError):
            timestamp = _EPOCH + timedelta(microseconds=micros)
    try:
        schema_version = int(schema_version)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        headers[SCHEMA_VERSION] = schema_version
        schema_version = 1
    return Message(
        message_id=incoming.message_id or "",
        routing_key=incoming.type or incoming.routing_key or "",
        body=incoming.body,
        correlation_id=incoming.correlation_id,
        causation_id=None if causation_id is None else str(causation_id),
        schema_version=schema_version,
        traceparent=None if traceparent is None else str(traceparent),
        timestamp=timestamp,
        content_type=incoming.content_type or "application/json",
        headers=headers,
    )


def _redriven(message: Message) -> Message:
    return message.without_headers(LAST_ERROR, ORIGINAL_QUEUE).with_headers(**{ATTEMPT: 1})


class RabbitBus:
    """`Bus` on RabbitMQ through one robust (self-reconnecting) connection.

    `publish_timeout` bounds each batch publish (and each retry/park/redrive copy): during an
    outage publishing fails with `PublishError` at once or after that long, never hangs.
    `reconnect_interval` is the pause between reconnection attempts.
    """

    def __init__(
        self,
        url: str,
        *,
        exchange: str = EXCHANGE,
        publish_timeout: float = 10.0,
        reconnect_interval: float = 1.0,
    ) -> None:
        self._url = url
        self._exchange_name = exchange
        self._publish_timeout = publish_timeout
        self._reconnect_interval = reconnect_interval
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractRobustChannel | None = None  # confirms; all publishing
        self._admin: AbstractRobustChannel | None = None  # declarations, re-done on reconnect
        self._exchange: AbstractExchange | None = None
        self._specs: dict[str, QueueSpec] = {}
        self._subscriptions: set[_Subscription] = set()

    # -- lifecycle --------------------------------------------------------------------------

    async def connect(self) -> None:
        if self._connection is not None:
            return
        connection = await aio_pika.connect_robust(
            self._url, reconnect_interval=self._reconnect_interval, timeout=10
        )
        try:
            publisher = connection.channel(publisher_confirms=True, on_return_raises=True)
            await publisher
            admin = connection.channel(publisher_confirms=False)
            await admin
            await admin.declare_exchange(self._exchange_name, ExchangeType.TOPIC, durable=True)
            self._exchange = await publisher.get_exchange(self._exchange_name, ensure=False)
        except BaseException:
            await connection.close()
            raise
        self._connection, self._publisher, self._admin = connection, publisher, admin

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            await subscription.cancel()
        connection, self._connection = self._connection, None
        self._publisher = self._admin = self._exchange = None
        if connection is not None:
            await connection.close()

    async def __aenter__(self) -> RabbitBus:
        await self.connect()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def _live(self) -> tuple[AbstractRobustConnection, AbstractRobustChannel]:
        if self._connection is None or self._publisher is None:
            raise RuntimeError("RabbitBus is not connected: call connect() first")
        return self._connection, self._publisher

    # -- publishing -------------------------------------------------------------------------

    async def publish(self, messages: Sequence[Message]) -> None:
        self._live()
        assert self._exchange is not None
        await self._confirmed(self._exchange, [(m.routing_key, m) for m in messages], False)

    async def send_to_queue(self, queue: str, messages: Sequence[Message]) -> None:
        _, publisher = self._live()
        await self._confirmed(publisher.default_exchange, [(queue, m) for m in messages], True)

    async def _confirmed(
        self,
        exchange: AbstractExchange,
        items: Sequence[tuple[str, Message]],
        mandatory: bool,
    ) -> None:
        """Publish all concurrently; return when every one is confirmed, else PublishError."""
        if not items:
            return
        try:
            async with asyncio.timeout(self._publish_timeout):
                # As `Exchange.publish` does it, once for the batch: the underlying channel,
                # then each message's frames with its properties built directly.
                try:
                    if exchange.channel.is_closed:
                        raise aiormq.exceptions.ChannelInvalidStateError("the channel is closed")
                    channel = await exchange.channel.get_underlay_channel()
                except (aiormq.exceptions.AMQPError, RuntimeError) as exc:
                    raise PublishError(f"{len(items)} message(s) not sent: {exc!r}") from exc
                results = await asyncio.gather(
                    *(
                        channel.basic_publish(
                            m.body,
                            exchange=exchange.name,
                            routing_key=key,
                            properties=to_properties(m),
                            mandatory=mandatory,
                        )
                        for key, m in items
                    ),
                    return_exceptions=True,
                )
        except TimeoutError as exc:
            raise PublishError(
                f"{len(items)} message(s) not confirmed within {self._publish_timeout}s"
            ) from exc
        failures = [r for r in results if isinstance(r, BaseException)]
        if not failures:
            return
        first = failures[0]
        text = f"{len(failures)} of {len(items)} message(s) not confirmed: {first!r}"
        if all(isinstance(f, aiormq.exceptions.PublishError) for f in failures):
            raise _Unroutable(text) from first
        raise PublishError(text) from first

    # -- queues -----------------------------------------------------------------------------

    async def declare_queue(self, spec: QueueSpec) -> None:
        self._live()
        admin = self._admin
        assert admin is not None
        # Robust declarations are replayed on reconnect; register each spec once.
        robust = self._specs.get(spec.name) != spec
        main = await admin.declare_queue(
            spec.name, durable=True, arguments={"x-queue-type": "quorum"}, robust=robust
        )
        for pattern in spec.bindings:
            await main.bind(self._exchange_name, pattern, robust=robust)
        for index, delay in enumerate(spec.retry_delays_ms):
            await admin.declare_queue(
                retry_queue(spec.name, index),
                durable=True,
                arguments={
                    "x-queue-type": "classic",
                    "x-message-ttl": delay,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": spec.name,
                },
                robust=robust,
            )
        await admin.declare_queue(
            parking_queue(spec.name),
            durable=True,
            arguments={"x-queue-type": "quorum"},
            robust=robust,
        )
        self._specs[spec.name] = spec

    async def delete_queue(self, spec: QueueSpec | str) -> None:
        """Delete a queue with its retry and parking queues (tests and tooling; not in `Bus`)."""
        self._live()
        assert self._admin is not None
        if isinstance(spec, str):
            spec = self._specs.get(spec, QueueSpec(name=spec, bindings=()))
        for subscription in [s for s in self._subscriptions if s.queue == spec.name]:
            await subscription.cancel()
        names = [spec.name, parking_queue(spec.name)]
        names += [retry_queue(spec.name, i) for i in range(len(spec.retry_delays_ms))]
        for name in names:
            await self._admin.queue_delete(name)
        self._specs.pop(spec.name, None)

    async def queue_depth(self, queue: str) -> int:
        async with self._temporary_channel() as channel:
            found = await self._passive(channel, queue)
            return 0 if found is None else found.declaration_result.message_count or 0

    async def consume(self, queue: str, handler: Handler, *, prefetch: int = 100) -> _Subscription:
        connection, _ = self._live()
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        async with self._temporary_channel() as probe:
            if await self._passive(probe, queue) is None:
                raise LookupError(f"queue {queue!r} does not exist")
        channel = connection.channel(publisher_confirms=False)
        await channel
        try:
            await channel.set_qos(prefetch_count=prefetch)
            amqp_queue = await channel.declare_queue(queue, passive=True)
            subscription = _Subscription(self, queue, handler, channel, amqp_queue)
            await subscription.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await channel.close()
            raise
        self._subscriptions.add(subscription)
        return subscription

    @contextlib.asynccontextmanager
    async def _temporary_channel(self) -> AsyncIterator[AbstractChannel]:
        """A plain (not restored on reconnect) channel for one operation; closing it returns
        every message fetched on it and not acked to its queue."""
        connection, _ = self._live()
        async with asyncio.timeout(self._publish_timeout):
            await connection.ready()
        channel = Channel(connection, publisher_confirms=False)
        await channel.initialize()
        try:
            yield channel
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await channel.close()

    @staticmethod
    async def _passive(channel: AbstractChannel, name: str) -> AbstractQueue | None:
        try:
            return await channel.declare_queue(name, passive=True)
        except ChannelNotFoundEntity:
            return None

    # -- settling (called by deliveries) ----------------------------------------------------

    def _delays(self, queue: str) -> tuple[int, ...]:
        spec = self._specs.get(queue)
        return _DEFAULT_DELAYS if spec is None else spec.retry_delays_ms

    async def _retry(self, queue: str, message: Message, error: str) -> None:
        error = error[:MAX_ERROR_CHARS]
        attempt = message.attempt
        if attempt > len(self._delays(queue)):
            await self._park(queue, message, error)
            return
        again = message.with_headers(**{ATTEMPT: attempt + 1, LAST_ERROR: error})
        try:
            await self.send_to_queue(retry_queue(queue, attempt - 1), [again])
        except _Unroutable:
            log.error("%s is missing (queue declared elsewhere?): parking", retry_queue(queue, 0))
            await self._park(queue, message, error)

    async def _park(self, queue: str, message: Message, error: str) -> None:
        parked = message.with_headers(
            **{LAST_ERROR: error[:MAX_ERROR_CHARS], ORIGINAL_QUEUE: queue, ATTEMPT: message.attempt}
        )
        await self.send_to_queue(parking_queue(queue), [parked])

    # -- parking ----------------------------------------------------------------------------

    async def parked(self, queue: str, limit: int = 100) -> list[Message]:
        found: list[Message] = []
        name = parking_queue(queue)
        async with self._temporary_channel() as channel:
            parking = await self._passive(channel, name)
            if parking is None:
                return []
            ready = parking.declaration_result.message_count or 0
            while len(found) < limit:
                incoming = await parking.get(no_ack=False, fail=False)
                if incoming is None:
                    break
                found.append(from_amqp(incoming))
        # Closing the channel handed everything fetched back, unacked.
        await self._until_ready_again(name, ready)
        return found

    async def redrive(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        return await self._drain_parked(queue, message_ids, redrive=True)

    async def discard(self, queue: str, message_ids: Sequence[str] | None = None) -> int:
        return await self._drain_parked(queue, message_ids, redrive=False)

    async def _drain_parked(
        self, queue: str, message_ids: Sequence[str] | None, *, redrive: bool
    ) -> int:
        wanted = None if message_ids is None else set(message_ids)
        done = 0
        name = parking_queue(queue)
        async with self._temporary_channel() as channel:
            parking = await self._passive(channel, name)
            if parking is None:
                return 0
            ready = parking.declaration_result.message_count or 0
            # Look at each message present at the start once. Unselected ones stay unacked on
            # this channel (so basic.get moves on) and return to the queue when it closes.
            for _ in range(ready):
                incoming = await parking.get(no_ack=False, fail=False)
                if incoming is None:
                    break
                message = from_amqp(incoming)
                if wanted is not None and message.message_id not in wanted:
                    continue
                if redrive:
                    await self.send_to_queue(queue, [_redriven(message)])
                await incoming.ack()
                done += 1
        await self._until_ready_again(name, ready - done)
        return done

    async def _until_ready_again(self, queue: str, ready: int, within: float = 5.0) -> None:
        """Wait until `queue` shows at least `ready` messages again.

        A quorum queue takes back the messages of a closed channel asynchronously: right after
        a peek they could look gone to the next peek, redrive or depth query.
        """
        try:
            async with asyncio.timeout(within):
                while True:
                    if await self.queue_depth(queue) >= ready:
                        return
                    await asyncio.sleep(0.005)
        except TimeoutError:
            log.warning("%s: fewer than %d messages ready after %ss", queue, ready, within)


class _Delivery:
    def __init__(
        self, bus: RabbitBus, queue: str, incoming: AbstractIncomingMessage, message: Message
    ) -> None:
        self.message = message
        self.queue = queue
        self._bus = bus
        self._incoming = incoming
        self.settled = False

    @property
    def attempt(self) -> int:
        return self.message.attempt

    @property
    def redelivered(self) -> bool:
        return bool(self._incoming.redelivered)

    def _begin(self) -> None:
        if self.settled:
            raise RuntimeError(f"delivery {self.message.message_id!r} was already settled")
        self.settled = True

    async def ack(self) -> None:
        self._begin()
        await self._incoming.ack()

    async def retry(self, error: str) -> None:
        self._begin()
        await self._move(self._bus._retry(self.queue, self.message, error))

    async def park(self, error: str) -> None:
        self._begin()
        await self._move(self._bus._park(self.queue, self.message, error))

    async def _move(self, publish_copy: Awaitable[None]) -> None:
        """Publish the copy (confirmed), then ack; if the copy failed, hand the message back."""
        try:
            await publish_copy
        except BaseException:
            with contextlib.suppress(Exception):
                await self._incoming.nack(requeue=True)
            raise
        await self._incoming.ack()


class _Subscription:
    def __init__(
        self,
        bus: RabbitBus,
        queue: str,
        handler: Handler,
        channel: AbstractRobustChannel,
        amqp_queue: AbstractQueue,
    ) -> None:
        self.queue = queue
        self._bus = bus
        self._handler = handler
        self._channel = channel
        self._amqp_queue = amqp_queue
        self._tag: str | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._cancelled = False

    async def start(self) -> None:
        self._tag = await self._amqp_queue.consume(self._on_message, no_ack=False)

    async def _on_message(self, incoming: AbstractIncomingMessage) -> None:
        if self._cancelled:
            return  # left unacked: back to the queue when the channel closes
        task = asyncio.get_running_loop().create_task(self._handle(incoming))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _handle(self, incoming: AbstractIncomingMessage) -> None:
        await run_handler(
            self._handler, _Delivery(self._bus, self.queue, incoming, from_amqp(incoming))
        )

    async def cancel(self) -> None:
        if self._cancelled:
            return
        self._cancelled = True
        if self._tag is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await self._amqp_queue.cancel(self._tag)
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self._channel.close()
        self._bus._subscriptions.discard(self)
