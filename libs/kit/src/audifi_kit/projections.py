"""Read models built from a service's own notification log (ARCHITECTURE.md §5.5).

A projection owns one PostgreSQL schema named after it; its handlers write unqualified table
names and queries read `<projection>.<table>`. The runner applies each page of events and its
new position in one transaction, so every event changes the view exactly once.

Rebuild (`audifi replay`) fills a shadow schema from position 0 while the live view keeps
following the log, then — holding the projection's position row, which every live step also
locks first — applies what is left, renames the shadow into place and stores the position,
all in one transaction. Readers see the old view or the new one, never a mix.

Parking. An event the handler cannot apply must not stop the view for every later event (and
every read waiting for one). Errors are told apart:

- transient (`TRANSIENT_ERRORS`: a lost connection, serialization failures and deadlocks, a
  server shutting down or out of resources, a cancelled statement): the page is retried with
  backoff, for as long as it takes; nothing is skipped. Readiness reports the runner stalled.
- anything else raised while decoding or applying one event (a data error such as a NUL in a
  text column, a handler bug): the page's transaction rolls back, its events are applied again
  one at a time (each in a savepoint, so each still changes the view exactly once), and the
  event that fails `max_attempts` times in a row is *parked*: recorded in `kit_projection_parked`
  (projection, notification id, topic, aggregate, error type and message, attempts) in the same
  transaction that moves the position past it. It is logged once (`projection_event_parked`)
  and counted (`audifi_projection_events_parked_total`); readiness shows the parked count.

A view that skipped an event may be wrong for that aggregate from then on: later events of the
aggregate are applied to a row that lacks the parked one's change (a rename lost, a row never
inserted so later updates match nothing). That is why parking alerts, and why it is undone by
an operator: `audifi projections retry` applies parked events through the current (fixed)
handler code — out of their original order, so it is exact only for handlers whose writes do
not depend on order — and `audifi replay` rebuilds the view from the log, which is exact.

Set-based projections. A `PageProjection` applies a whole page with a few set-based
statements (`apply_events`) instead of one statement per event: it names, per domain event
class, a msgspec Struct with just the fields it reads, and the kit decodes each stored payload
straight into it (no domain event object). Replaying such a view runs near the speed of
reading the log (`make bench`). The Struct must read every stored version of its event
(fields missing from older versions need defaults); domain upcasters do not run on this path.
When a page fails, its events are applied one at a time as above: `apply_events` with one.

After the commit. What must follow a view's change outside the database (a cache of the view
invalidated) must not happen before the change is visible, or a reader could put the old rows
back: a handler tells what it changed with `self.changed(conn, change)` (any hashable, say
`("artist", id)`), and once the live runner's step (or `retry_parked`) has committed, the
projection's `committed(changes)` is awaited with that transaction's changes, each once, in
order — before the runner's position moves, so a reader that waits for an event (`wait`) finds
its consequences done. A transaction that rolls back tells nothing (a savepoint rolled back in
a committed one may tell more than it kept: acting on a change must be harmless when nothing
changed). A failing `committed` is logged; it never undoes the commit nor stops the view. A
rebuild tells nothing: it swaps the whole view in, so whatever follows the view must also
expire on its own (a cache's TTL) or be keyed by the projection's version.

A handler that fails on every event is a bug, not a bad event: after `max_parked_in_a_row`
parked events with no applied one between them the runner stops parking and retries instead
(the view stalls and readiness fails), so a bad deploy never silently empties a view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

import asyncpg
import msgspec
import structlog
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from audifi_kit import metrics
from audifi_kit.eventstore import EventStore
from audifi_kit.follower import LogFollower
from audifi_kit.notifications import NotificationLog, Page, Row, as_notifications

log = logging.getLogger(__name__)
events_log = structlog.get_logger("audifi.projections")

POSITIONS_DDL = """
CREATE TABLE IF NOT EXISTS kit_projection_positions (
    name text PRIMARY KEY,
    position bigint NOT NULL DEFAULT 0,
    version integer NOT NULL,
    rebuilt_at timestamptz
)
"""

PARKED_DDL = """
CREATE TABLE IF NOT EXISTS kit_projection_parked (
    projection text NOT NULL,
    notification_id bigint NOT NULL,
    topic text NOT NULL,
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    error_type text NOT NULL,
    error_message text NOT NULL,
    attempts integer NOT NULL,
    parked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, notification_id)
)
"""

# Failures of the database or the way to it, not of the event: retried, never parked.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,  # the connection is closed or busy
    asyncpg.PostgresConnectionError,
    asyncpg.TransactionRollbackError,  # serialization failure, deadlock
    asyncpg.InsufficientResourcesError,  # disk full, out of memory, too many connections
    asyncpg.OperatorInterventionError,  # shutdown, cancelled statement (statement_timeout)
    asyncpg.LockNotAvailableError,
    asyncpg.ReadOnlySQLTransactionError,  # a failover in progress
    asyncpg.InvalidCachedStatementError,  # a rebuild swapped the view under a cached plan
)
MAX_ERROR_MESSAGE = 2000

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

    def changed(self, conn: asyncpg.Connection, change: Hashable) -> None:
        """Tell `committed` what this event changed, once `conn`'s transaction commits (see
        the module: "After the commit"). Outside the live runner's and `retry_parked`'s
        transactions (a rebuild, a handler called directly) it does nothing."""
        pending = _pending_changes(self).get(id(conn))
        if pending is not None:
            pending[change] = None

    async def committed(self, changes: list[Hashable]) -> None:
        """Called after a transaction that applied this view's events committed, with what its
        handlers told `changed` (each once, in order; never empty). Override it to act outside
        the database, e.g. to invalidate a cache of the view."""

    async def apply(
        self, conn: asyncpg.Connection, domain_event: Any, notification: Notification
    ) -> None:
        await getattr(self, self._topics[notification.topic])(conn, domain_event, notification)


class PageEvent(msgspec.Struct, frozen=True, gc=False):
    """One event of a page, as a `PageProjection` gets it: its place in the log, its aggregate
    and version, its topic and the fields the projection declared for it. (A msgspec Struct
    outside the garbage collector's sight: a replay makes millions.)"""

    id: int
    originator_id: UUID
    originator_version: int
    topic: str
    data: Any


class Tagged(msgspec.Struct):
    """A value eventsourcing's JSON transcoder wrapped (`{"_type_": "uuid_hex", "_data_": ...}`):
    declare a UUID, datetime or Decimal field of an event as `Tagged` and read `.data`.

    Declare the projection's own Structs with `gc=False` when they hold no containers that
    could form cycles: a replay allocates one per event."""

    type: str = msgspec.field(name="_type_")
    data: Any = msgspec.field(name="_data_")


class PageProjection(Projection):
    """A projection that applies each page with set-based SQL (see the module's docstring).

    Subclasses set `fields = {Aggregate.Event: Struct, ...}` and implement `apply_events`.
    """

    fields: ClassVar[dict[type, type[msgspec.Struct]]] = {}
    _decoders: ClassVar[dict[str, Callable[[bytes], Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._decoders = {
            get_topic(event_class): msgspec.json.Decoder(struct).decode
            for event_class, struct in cls.fields.items()
        }
        cls._topics = dict.fromkeys(cls._decoders, "apply_events")

    async def apply_events(self, conn: asyncpg.Connection, events: list[PageEvent]) -> None:
        """Apply the page's events (in log order) to the view, in `conn`'s transaction."""
        raise NotImplementedError

    def decode(self, rows: Sequence[Any], mapper: Any = None) -> list[PageEvent]:
        """The page's events this projection reads, from the log's page (`read_page`'s
        columns, or `read_rows`' rows); `mapper` (the store's) when its payloads are encrypted
        or compressed."""
        decoders = self._decoders
        cipher = getattr(mapper, "cipher", None)
        compressor = getattr(mapper, "compressor", None)
        decoded = []
        append = decoded.append
        if isinstance(rows, Page) and not (cipher or compressor):  # the common case, columns
            for i, o, v, t, state in zip(
                rows.ids, rows.originators, rows.versions, rows.topics, rows.states, strict=True
            ):
                decode = decoders.get(t)
                if decode is not None:
                    append(PageEvent(i, o, v, t, decode(state)))
            return decoded
        for r in rows:
            decode = decoders.get(r[5])
            if decode is not None:
                state = r[6]
                if cipher:
                    state = cipher.decrypt(state)
                if compressor:
                    state = compressor.decompress(state)
                append(PageEvent(r[2], r[3], r[4], r[5], decode(state)))
        return decoded


def _row_of(n: Notification) -> tuple[Any, ...]:
    """A notification shaped as a row of the log (horizon and head unused)."""
    return (None, None, n.id, n.originator_id, n.originator_version, n.topic, n.state)


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    """An event a projection skipped because its handler could not apply it."""

    projection: str
    notification_id: int
    topic: str
    originator_id: UUID
    originator_version: int
    error_type: str
    error_message: str
    attempts: int
    parked_at: datetime | None = None

    @classmethod
    def of(cls, projection: str, n: Notification, error: Exception, attempts: int) -> ParkedEvent:
        return cls(
            projection=projection,
            notification_id=n.id,
            topic=n.topic,
            originator_id=n.originator_id,
            originator_version=int(n.originator_version),
            error_type=_error_type(error),
            error_message=_error_message(error),
            attempts=attempts,
        )


class TooManyParked(RuntimeError):
    """Events fail one after another: the handler is broken, parking them all would hide it."""


def is_transient(error: BaseException) -> bool:
    return isinstance(error, TRANSIENT_ERRORS)


def _error_type(error: Exception) -> str:
    cls = type(error)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _error_message(error: Exception) -> str:
    # Only the message, never asyncpg's DETAIL (it quotes the row's values). A NUL in the
    # message would make the parking insert fail the way the event did.
    text = str(error) or repr(error)
    return text.replace("\x00", "\\x00")[:MAX_ERROR_MESSAGE]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pending_changes(projection: Projection) -> dict[int, dict[Hashable, None]]:
    """What each open transaction (by its connection) of `projection` was told changed."""
    pending = projection.__dict__.get("_pending_changes")
    if pending is None:
        pending = projection.__dict__["_pending_changes"] = {}
    return pending


@contextlib.asynccontextmanager
async def _transaction(
    projection: Projection, conn: asyncpg.Connection
) -> AsyncIterator[dict[Hashable, None]]:
    """`conn`'s transaction, collecting what `projection`'s handlers say they changed in it
    (`_tell_committed` them once it committed)."""
    pending = _pending_changes(projection)
    pending[id(conn)] = changes = {}
    try:
        async with conn.transaction():
            yield changes
    finally:
        del pending[id(conn)]


async def _tell_committed(projection: Projection, changes: dict[Hashable, None]) -> None:
    if not changes:
        return
    try:
        await projection.committed(list(changes))
    except Exception:
        # The view moved on: what follows it must not stop it (a cache has its own backstop).
        log.exception("projection %s: its after-commit hook failed", projection.name)


async def _apply_page(
    conn: asyncpg.Connection,
    store: EventStore[Any],
    projection: Projection,
    rows: Sequence[Row],
) -> int:
    if isinstance(projection, PageProjection):
        mapper = store.mapper
        if mapper.cipher or mapper.compressor:  # decrypting a page is blocking work
            events = await asyncio.to_thread(projection.decode, rows, mapper)
        else:  # msgspec into Structs: cheaper than a thread hop
            events = projection.decode(rows, mapper)
        if events:
            await projection.apply_events(conn, events)
        return len(events)
    page = as_notifications(rows)
    handled = [n for n in page if projection.handles_topic(n.topic)]
    # Decoding (decryption, decompression, a service's own mapper) is blocking work: one
    # worker-thread call per page, never on the event loop, and not in one of the store's
    # slots, which writers hold (it uses no event-store connection).
    events = await asyncio.to_thread(store.decode_page, handled)
    for n, (domain_event, _) in zip(handled, events, strict=True):
        await projection.apply(conn, domain_event, n)
    return len(handled)


async def _apply_one(
    conn: asyncpg.Connection, store: EventStore[Any], projection: Projection, n: Notification
) -> None:
    async with conn.transaction():  # a savepoint: a failed event leaves no trace
        if isinstance(projection, PageProjection):
            await projection.apply_events(conn, projection.decode([_row_of(n)], store.mapper))
            return
        domain_event = (await asyncio.to_thread(store.decode, n))[0]
        await projection.apply(conn, domain_event, n)


@dataclass(slots=True)
class _Parking:
    """How many attempts an event gets, and the parked-in-a-row count that says "a bug"."""

    max_attempts: int
    max_in_a_row: int
    in_a_row: int = 0


async def _apply_parking(
    conn: asyncpg.Connection,
    store: EventStore[Any],
    projection: Projection,
    rows: Sequence[Row],
    parking: _Parking,
) -> list[ParkedEvent]:
    """Apply the page (`rows` of the log) in `conn`'s transaction; return the events it could
    not apply (not applied).

    The whole page first, in one savepoint (the common case costs one round trip more); when
    that fails for a reason of the events, one event at a time, each `max_attempts` times.
    """
    try:
        async with conn.transaction():
            if await _apply_page(conn, store, projection, rows):
                parking.in_a_row = 0
        return []
    except Exception as exc:
        if is_transient(exc):
            raise
        log.warning(
            "projection %s: the page from event %s failed (%s); applying its events one by one",
            projection.name,
            rows[0][2],
            _error_type(exc),
        )
    parked: list[ParkedEvent] = []
    for n in as_notifications(rows):
        if not projection.handles_topic(n.topic):
            continue
        for attempt in range(1, parking.max_attempts + 1):
            try:
                await _apply_one(conn, store, projection, n)
            except Exception as exc:
                if is_transient(exc):
                    raise
                if attempt < parking.max_attempts:
                    continue
                parking.in_a_row += 1
                if parking.in_a_row > parking.max_in_a_row:
                    raise TooManyParked(
                        f"projection {projection.name}: {parking.in_a_row} events in a row "
                        f"failed (the last: {n.id}, {_error_type(exc)}); not parking them"
                    ) from exc
                parked.append(ParkedEvent.of(projection.name, n, exc, attempt))
            else:
                parking.in_a_row = 0
                break
    return parked


async def _park(conn: asyncpg.Connection, parked: Sequence[ParkedEvent]) -> None:
    await conn.executemany(
        "INSERT INTO kit_projection_parked (projection, notification_id, topic, originator_id, "
        "originator_version, error_type, error_message, attempts) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
        "ON CONFLICT (projection, notification_id) DO UPDATE SET "
        "attempts = kit_projection_parked.attempts + excluded.attempts, "
        "error_type = excluded.error_type, error_message = excluded.error_message, "
        "parked_at = now()",
        [
            (
                p.projection,
                p.notification_id,
                p.topic,
                p.originator_id,
                p.originator_version,
                p.error_type,
                p.error_message,
                p.attempts,
            )
            for p in parked
        ],
    )


def _announce(service: str, parked: Sequence[ParkedEvent]) -> None:
    for p in parked:
        # The message stays in the table: it may quote the event's (personal) data.
        events_log.error(
            "projection_event_parked",
            projection=p.projection,
            notification_id=p.notification_id,
            topic=p.topic,
            aggregate=str(p.originator_id),
            aggregate_version=p.originator_version,
            error_type=p.error_type,
            attempts=p.attempts,
        )
        metrics.projection_events_parked.labels(service, p.projection).inc()


async def _set_search_path(conn: asyncpg.Connection, schema: str) -> None:
    await conn.execute(f"SET LOCAL search_path TO {_ident(schema)}, public")


async def ensure_positions(conn: asyncpg.Connection) -> None:
    """The kit's projection tables: positions and parked events."""
    for ddl in (POSITIONS_DDL, PARKED_DDL):
        with contextlib.suppress(asyncpg.UniqueViolationError):  # two first starts racing
            await conn.execute(ddl)


class ProjectionRunner:
    """Follows the log into one projection's view (see the module for errors and parking).

    `position` is what this process has applied (what `wait()` waits for); `last_step_at`
    (monotonic) is when a step last finished — an idle runner steps every poll interval, so
    a runner behind the log whose last step is old is stuck (readiness says "stalled").
    """

    def __init__(
        self,
        store: EventStore[Any],
        projection: Projection,
        *,
        page_size: int = 500,
        max_attempts: int = 3,
        max_parked_in_a_row: int = 10,
        retry_delay: float = 0.5,
        max_retry_delay: float = 10.0,
    ) -> None:
        self.store = store
        self.projection = projection
        self.page_size = page_size
        self.log = NotificationLog(store.table)
        self.position = 0
        self.applied = 0
        self.parked = 0
        self.last_step_at = time.monotonic()
        self._parking = _Parking(max_attempts, max_parked_in_a_row)
        self._moved = asyncio.Condition()
        self._watchers: set[asyncio.Event] = set()
        self._follower = LogFollower(
            f"projection {projection.name}",
            self.step,
            store=store,
            held_back=lambda: self.log.held_back,
            retry_delay=retry_delay,
            max_retry_delay=max_retry_delay,
            expected_errors=TRANSIENT_ERRORS,
            logger=log,
        )

    @property
    def name(self) -> str:
        return self.projection.name

    @property
    def running(self) -> bool:
        """The runner's task is alive (it ends only when stopped, or by a bug)."""
        return self._follower.running

    @property
    def failures(self) -> int:
        """Steps failed in a row."""
        return self._follower.failures

    def notify_moves(self, wakeup: asyncio.Event) -> None:
        """Set `wakeup` whenever the view moves (a follower of the view: notify's sender)."""
        self._watchers.add(wakeup)

    async def start(self) -> None:
        conn = await self.store.connect()
        try:
            await self.prepare(conn)
            self.position = await conn.fetchval(
                "SELECT position FROM kit_projection_positions WHERE name=$1", self.name
            )
        finally:
            await conn.close()
        self.last_step_at = time.monotonic()
        await self._follower.start()

    async def stop(self) -> None:
        await self._follower.stop()

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
            await rebuild(
                self.store,
                self.projection,
                page_size=self.page_size,
                max_attempts=self._parking.max_attempts,
                max_parked_in_a_row=self._parking.max_in_a_row,
            )

    async def step(self) -> int:
        """Apply one page after the stored position, in one transaction with the new position
        and the page's parked events."""
        conn = self._follower.conn
        assert conn is not None
        parking = _Parking(self._parking.max_attempts, self._parking.max_in_a_row)
        changes: dict[Hashable, None] = {}
        for attempt in (1, 2):
            parking.in_a_row = self._parking.in_a_row
            try:
                async with _transaction(self.projection, conn) as changes:
                    position = await conn.fetchval(
                        "SELECT position FROM kit_projection_positions WHERE name=$1 FOR UPDATE",
                        self.name,
                    )
                    page = await self.log.read_page(conn, position, self.page_size)
                    parked: list[ParkedEvent] = []
                    if page:
                        await _set_search_path(conn, self.name)
                        parked = await _apply_parking(
                            conn, self.store, self.projection, page, parking
                        )
                        if parked:
                            await _park(conn, parked)
                        position = page[-1][2]
                        await conn.execute(
                            "UPDATE kit_projection_positions SET position=$2 WHERE name=$1",
                            self.name,
                            position,
                        )
                break
            except asyncpg.InvalidCachedStatementError:
                if attempt == 2:  # the view was swapped under a cached statement: once more
                    raise
        self._parking.in_a_row = parking.in_a_row
        await _tell_committed(self.projection, changes)  # before the position says "applied"
        _announce(self.store.service, parked)
        self.applied += len(page) - len(parked)
        self.parked += len(parked)
        self.position = position
        self.last_step_at = time.monotonic()
        async with self._moved:
            self._moved.notify_all()
        if page:
            for wakeup in self._watchers:
                wakeup.set()
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
    max_attempts: int = 3,
    max_parked_in_a_row: int = 10,
) -> int:
    """Rebuild the view from position 0 in a shadow schema, swap it in; returns the position.

    Events the current code cannot apply are parked as the live runner parks them; the parked
    entries of the old view are replaced by the rebuild's in the swapping transaction.
    """
    name = projection.name
    shadow = f"{name}__rebuild"
    old = f"{name}__old"
    notification_log = NotificationLog(store.table)
    parking = _Parking(max_attempts, max_parked_in_a_row)
    parked: list[ParkedEvent] = []
    conn = await store.connect()
    try:
        await ensure_positions(conn)
        async with conn.transaction():  # thrown away if the rebuild does not finish
            await conn.execute(
                "SET LOCAL synchronous_commit TO off; "
                f"DROP SCHEMA IF EXISTS {_ident(shadow)} CASCADE; "
                f"CREATE SCHEMA {_ident(shadow)}; "
                f"SET LOCAL search_path TO {_ident(shadow)}, public"
            )
            await projection.create(conn)
        # Counted for the progress bar only: a count of a large log is a scan of its index.
        total = await notification_log.count(conn, 0, 2**62) if progress else 0
        done = 0
        position = 0

        async def apply(page: Page, *, own_transaction: bool) -> None:
            nonlocal position, done
            if own_transaction:
                async with conn.transaction():
                    # The shadow schema is thrown away if the rebuild does not finish: its
                    # pages need not wait for the disk (the swapping transaction does).
                    await conn.execute(
                        f"SET LOCAL search_path TO {_ident(shadow)}, public; "
                        "SET LOCAL synchronous_commit TO off"
                    )
                    parked.extend(await _apply_parking(conn, store, projection, page, parking))
            else:
                parked.extend(await _apply_parking(conn, store, projection, page, parking))
            position = page[-1][2]
            done += len(page)
            if progress:
                progress(done, max(total, done))

        async def catch_up() -> None:
            """The rest of the log, inside the swapping transaction."""
            while page := await notification_log.read_page(conn, position, page_size):
                await apply(page, own_transaction=False)

        async def catch_up_reading_ahead() -> None:
            """The bulk of a rebuild: the next page is read on a second connection while this
            one is applied, so PostgreSQL's work and ours overlap."""
            reader = await store.connect()
            try:
                ahead = asyncio.ensure_future(
                    notification_log.read_page(reader, position, page_size)
                )
                while page := await ahead:
                    if len(page) == page_size:
                        ahead = asyncio.ensure_future(
                            notification_log.read_page(reader, page[-1][2], page_size)
                        )
                    await apply(page, own_transaction=True)
                    if len(page) < page_size:
                        return
            finally:
                if not ahead.done():
                    ahead.cancel()
                    with contextlib.suppress(BaseException):
                        await ahead
                await reader.close()

        await catch_up_reading_ahead()
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
            await catch_up()
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
            await conn.execute("DELETE FROM kit_projection_parked WHERE projection=$1", name)
            if parked:
                await _park(conn, parked)
        _announce(store.service, parked)
        if progress:
            progress(done, done)
        return position
    finally:
        await conn.close()


# ------------------------------------------------------------------ parked events, for operators


_PARKED_COLUMNS = (
    "projection, notification_id, topic, originator_id, originator_version, error_type, "
    "error_message, attempts, parked_at"
)


async def list_parked(
    conn: asyncpg.Connection | asyncpg.Pool,
    projection: str | None = None,
    *,
    ids: Sequence[int] | None = None,
    limit: int | None = None,
) -> list[ParkedEvent]:
    """Parked events, oldest notification first (of one projection, or of all)."""
    rows = await conn.fetch(
        f"SELECT {_PARKED_COLUMNS} FROM kit_projection_parked "
        "WHERE ($1::text IS NULL OR projection = $1) "
        "AND ($2::bigint[] IS NULL OR notification_id = ANY($2)) "
        "ORDER BY projection, notification_id LIMIT $3",
        projection,
        list(ids) if ids else None,
        limit,
    )
    return [ParkedEvent(**dict(r)) for r in rows]


async def parked_counts(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT projection, count(*) AS n FROM kit_projection_parked GROUP BY projection"
    )
    return {r["projection"]: r["n"] for r in rows}


async def discard_parked(
    conn: asyncpg.Connection, projection: str, ids: Sequence[int] | None = None
) -> int:
    """Forget parked events for good (the view stays without them)."""
    status = await conn.execute(
        "DELETE FROM kit_projection_parked WHERE projection = $1 "
        "AND ($2::bigint[] IS NULL OR notification_id = ANY($2))",
        projection,
        list(ids) if ids else None,
    )
    return int(status.split()[-1])


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    applied: list[int]
    still_parked: list[ParkedEvent]


async def retry_parked(
    store: EventStore[Any], projection: Projection, ids: Sequence[int] | None = None
) -> RetryOutcome:
    """Apply parked events again through `projection`'s (current) handlers, oldest first.

    Each in its own transaction holding the projection's position row, so it never interleaves
    with a live runner's page. An event that applies leaves the parked table in that
    transaction (so at most once); one that fails again stays, its attempts counted.
    """
    name = projection.name
    notification_log = NotificationLog(store.table)
    applied: list[int] = []
    still: list[ParkedEvent] = []
    conn = await store.connect()
    try:
        await ensure_positions(conn)
        for entry in await list_parked(conn, name, ids=ids):
            async with _transaction(projection, conn) as changes:
                await conn.fetchval(
                    "SELECT position FROM kit_projection_positions WHERE name=$1 FOR UPDATE", name
                )
                current = await conn.fetchval(
                    "SELECT attempts FROM kit_projection_parked "
                    "WHERE projection=$1 AND notification_id=$2 FOR UPDATE",
                    name,
                    entry.notification_id,
                )
                if current is None:  # retried or discarded by someone else meanwhile
                    continue
                page = await notification_log.read(
                    conn, entry.notification_id - 1, 1, upto=entry.notification_id
                )
                await _set_search_path(conn, name)
                try:
                    if not page:
                        raise LookupError(f"event {entry.notification_id} is not in the log")
                    await _apply_one(conn, store, projection, page[0])
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    again = await conn.fetchrow(
                        f"UPDATE kit_projection_parked SET attempts = attempts + 1, "
                        "error_type = $3, error_message = $4 "
                        f"WHERE projection=$1 AND notification_id=$2 RETURNING {_PARKED_COLUMNS}",
                        name,
                        entry.notification_id,
                        _error_type(exc),
                        _error_message(exc),
                    )
                    still.append(ParkedEvent(**dict(again)))
                else:
                    await conn.execute(
                        "DELETE FROM kit_projection_parked WHERE projection=$1 "
                        "AND notification_id=$2",
                        name,
                        entry.notification_id,
                    )
                    applied.append(entry.notification_id)
            await _tell_committed(projection, changes)
    finally:
        await conn.close()
    return RetryOutcome(applied, still)
