"""Read models built from a service's own notification log (ARCHITECTURE.md §5.5).

A projection owns one PostgreSQL schema named after it; its handlers write unqualified table
names and queries read `<projection>.<table>`. The runner applies each page of events and its
new position in one transaction, so every event changes the view exactly once.

Rebuild (`audifi replay`) fills a shadow schema from position 0 while the live view keeps
following the log, then — holding the projection's position row, which every live step also
locks first — applies what is left, renames the shadow into place and stores the position,
all in one transaction. Readers see the old view or the new one, never a mix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import asyncpg
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from audifi_kit.eventstore import EventStore
from audifi_kit.notifications import LogWatcher, NotificationLog

log = logging.getLogger(__name__)

POSITIONS_DDL = """
CREATE TABLE IF NOT EXISTS kit_projection_positions (
    name text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0,
    version integer NOT NULL,
    rebuilt_at timestamptz
)
"""

ApplyFn = Callable[[Any, asyncpg.Connection, Any, Notification], Awaitable[None]]


def handles(*event_classes: type) -> Callable[[ApplyFn], ApplyFn]:
    """Marks a projection method as the handler of these domain event classes."""

    def mark(fn: ApplyFn) -> ApplyFn:
        fn.__projection_topics__ = tuple(get_topic(c) for c in event_classes)  # type: ignore[attr-defined]
        return fn

    return mark


class Projection:
    """Subclass with `name`, `version`, `create()` and `@handles(...)` methods.

    Raise `version` whenever `create()` or a handler changes: the runner then rebuilds the
    view before it serves again.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    _topics: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        topics: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                for topic in getattr(value, "__projection_topics__", ()):
                    topics[topic] = attr
        cls._topics = topics
        if "name" in cls.__dict__ and not cls.name.isidentifier():
            raise ValueError(f"projection name must be an identifier: {cls.name!r}")

    async def create(self, conn: asyncpg.Connection) -> None:
        """Create the view's tables (unqualified names: the search path is set)."""
        raise NotImplementedError

    def handles_topic(self, topic: str) -> bool:
        return topic in self._topics

    async def apply(
        self, conn: asyncpg.Connection, domain_event: Any, notification: Notification
    ) -> None:
        await getattr(self, self._topics[notification.topic])(conn, domain_event, notification)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _apply_page(
    conn: asyncpg.Connection,
    store: EventStore[Any],
    projection: Projection,
    page: list[Notification],
) -> None:
    handled = [n for n in page if projection.handles_topic(n.topic)]
    # Decoding (decryption, decompression, a service's own mapper) is blocking work: one
    # worker-thread call per page, never on the event loop, and not in one of the store's
    # slots, which writers hold (it uses no event-store connection).
    events = await asyncio.to_thread(lambda: [store.decode(n)[0] for n in handled])
    for n, domain_event in zip(handled, events, strict=True):
        await projection.apply(conn, domain_event, n)


async def _set_search_path(conn: asyncpg.Connection, schema: str) -> None:
    await conn.execute(f"SET LOCAL search_path TO {_ident(schema)}, public")


async def ensure_positions(conn: asyncpg.Connection) -> None:
    with contextlib.suppress(asyncpg.UniqueViolationError):  # two first starts racing
        await conn.execute(POSITIONS_DDL)


class ProjectionRunner:
    def __init__(
        self, store: EventStore[Any], projection: Projection, *, page_size: int = 500
    ) -> None:
        self.store = store
        self.projection = projection
        self.page_size = page_size
        self.log = NotificationLog(store.table)
        self.position = 0
        self.applied = 0
        self._conn: asyncpg.Connection | None = None
        self._watcher: LogWatcher | None = None
        self._task: asyncio.Task[None] | None = None
        self._moved = asyncio.Condition()

    @property
    def name(self) -> str:
        return self.projection.name

    async def start(self) -> None:
        conn = await self.store.connect()
        try:
            await self.prepare(conn)
        finally:
            await conn.close()
        self._task = asyncio.create_task(self._run(), name=f"projection-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def prepare(self, conn: asyncpg.Connection) -> None:
        """Create the view on first start; rebuild it when its code's version changed."""
        await ensure_positions(conn)
        async with conn.transaction():
            created = await conn.fetchval(
                "INSERT INTO kit_projection_positions (name, position, version) "
                "VALUES ($1, 0, $2) ON CONFLICT DO NOTHING RETURNING true",
                self.name,
                self.projection.version,
            )
            if created:
                await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(self.name)}")
                await _set_search_path(conn, self.name)
                await self.projection.create(conn)
        stored = await conn.fetchval(
            "SELECT version FROM kit_projection_positions WHERE name=$1", self.name
        )
        if stored != self.projection.version:
            log.info(
                "projection %s: v%s -> v%s, rebuilding", self.name, stored, self.projection.version
            )
            await rebuild(self.store, self.projection, page_size=self.page_size)

    async def _run(self) -> None:
        while True:
            try:
                self._conn = await self.store.connect()
                self._watcher = LogWatcher(
                    self.store.location.asyncpg_dsn,
                    self.store.channel,
                    poll_interval=self.store.settings.poll_interval,
                )
                await self._watcher.start()
                while True:
                    if not await self.step():
                        await self._watcher.wait()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("projection %s failed; restarting its loop", self.name)
                await asyncio.sleep(1.0)
            finally:
                if self._watcher is not None:
                    await self._watcher.close()
                    self._watcher = None
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        await self._conn.close()
                    self._conn = None

    async def step(self) -> int:
        """Apply one page after the stored position, in one transaction with the new position."""
        assert self._conn is not None
        conn = self._conn
        for attempt in (1, 2):
            try:
                async with conn.transaction():
                    position = await conn.fetchval(
                        "SELECT position FROM kit_projection_positions WHERE name=$1 FOR UPDATE",
                        self.name,
                    )
                    page = await self.log.read(conn, position, self.page_size)
                    if page:
                        await _set_search_path(conn, self.name)
                        await _apply_page(conn, self.store, self.projection, page)
                        position = page[-1].id
                        await conn.execute(
                            "UPDATE kit_projection_positions SET position=$2 WHERE name=$1",
                            self.name,
                            position,
                        )
                break
            except asyncpg.InvalidCachedStatementError:
                if attempt == 2:  # the view was swapped under a cached statement: once more
                    raise
        self.applied += len(page)
        self.position = position
        async with self._moved:
            self._moved.notify_all()
        return len(page)

    async def wait(self, position: int, timeout: float = 10.0) -> None:
        """Until the view includes the event at `position` (read-your-writes for an API)."""
        deadline = time.monotonic() + timeout
        async with self._moved:
            while self.position < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"projection {self.name} at {self.position}, not {position}")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await self._moved.wait()


Progress = Callable[[int, int], None]


async def rebuild(
    store: EventStore[Any],
    projection: Projection,
    *,
    page_size: int = 1000,
    progress: Progress | None = None,
) -> int:
    """Rebuild the view from position 0 in a shadow schema, swap it in; returns the position."""
    name = projection.name
    shadow = f"{name}__rebuild"
    old = f"{name}__old"
    notification_log = NotificationLog(store.table)
    conn = await store.connect()
    try:
        await ensure_positions(conn)
        await conn.execute(f"DROP SCHEMA IF EXISTS {_ident(shadow)} CASCADE")
        await conn.execute(f"CREATE SCHEMA {_ident(shadow)}")
        async with conn.transaction():
            await _set_search_path(conn, shadow)
            await projection.create(conn)
        total = await notification_log.count(conn, 0, 2**62)
        done = 0
        position = 0

        async def catch_up(in_transaction: bool) -> None:
            nonlocal position, done
            while True:
                page = await notification_log.read(conn, position, page_size)
                if not page:
                    return
                if in_transaction:
                    await _apply_page(conn, store, projection, page)
                else:
                    async with conn.transaction():
                        await _set_search_path(conn, shadow)
                        await _apply_page(conn, store, projection, page)
                position = page[-1].id
                done += len(page)
                if progress:
                    progress(done, max(total, done))
                if len(page) < page_size and not in_transaction:
                    return

        await catch_up(in_transaction=False)
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO kit_projection_positions (name, position, version) "
                "VALUES ($1, 0, $2) ON CONFLICT DO NOTHING",
                name,
                projection.version,
            )
            # Hold the live runner off: it locks this row first in every step.
            await conn.fetchval(
                "SELECT position FROM kit_projection_positions WHERE name=$1 FOR UPDATE", name
            )
            await _set_search_path(conn, shadow)
            await catch_up(in_transaction=True)
            await conn.execute(f"DROP SCHEMA IF EXISTS {_ident(old)} CASCADE")
            live_exists = await conn.fetchval(
                "SELECT true FROM pg_namespace WHERE nspname=$1", name
            )
            if live_exists:
                await conn.execute(f"ALTER SCHEMA {_ident(name)} RENAME TO {_ident(old)}")
            await conn.execute(f"ALTER SCHEMA {_ident(shadow)} RENAME TO {_ident(name)}")
            if live_exists:
                await conn.execute(f"DROP SCHEMA {_ident(old)} CASCADE")
            await conn.execute(
                "UPDATE kit_projection_positions SET position=$2, version=$3, rebuilt_at=now() "
                "WHERE name=$1",
                name,
                position,
                projection.version,
            )
        if progress:
            progress(done, done)
        return position
    finally:
        await conn.close()
