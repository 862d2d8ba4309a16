"""Reading a service's notification log (its events table, in commit order) with asyncpg.

The events table is also the outbox: the relay, the projection runners and the ops CLI all
follow it from a stored position. eventsourcing's recorder takes a table lock per insert, so
notification ids become visible in increasing order; they may still have gaps (a rolled-back
insert consumes ids), so a follower always asks for "after my position", never "position + 1".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from uuid import UUID

import asyncpg
from eventsourcing.persistence import Notification

log = logging.getLogger(__name__)


class NotificationLog:
    def __init__(self, table: str) -> None:
        quoted = '"' + table.replace('"', '""') + '"'
        self.table = table
        self._select = (
            "SELECT notification_id, originator_id, originator_version, topic, state "
            f"FROM {quoted} WHERE notification_id > $1 AND notification_id <= $2 "
            "ORDER BY notification_id LIMIT $3"
        )
        self._max = f"SELECT coalesce(max(notification_id), 0) FROM {quoted}"
        self._count = (
            f"SELECT count(*) FROM {quoted} WHERE notification_id > $1 AND notification_id <= $2"
        )

    async def read(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        after: int,
        limit: int,
        *,
        upto: int | None = None,
    ) -> list[Notification]:
        rows = await conn.fetch(self._select, after, upto or 2**62, limit)
        return [
            Notification(
                id=r["notification_id"],
                originator_id=UUID(bytes=r["originator_id"].bytes),
                originator_version=r["originator_version"],
                topic=r["topic"],
                state=bytes(r["state"]),
            )
            for r in rows
        ]

    async def max_id(self, conn: asyncpg.Connection | asyncpg.Pool) -> int:
        return int(await conn.fetchval(self._max))

    async def count(self, conn: asyncpg.Connection | asyncpg.Pool, after: int, upto: int) -> int:
        return int(await conn.fetchval(self._count, after, upto))


class LogWatcher:
    """Wakes a follower when new events are committed: LISTEN/NOTIFY plus a poll fallback.

    The library never reconnects a dropped LISTEN connection (§10), so this one is supervised:
    a lost connection is replaced, and until it is the poll interval keeps the follower going.
    """

    def __init__(self, dsn: str, channel: str, *, poll_interval: float = 1.0) -> None:
        self.dsn = dsn
        self.channel = channel
        self.poll_interval = poll_interval
        self._event = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()

    async def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name=f"listen-{self.channel}")

    async def close(self) -> None:
        if self._supervisor:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close()

    async def wait(self, timeout: float | None = None) -> bool:
        """Until a notification arrives or the poll interval passes. True when notified."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout or self.poll_interval):
                await self._event.wait()
        notified = self._event.is_set()
        self._event.clear()
        return notified

    def _on_notify(self, *_: object) -> None:
        self._event.set()

    def _on_terminate(self, *_: object) -> None:
        self._lost.set()

    async def _supervise(self) -> None:
        backoff = 0.2
        while True:
            try:
                self._lost.clear()
                self._conn = await asyncpg.connect(self.dsn)
                self._conn.add_termination_listener(self._on_terminate)
                await self._conn.add_listener(self.channel, self._on_notify)
                backoff = 0.2
                self._event.set()  # anything committed while we were away is read now
                while not self._lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(5.0):
                            await self._lost.wait()
                    if not self._lost.is_set() and self._conn.is_closed():
                        break
                    if not self._lost.is_set():
                        # a cheap liveness probe: a half-open socket never terminates itself
                        try:
                            async with asyncio.timeout(5.0):
                                await self._conn.execute("SELECT 1")
                        except (OSError, asyncpg.PostgresError, TimeoutError):
                            break
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("LISTEN %s lost: %s; reconnecting", self.channel, exc)
            with contextlib.suppress(Exception):
                if self._conn is not None:
                    self._conn.terminate()
            self._event.set()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
