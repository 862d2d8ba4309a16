"""Reading a service's notification log (its events table, in log order) with asyncpg.

The events table is also the outbox: the relay, the projection runners and the ops CLI all
follow it from a stored position (the loop is `follower.LogFollower`). Every read stops below
the recorder's horizon (recorder.py), so a position once passed never has an event committed
behind it later. Ids are sparse (a transaction's id times 2**20 plus the event's place in it),
so a follower always asks for "after my position", never "position + 1".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import asyncpg
from eventsourcing.persistence import Notification

from audifi_kit.recorder import MAX_POSITION, max_id_sql, read_columns_sql, read_sql

log = logging.getLogger(__name__)


# Where read_sql puts each column of a row (after the horizon and the head).
ROW_ID, ROW_ORIGINATOR, ROW_VERSION, ROW_TOPIC, ROW_STATE = 2, 3, 4, 5, 6


Row = tuple[Any, ...]


class Page(Sequence[Row]):
    """A page read as columns (`NotificationLog.read_page`): a list per column, in log order.

    Also a sequence of rows shaped as `read_rows`' (horizon and head unused), for the code
    that takes a page event by event (a failed page applied one event at a time)."""

    __slots__ = ("ids", "originators", "states", "topics", "versions")

    def __init__(
        self,
        ids: list[int],
        originators: list[Any],
        versions: list[int],
        topics: list[str],
        states: list[bytes],
    ) -> None:
        self.ids = ids
        self.originators = originators
        self.versions = versions
        self.topics = topics
        self.states = states

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return list(self)[i]
        return (
            None,
            None,
            self.ids[i],
            self.originators[i],
            self.versions[i],
            self.topics[i],
            self.states[i],
        )

    def __iter__(self) -> Iterator[Row]:
        for i, o, v, t, s in zip(
            self.ids, self.originators, self.versions, self.topics, self.states, strict=True
        ):
            yield (None, None, i, o, v, t, s)

    def in_log_order(self) -> Page:
        """This page, its columns sorted by id if they were not (a check in the common case)."""
        ids = self.ids
        if sorted(ids) == ids:  # in C: cheaper than a Python loop over the page
            return self
        order = sorted(range(len(ids)), key=ids.__getitem__)
        return Page(*([column[k] for k in order] for column in self._columns()))

    def _columns(self) -> tuple[list[Any], ...]:
        return (self.ids, self.originators, self.versions, self.topics, self.states)


def as_notifications(rows: Sequence[Row]) -> list[Notification]:
    # asyncpg's UUID is a uuid.UUID (equal, same hash): kept as it is.
    if isinstance(rows, Page):
        return [
            Notification(id=i, originator_id=o, originator_version=v, topic=t, state=s)
            for i, o, v, t, s in zip(
                rows.ids, rows.originators, rows.versions, rows.topics, rows.states, strict=True
            )
        ]
    return [
        Notification(id=r[2], originator_id=r[3], originator_version=r[4], topic=r[5], state=r[6])
        for r in rows
    ]


class NotificationLog:
    def __init__(self, table: str) -> None:
        quoted = '"' + table.replace('"', '""') + '"'
        self.table = table
        self._select = read_sql(quoted, ("$1", "$2", "$3"))
        self._select_columns = read_columns_sql(quoted, ("$1", "$2", "$3"))
        self._max = max_id_sql(quoted)
        self._count = (
            f"SELECT count(*) FROM {quoted} WHERE notification_id > $1 AND notification_id <= $2"
        )
        self._before_last = (
            f"SELECT coalesce(min(notification_id), 1) - 1 FROM (SELECT notification_id "
            f"FROM {quoted} ORDER BY notification_id DESC LIMIT $1) AS last"
        )
        # After each read: committed events exist beyond it that a transaction still open in
        # this database keeps from being read yet. A follower looks again soon: that
        # transaction's end sends no NOTIFY when it wrote no events.
        self.held_back = False

    async def read_rows(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        after: int,
        limit: int,
        *,
        upto: int | None = None,
    ) -> list[asyncpg.Record]:
        """The page as asyncpg rows: id, aggregate, version, topic and state at ROW_ID..
        ROW_STATE (no object built per event: a set-based projection reads them as they are)."""
        rows = await conn.fetch(self._select, after, upto or MAX_POSITION, limit)
        if rows[0][ROW_ID] is None:  # the horizon's row comes first (UNION ALL's order)
            horizon, head = rows[0][0], rows[0][1] or 0
            page = rows[1:]
        else:  # SQL does not promise it
            horizon, head = next((r[0], r[1] or 0) for r in rows if r[ROW_ID] is None)
            page = [r for r in rows if r[ROW_ID] is not None]
        previous = -1
        for r in page:  # in the index's order (read_sql), checked: SQL does not promise it
            if r[ROW_ID] < previous:
                page.sort(key=lambda r: r[ROW_ID])
                break
            previous = r[ROW_ID]
        self.held_back = len(page) < limit and head >= horizon and head > after
        return page

    async def read_page(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        after: int,
        limit: int,
        *,
        upto: int | None = None,
    ) -> Page:
        """The page of `read_rows` as columns (a set-based projection's read, replays')."""
        horizon, head, *columns = await conn.fetchrow(
            self._select_columns, after, upto or MAX_POSITION, limit
        )
        page = Page(*columns) if columns[0] is not None else Page([], [], [], [], [])
        self.held_back = len(page) < limit and (head or 0) >= horizon and (head or 0) > after
        return page.in_log_order()

    async def read(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        after: int,
        limit: int,
        *,
        upto: int | None = None,
    ) -> list[Notification]:
        return as_notifications(await self.read_rows(conn, after, limit, upto=upto))

    async def max_id(self, conn: asyncpg.Connection | asyncpg.Pool) -> int:
        """The last id a reader may take now."""
        return int(await conn.fetchval(self._max))

    async def count(self, conn: asyncpg.Connection | asyncpg.Pool, after: int, upto: int) -> int:
        return int(await conn.fetchval(self._count, after, upto))

    async def position_before_last(
        self, conn: asyncpg.Connection | asyncpg.Pool, events: int
    ) -> int:
        """A position from which the last `events` events are read (ids are not contiguous)."""
        return int(await conn.fetchval(self._before_last, events))


class LogWatcher:
    """Wakes a follower when new events are committed: LISTEN/NOTIFY plus a poll fallback.

    The library never reconnects a dropped LISTEN connection (§10), so this one is supervised:
    a lost connection is replaced, and until it is the poll interval keeps the follower going.
    """

    def __init__(
        self,
        dsn: str,
        channel: str,
        *,
        poll_interval: float = 1.0,
        wakeup: asyncio.Event | None = None,
    ) -> None:
        """`wakeup`: the event to set (a follower's, which others may set too)."""
        self.dsn = dsn
        self.channel = channel
        self.poll_interval = poll_interval
        self._event = wakeup if wakeup is not None else asyncio.Event()
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
