"""The outbox relay: a service's notification log, published to the bus (ARCHITECTURE.md §5.2).

It follows the log from its stored position, maps each public domain event to its integration
event, publishes a page with publisher confirms, and stores the new position only after every
confirm. A crash or a broker outage anywhere in between means the page is published again:
at-least-once, with message id `<service>-<notification id>` so consumers drop the repeats.
One relay per service is active at a time (the follower's leader lock); other replicas wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
from eventsourcing.persistence import Notification

from audifi_kit.bus import Bus, PublishError
from audifi_kit.eventstore import EventStore
from audifi_kit.follower import LogFollower
from audifi_kit.messages import Message
from audifi_kit.notifications import NotificationLog
from audifi_kit.outbox import OutboxMapping

log = logging.getLogger(__name__)

POSITIONS_DDL = """
CREATE TABLE IF NOT EXISTS kit_relay_positions (
    name text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""


def build_messages(
    store: EventStore[Any], mapping: OutboxMapping, page: Sequence[Notification]
) -> list[Message]:
    """Map a page of the log to the messages it publishes (private events are skipped)."""
    published = [n for n in page if mapping.publishes(n.topic)]
    messages = []
    for n, (domain_event, event_meta) in zip(published, store.decode_page(published), strict=True):
        event = mapping.to_integration_event(n.topic, domain_event)
        if event is not None:
            when = getattr(domain_event, "timestamp", None)
            messages.append(mapping.to_message(n.id, event, event_meta, when))
    return messages


class OutboxRelay:
    def __init__(
        self,
        store: EventStore[Any],
        bus: Bus,
        mapping: OutboxMapping,
        *,
        name: str = "outbox",
        page_size: int | None = None,
        retry_delay: float = 0.5,
    ) -> None:
        self.store = store
        self.bus = bus
        self.mapping = mapping
        self.name = name
        self.page_size = page_size or store.settings.relay_page_size
        self.retry_delay = retry_delay
        self.log = NotificationLog(store.table)
        self.position = 0
        self.published = 0
        self.publish_failures = 0
        self.head = 0
        self._follower = LogFollower(
            f"relay {store.service}",
            self.step,
            store=store,
            begin=self._begin,
            leader_lock=f"relay:{store.service}:{name}",
            held_back=lambda: self.log.held_back,
            retry_delay=retry_delay,
            max_retry_delay=max(retry_delay, 5.0),
            # A killed connection surfaces as any of these: reconnect from the stored
            # position (nothing after it was acknowledged as published).
            expected_errors=(
                OSError,
                TimeoutError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,
            ),
            logger=log,
        )
        self._caught_up = asyncio.Condition()
        self._ahead: tuple[list[Notification], list[Message]] | None = None
        self._decoder = ThreadPoolExecutor(1, thread_name_prefix=f"relay-{store.service}")

    @property
    def lag(self) -> int:
        """Notifications committed but not yet published (as of the last look at the log)."""
        return max(self.head - self.position, 0)

    @property
    def _conn(self) -> asyncpg.Connection | None:
        return self._follower.conn

    async def start(self) -> None:
        await self._follower.start()

    async def stop(self) -> None:
        await self._follower.stop()
        self._decoder.shutdown(wait=False)
        self._decoder = ThreadPoolExecutor(1, thread_name_prefix=f"relay-{self.store.service}")

    async def run(self) -> None:
        """Follow the log until stopped; survives database and broker outages by retrying."""
        await self._follower.run()

    async def _begin(self, conn: asyncpg.Connection | None) -> None:
        assert conn is not None
        self._ahead = None
        await conn.execute(POSITIONS_DDL)
        self.position = await self._load_position(conn)
        # The position's commit need not wait for the disk: a position lost in a crash only
        # publishes its page again, which consumers drop by message id (at-least-once). It
        # takes a flush off every step of the relay's loop.
        await conn.execute("SET synchronous_commit TO off")

    async def _load_position(self, conn: asyncpg.Connection) -> int:
        await conn.execute(
            "INSERT INTO kit_relay_positions (name) VALUES ($1) ON CONFLICT DO NOTHING", self.name
        )
        return int(
            await conn.fetchval("SELECT position FROM kit_relay_positions WHERE name=$1", self.name)
        )

    async def _next_page(self, after: int) -> tuple[list[Notification], list[Message]]:
        assert self._conn is not None
        page = await self.log.read(self._conn, after, self.page_size)
        if not page:
            return page, []
        # Decoding is blocking work (decryption, a service's own mapper): in the relay's own
        # thread, never behind the writers' calls (it uses no event-store connection).
        loop = asyncio.get_running_loop()
        return page, await loop.run_in_executor(
            self._decoder, build_messages, self.store, self.mapping, page
        )

    async def step(self) -> int:
        """Publish one page after the stored position. Returns how many notifications it covered."""
        assert self._conn is not None
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0][0].id > self.position:
            page, messages = ahead
        else:
            page, messages = await self._next_page(self.position)
        if not page:
            self.head = self.position
            await self._announce()
            return 0
        publishing = asyncio.ensure_future(self._publish(messages))
        try:
            if len(page) == self.page_size:
                # A backlog: the next page is read and mapped while this one is confirmed.
                self._ahead = await self._next_page(page[-1].id)
                if not self._ahead[0]:
                    self._ahead = None
        finally:
            await publishing
        new_position = page[-1].id
        await self._store_position(self._conn, new_position)
        self.position = new_position
        self.published += len(messages)
        self.head = max(self.head, new_position)
        return len(page)

    async def _publish(self, messages: list[Message]) -> None:
        while True:
            try:
                if messages:
                    await self.bus.publish(messages)
                return
            except PublishError as exc:
                self.publish_failures += 1
                log.warning("relay %s: publish failed (%s); retrying", self.store.service, exc)
                await asyncio.sleep(self.retry_delay)

    async def _store_position(self, conn: asyncpg.Connection, position: int) -> None:
        await conn.execute(
            "UPDATE kit_relay_positions SET position=$2, updated_at=now() WHERE name=$1",
            self.name,
            position,
        )

    async def _announce(self) -> None:
        async with self._caught_up:
            self._caught_up.notify_all()

    async def wait_caught_up(self, position: int, timeout: float = 30.0) -> None:
        """Until the relay has published everything up to `position` (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while self.position < position:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"relay at {self.position}, wanted {position}")
            async with self._caught_up:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, 0.2)):
                        await self._caught_up.wait()
