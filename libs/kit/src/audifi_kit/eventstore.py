"""A service's event store: its eventsourcing Application on its own PostgreSQL database.

eventsourcing has no asyncio API (ARCHITECTURE.md §10), so the application is built once and
every call goes through `asyncio.to_thread`, never more at once than the pool has connections.
Its events are recorded by `XidOrderedRecorder` (recorder.py): writers insert concurrently, in
one round trip per save, and tailing readers still never skip an event. For the hot write
paths `GroupCommit` saves the events of many concurrent commands in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import itertools
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import UUID

import asyncpg
import msgspec
from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    Repository,
    project_aggregate,
)
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    IntegrityError,
    Mapper,
    MapperDeserialisationError,
    Notification,
    StoredEvent,
)
from eventsourcing.utils import get_topic, resolve_topic, strtobool
from psycopg.sql import SQL, Identifier

from audifi_kit import metadata as meta
from audifi_kit.postgres import PgLocation, service_database
from audifi_kit.recorder import XidOrderedRecorder
from audifi_kit.settings import Settings

META_KEY = "__audifi__"
META_ATTR = "_audifi_metadata"
INBOX_TABLE = "kit_inbox"


class ConcurrencyConflict(Exception):
    """Another command changed the aggregate first; the command was not applied."""


class MetadataMapper(Mapper[UUID]):
    """eventsourcing's mapper, plus the causing request's ids stored beside each event's state.

    The ids never reach the domain event's attributes (the aggregate would receive them as
    arguments); `decode` returns them separately for the relay.
    """

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        topic = get_topic(domain_event.__class__)
        event_state = dict(vars(domain_event))
        originator_id = event_state.pop("originator_id")
        originator_version = event_state.pop("originator_version")
        event_meta: meta.EventMetadata = event_state.pop(META_ATTR, None) or meta.current.get()
        if event_meta is not meta.EMPTY:
            event_state[META_KEY] = event_meta.as_dict()
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            event_state["class_version"] = class_version
        stored_state = self.transcoder.encode(event_state)
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=stored_state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        return self.decode(stored_event)[0]

    def decode(
        self, stored_event: StoredEvent
    ) -> tuple[DomainEventProtocol[UUID], meta.EventMetadata]:
        return self.decode_many([stored_event])[0]

    def decode_many(
        self, stored_events: Iterable[StoredEvent]
    ) -> list[tuple[DomainEventProtocol[UUID], meta.EventMetadata]]:
        """Decode a page: classes and their upcasting looked up once per topic."""
        decoded = []
        classes = self._classes
        decode_state = self._decode_state
        from_dict = meta.EventMetadata.from_dict
        for stored_event in stored_events:
            topic = stored_event.topic
            found = classes.get(topic)
            if found is None:
                cls = resolve_topic(topic)
                found = classes[topic] = (cls, getattr(cls, "class_version", 1))
            cls, class_version = found
            state = stored_event.state
            try:
                if self.cipher:
                    state = self.cipher.decrypt(state)
                if self.compressor:
                    state = self.compressor.decompress(state)
                event_state: dict[str, Any] = decode_state(state)
            except Exception as exc:
                raise MapperDeserialisationError(
                    f"cannot decode {topic} of {stored_event.originator_id}"
                    f" v{stored_event.originator_version}: {exc}"
                ) from exc
            event_meta = from_dict(event_state.pop(META_KEY, None))
            originator_id = stored_event.originator_id
            event_state["originator_id"] = (
                originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
            )
            event_state["originator_version"] = stored_event.originator_version
            from_version = event_state.pop("class_version", 1)
            while from_version < class_version:
                getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
                from_version += 1
            domain_event = object.__new__(cls)
            object.__setattr__(domain_event, "__dict__", event_state)
            decoded.append((domain_event, event_meta))
        return decoded

    @functools.cached_property
    def _classes(self) -> dict[str, tuple[type, int]]:
        return {}

    @functools.cached_property
    def _decode_state(self) -> Callable[[bytes], Any]:
        """The transcoder's JSON, parsed by msgspec; its `_type_` objects revived alike."""
        transcoder = self.transcoder
        names = getattr(transcoder, "names", None)
        if names is None:  # not eventsourcing's JSON transcoder: its own decode
            return transcoder.decode
        parse = msgspec.json.Decoder().decode

        def revive(obj: Any) -> Any:
            if type(obj) is dict:
                if len(obj) == 2 and "_type_" in obj and "_data_" in obj:
                    return names[obj["_type_"]].decode(revive(obj["_data_"]))
                for key, value in obj.items():
                    if type(value) is dict or type(value) is list:
                        obj[key] = revive(value)
                return obj
            if type(obj) is list:
                return [revive(v) if type(v) is dict or type(v) is list else v for v in obj]
            return obj

        def decode(data: bytes) -> Any:
            try:
                return revive(parse(data))
            except (msgspec.DecodeError, KeyError):
                # What msgspec refuses and json accepts (NaN, huge integers), or a name the
                # transcoder does not know: the transcoder's own decode, and its errors.
                return transcoder.decode(data)

        return decode


class InboxRecorder(XidOrderedRecorder):
    """The kit's recorder, plus an inbox row written in the same transaction as events.

    A consumer whose handler changes this service's event store passes `inbox=(consumer,
    message_id)` to `save`: a redelivered message then fails on the inbox's primary key and
    nothing is applied twice (eventsourcing's own tracking keeps one max position per upstream,
    which a bus that redelivers out of order cannot use).
    """

    inbox_table = INBOX_TABLE

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{inbox} ("
                "consumer text NOT NULL, message_id text NOT NULL, "
                "received_at timestamptz NOT NULL DEFAULT now(), "
                "PRIMARY KEY (consumer, message_id))"
            ).format(schema=Identifier(self.datastore.schema), inbox=Identifier(INBOX_TABLE))
        )


class ServiceApplication(Application[UUID]):
    """Base of every service's application: metadata-carrying mapper, inbox-aware recorder."""

    def _find(self, kind: type[Any], aggregate_id: UUID) -> Any:
        """The aggregate of that id if it is one of `kind`, else None (never there, or
        another kind under the id)."""
        try:
            found = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, kind) else None

    def construct_mapper(self) -> Mapper[UUID]:
        base = super().construct_mapper()
        return MetadataMapper(
            transcoder=base.transcoder, compressor=base.compressor, cipher=base.cipher
        )

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Any]:
        """Record, keeping the aggregate cache true without fast-forward (a sole writer).

        The library caches the saved aggregates; events saved without their aggregate would
        leave a cached copy behind, so it is dropped. A version conflict means the cache was
        behind a writer it did not see: the aggregates are dropped and the next read (the
        command's retry) loads them from the store."""
        cache = self.repository.cache
        try:
            recordings = super()._record(processing_event)
        except IntegrityError:
            if cache is not None:
                for event in processing_event.events:
                    _evict(cache, event.originator_id)
            raise
        if cache is not None and not self.repository.fastforward:
            for event in processing_event.events:
                if event.originator_id not in processing_event.aggregates:
                    _evict(cache, event.originator_id)
        return recordings

    def construct_repository(self) -> Repository[UUID]:
        # As the library builds it (same settings), with group commit's batch awareness.
        maxsize = self.env.get(self.AGGREGATE_CACHE_MAXSIZE)
        return BatchRepository(
            event_store=self.events,
            snapshot_store=self.snapshots,
            cache_maxsize=int(maxsize) if maxsize else None,
            fastforward=strtobool(self.env.get(self.AGGREGATE_CACHE_FASTFORWARD, "y")),
            fastforward_skipping=strtobool(
                self.env.get(self.AGGREGATE_CACHE_FASTFORWARD_SKIPPING, "n")
            ),
            deepcopy_from_cache=strtobool(self.env.get(self.DEEPCOPY_FROM_AGGREGATE_CACHE, "y")),
        )

    def save_batch(
        self,
        batch: Sequence[tuple[Sequence[Any], meta.EventMetadata]],
        aggregates: Iterable[Any] = (),
    ) -> list[list[int]]:
        """Save several commands' collected events in one transaction.

        Each entry is one command's events and the metadata of the request that caused it;
        returns each command's notification ids. `aggregates`: the objects those events were
        collected from, in the state they leave them (what the cache keeps once saved).
        """
        processing = ProcessingEvent[UUID]()
        spans: list[tuple[int, int]] = []
        for events, event_meta in batch:
            start = len(processing.events)
            for event in events:
                object.__setattr__(event, META_ATTR, event_meta)
            processing.collect_events(*events)
            spans.append((start, len(processing.events)))
        processing.aggregates.update((a.id, a) for a in aggregates)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        ids = [r.notification.id for r in recordings]
        return [ids[a:b] for a, b in spans]


def _evict(cache: Any, aggregate_id: UUID) -> None:
    with contextlib.suppress(KeyError):
        cache.get(aggregate_id, evict=True)


A = TypeVar("A", bound=ServiceApplication)
T = TypeVar("T")


# An application's environment for eventsourcing's in-memory (POPO) persistence: what every
# service's `bootstrap.in_memory()` builds on, so application tests need no database.
IN_MEMORY: dict[str, str] = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


@dataclass
class DirectCalls(Generic[A]):
    """The in-memory twin of `EventStore` for application tests: `await call(fn, ...)` runs
    the application's method in place (POPO persistence does no I/O)."""

    app: A

    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return fn(*args, **kwargs)


@dataclass(slots=True)
class EventStore(Generic[A]):
    """One service's event store and the way async code reaches it."""

    service: str
    app: A
    location: PgLocation
    settings: Settings
    _slots: asyncio.Semaphore
    # The store's own threads: on the loop's default executor its calls (group-commit batches
    # of tens of milliseconds) queued other blocking work, the relay's decoding among it.
    _threads: ThreadPoolExecutor | None = None

    @property
    def table(self) -> str:
        return self.app.recorder.events_table_name  # type: ignore[attr-defined]

    @property
    def channel(self) -> str:
        """The LISTEN/NOTIFY channel the recorder notifies on every insert."""
        return self.app.recorder.channel_name  # type: ignore[attr-defined]

    @property
    def mapper(self) -> MetadataMapper:
        return self.app.mapper  # type: ignore[return-value]

    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run a blocking application call in a worker thread, bounded by the pool size."""
        async with self._slots:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(
                    self.settings.pool_size, thread_name_prefix=f"{self.service}-store"
                )
            context = contextvars.copy_context()  # the request's metadata, as to_thread does
            call = functools.partial(context.run, fn, *args, **kwargs)
            return await asyncio.get_running_loop().run_in_executor(self._threads, call)

    def decode(self, n: Notification) -> tuple[DomainEventProtocol[UUID], meta.EventMetadata]:
        return self.mapper.decode(n)

    def decode_page(
        self, page: Iterable[Notification]
    ) -> list[tuple[DomainEventProtocol[UUID], meta.EventMetadata]]:
        """Decode a page of the log at once (blocking work: call it in a worker thread)."""
        return self.mapper.decode_many(page)

    async def connect(self, **kwargs: Any) -> asyncpg.Connection:
        return await asyncpg.connect(self.location.asyncpg_dsn, **kwargs)

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        kwargs.setdefault("min_size", 1)
        kwargs.setdefault("max_size", 4)
        return await asyncpg.create_pool(self.location.asyncpg_dsn, **kwargs)

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False)
        self.app.close()


def application_env(location: PgLocation, settings: Settings) -> dict[str, str]:
    env = {
        **location.eventsourcing_env(),
        "CREATE_TABLE": "y",
        "POSTGRES_POOL_SIZE": str(settings.pool_size),
        "POSTGRES_MAX_OVERFLOW": "0",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",  # the library's insert function: never ours
        # No round trip to test each connection taken from the pool (it doubled a save's):
        # a connection the server dropped fails at once and the recorder retries the call
        # on another (eventsourcing retries Interface and Operational errors).
        "POSTGRES_PRE_PING": "n",
        "APPLICATION_RECORDER_TOPIC": get_topic(InboxRecorder),
    }
    if settings.aggregate_cache_size > 0:
        env["AGGREGATE_CACHE_MAXSIZE"] = str(settings.aggregate_cache_size)
        env["AGGREGATE_CACHE_FASTFORWARD"] = "n" if settings.sole_writer else "y"
    if settings.cipher_key:
        env["CIPHER_TOPIC"] = "eventsourcing.cipher:AESCipher"
        env["CIPHER_KEY"] = settings.cipher_key
    if settings.compress:
        env["COMPRESSOR_TOPIC"] = "eventsourcing.compressor:ZlibCompressor"
    return env


async def open_event_store(
    service: str,
    app_class: type[A],
    settings: Settings,
    *,
    env: dict[str, str] | None = None,
) -> EventStore[A]:
    """Build the service's application: its database created when missing, tables at start."""
    location = await service_database(settings, service)
    app_env = application_env(location, settings) | (env or {})
    app = await asyncio.to_thread(app_class, app_env)
    return EventStore(service, app, location, settings, asyncio.Semaphore(settings.pool_size))


@dataclass(slots=True)
class _Pending:
    decide: Callable[[], Iterable[Any] | Any]
    metadata: meta.EventMetadata
    future: asyncio.Future[list[int]]
    loads: tuple[UUID, ...] = ()


class _Deferred(Exception):
    """The command touched an aggregate it cannot use in this batch now: it waits for the next.

    Either a failed command of this batch left the aggregate unusable, or another batch in
    flight holds it (its new events are not committed yet).
    """


@dataclass(slots=True)
class _Batch:
    """Aggregates loaded in the current batch: later commands continue from their state."""

    aggregates: dict[UUID, Any] = field(default_factory=dict)
    poisoned: set[UUID] = field(default_factory=set)
    absent: set[UUID] = field(default_factory=set)  # loaded up front and found not to exist
    claim: Callable[[UUID], bool] = field(default=lambda _: True)


_current_batch: ContextVar[_Batch | None] = ContextVar("audifi_group_commit_batch", default=None)


class BatchRepository(Repository[UUID]):
    """The library's repository; inside a group-commit batch, one object per aggregate.

    A command that loads an aggregate an earlier command of the same batch already changed
    gets that changed object, so both commands' events are saved in one transaction, in order,
    and neither loses to the other. An aggregate another batch in flight holds is not loaded
    at all: the command waits for that batch (a stale copy would only conflict).
    """

    def get(self, aggregate_id: UUID, **kwargs: Any) -> Any:  # type: ignore[override]
        batch = _current_batch.get()
        if batch is None or kwargs.get("version") is not None:
            return super().get(aggregate_id, **kwargs)
        if aggregate_id in batch.poisoned:
            raise _Deferred(aggregate_id)
        if aggregate_id in batch.absent:
            raise AggregateNotFoundError(aggregate_id)
        aggregate = batch.aggregates.get(aggregate_id)
        if aggregate is None:
            if not batch.claim(aggregate_id):
                raise _Deferred(aggregate_id)
            aggregate = super().get(aggregate_id, **kwargs)
            batch.aggregates[aggregate_id] = aggregate
        return aggregate

    def load_into_batch(self, ids: Iterable[UUID]) -> None:
        """Load (or fast-forward from the cache) the batch's declared aggregates in one
        statement, where one round trip per aggregate would each wait on the database in
        turn. Ids another batch holds are left to `get` (which defers their command)."""
        batch = _current_batch.get()
        select_after = getattr(self.event_store.recorder, "select_events_after", None)
        if batch is None or select_after is None or self.snapshot_store is not None:
            return
        wanted = [
            i
            for i in dict.fromkeys(ids)
            if i not in batch.aggregates and i not in batch.poisoned and batch.claim(i)
        ]
        if not wanted:
            return
        cached: dict[UUID, Any] = {}
        if self.cache is not None:
            for aggregate_id in wanted:
                with contextlib.suppress(KeyError):
                    cached[aggregate_id] = self.cache.get(aggregate_id)
        stored = select_after([(i, cached[i].version if i in cached else 0) for i in wanted])
        to_domain_event = self.event_store.mapper.to_domain_event
        for aggregate_id in wanted:
            events = [to_domain_event(e) for e in stored.get(aggregate_id, ())]
            if aggregate_id in cached:
                lock = self._use_fastforward_lock(aggregate_id)
                try:
                    with lock:  # a cached object is advanced in place, as `get` does
                        aggregate = cached[aggregate_id]
                        # Another thread's `get` may have advanced it since its version was
                        # read for the statement above: only what it has not applied yet.
                        newer = [e for e in events if e.originator_version > aggregate.version]
                        aggregate = project_aggregate(aggregate, newer)
                        loaded = deepcopy(aggregate) if self.deepcopy_from_cache else aggregate
                finally:
                    self._disuse_fastforward_lock(aggregate_id)
            elif events:
                aggregate = project_aggregate(None, events)
                if self.cache is not None:
                    self.cache.put(aggregate_id, aggregate)
                loaded = deepcopy(aggregate) if self.deepcopy_from_cache else aggregate
            else:
                batch.absent.add(aggregate_id)
                continue
            batch.aggregates[aggregate_id] = loaded


class GroupCommit:
    """Saves the events of many concurrent commands in few transactions.

    A command is a function run in a worker thread that loads aggregates through the
    application's repository, calls their methods and returns the aggregates it created or
    changed, without saving them. Commands on the same aggregate chain inside a batch (see
    `BatchRepository`). If a batch conflicts with a writer outside it, each of its commands is
    decided again and saved on its own, and only a command that conflicts then gets
    `ConcurrencyConflict`.

    Batches are sized by the arrival rate: a batch takes whatever queued while the one before
    it was in flight (one command when they trickle in, hundreds, up to `max_batch`, under a
    burst). By default one batch is in flight at a time: deciding and encoding are Python
    under the GIL, and on a machine of few cores batches in flight together only took turns
    at it, each smaller (measured on 2 cores, 50 writers: ledger transactions 2,340-2,570/s
    one at a time, 1,690-1,710/s four at once; the kit's sample 2,900-3,160 saves/s against
    2,490-2,960). `concurrency` > 1 overlaps batches (the recorder takes no table lock, so
    their transactions can), for a database whose round trips cost more than deciding.
    Each aggregate belongs to one batch in flight at a time.
    """

    def __init__(
        self, store: EventStore[Any], *, max_batch: int = 500, concurrency: int | None = None
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        # Slots leave connections to single saves and the batches' own fast-forward reads.
        self.concurrency = min(concurrency or 1, max(1, store.settings.pool_size // 2))
        self._queue: deque[_Pending] = deque()
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[bool]] = set()
        self._waiting: list[_Pending] = []  # deferred until a batch in flight ends
        self._ready: deque[list[_Pending]] = deque()  # batches of commands that waited
        self._claims: dict[UUID, int] = {}
        self._claims_lock = threading.Lock()
        self._tokens = itertools.count(1)
        self.batches = 0
        self.fallbacks = 0

    async def submit(
        self, decide: Callable[[], Iterable[Any] | Any], *, loads: Iterable[UUID] = ()
    ) -> list[int]:
        """Run `decide` in a batch; returns the notification ids of the events it saved.

        `loads`: the aggregates `decide` will load, when the caller knows them: a batch loads
        all its commands' declared aggregates in one statement before deciding (a command
        that loads others still gets them, one read each)."""
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="group-commit")
        loop = asyncio.get_running_loop()
        pending = _Pending(decide, meta.current.get(), loop.create_future(), tuple(loads))
        self._queue.append(pending)
        self._arrived.set()
        return await pending.future

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        for p in [*self._queue, *self._waiting, *itertools.chain(*self._ready)]:
            if not p.future.done():
                p.future.cancel()

    async def _run(self) -> None:
        while True:
            free = self.concurrency - len(self._running)
            if not (self._queue or self._ready) or free <= 0:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            if self._ready:
                batch = self._ready.popleft()
            else:
                size = min(self.max_batch, -(-len(self._queue) // free))
                batch = [self._queue.popleft() for _ in range(min(size, len(self._queue)))]
            task = asyncio.create_task(self._commit_batch(batch))
            self._running.add(task)
            task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[bool]) -> None:
        self._running.discard(task)
        released = not task.cancelled() and task.exception() is None and task.result()
        # Commands that waited for an aggregate go first, in arrival order, once a batch that
        # held aggregates ended (or none runs: nothing else would release them).
        # They go together: they waited for the same aggregates, which chain in one batch.
        if self._waiting and (released or not self._running):
            for start in range(0, len(self._waiting), self.max_batch):
                self._ready.append(self._waiting[start : start + self.max_batch])
            self._waiting = []
        self._arrived.set()

    async def _commit_batch(self, batch: list[_Pending]) -> bool:
        """Whether the batch held aggregates (its end may let waiting commands go)."""
        try:
            deferred, held = await self.store.call(self._commit, batch)
        except BaseException as exc:  # never leave a caller waiting forever
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return True
        self._waiting += deferred
        return held

    def _claimer(self, token: int, claimed: list[UUID]) -> Callable[[UUID], bool]:
        def claim(aggregate_id: UUID) -> bool:
            with self._claims_lock:
                owner = self._claims.setdefault(aggregate_id, token)
            if owner == token:
                claimed.append(aggregate_id)
            return owner == token

        return claim

    def _commit(self, batch: list[_Pending]) -> tuple[list[_Pending], bool]:
        """Runs in a worker thread. Returns the commands deferred to a later batch, and
        whether this batch held aggregates. Its callers hear their outcomes together, in
        one wake-up of their loop (one each cost a fifth of a vote's CPU)."""
        claimed: list[UUID] = []
        claim = self._claimer(next(self._tokens), claimed)
        outcomes = _outcomes.set([])
        try:
            return self._commit_claimed(batch, claim, claimed)
        finally:
            _settle_all(_outcomes.get() or [])
            _outcomes.reset(outcomes)

    def _commit_claimed(
        self, batch: list[_Pending], claim: Callable[[UUID], bool], claimed: list[UUID]
    ) -> tuple[list[_Pending], bool]:
        try:
            decided, deferred, aggregates = self._decide_all(batch, claim)
            if not decided:
                return deferred, bool(claimed)
            self.batches += 1
            try:
                results = self.store.app.save_batch(
                    [(events, p.metadata) for p, events in decided], aggregates
                )
            except IntegrityError:
                self.fallbacks += 1
                deferred += [p for p, _ in decided if self._commit_alone(p, claim)]
                return deferred, True
            for (p, _), ids in zip(decided, results, strict=True):
                _resolve(p, result=ids)
            return deferred, bool(claimed)
        finally:
            with self._claims_lock:
                for aggregate_id in claimed:
                    self._claims.pop(aggregate_id, None)

    def _decide_all(
        self, batch: list[_Pending], claim: Callable[[UUID], bool]
    ) -> tuple[list[tuple[_Pending, list[Any]]], list[_Pending], list[Any]]:
        """The batch's decided commands and their events, the commands deferred, and the
        aggregates the decided ones leave (loaded, changed or created)."""
        state = _Batch(claim=claim)
        token = _current_batch.set(state)
        decided: list[tuple[_Pending, list[Any]]] = []
        deferred: list[_Pending] = []
        try:
            declared = [i for p in batch for i in p.loads]
            if declared:
                repository = self.store.app.repository
                if isinstance(repository, BatchRepository):
                    repository.load_into_batch(declared)
            for p in batch:
                try:
                    returned = _as_list(_run_in_context(p.decide, p.metadata))
                except _Deferred:
                    deferred.append(p)
                    continue
                except Exception as exc:
                    # Events a failed command raised on a shared aggregate are discarded and
                    # the aggregate is closed to the rest of this batch.
                    for aggregate_id, aggregate in list(state.aggregates.items()):
                        if aggregate.collect_events():
                            state.poisoned.add(aggregate_id)
                            del state.aggregates[aggregate_id]
                    _resolve(p, exc=exc)
                    continue
                events: list[Any] = []
                for aggregate in [*returned, *state.aggregates.values()]:
                    events.extend(aggregate.collect_events())
                    state.aggregates.setdefault(aggregate.id, aggregate)
                decided.append((p, events))
        finally:
            _current_batch.reset(token)
        return decided, deferred, list(state.aggregates.values())

    def _commit_alone(self, p: _Pending, claim: Callable[[UUID], bool]) -> bool:
        """Decide and save one command; True when it must wait for another batch."""
        try:
            decided, deferred, aggregates = self._decide_all([p], claim)
            if deferred:
                return True
            if not decided:
                return False  # failed alone: its future already carries the error
            [ids] = self.store.app.save_batch([(decided[0][1], p.metadata)], aggregates)
        except IntegrityError as exc:
            _resolve(p, exc=ConcurrencyConflict(str(exc)))
        except Exception as exc:
            _resolve(p, exc=exc)
        else:
            _resolve(p, result=ids)
        return False


def _run_in_context(decide: Callable[[], Any], event_meta: meta.EventMetadata) -> Any:
    with meta.caused_by(event_meta):
        return decide()


def _as_list(result: Iterable[Any] | Any) -> list[Any]:
    if result is None:
        return []
    if isinstance(result, list | tuple):
        return list(result)
    return [result]


# A batch's outcomes, gathered while it commits (in its worker thread), settled at its end.
_Outcome = tuple[_Pending, list[int] | None, BaseException | None]
_outcomes: ContextVar[list[_Outcome] | None] = ContextVar("audifi_group_outcomes", default=None)


def _resolve(
    p: _Pending, *, result: list[int] | None = None, exc: BaseException | None = None
) -> None:
    gathered = _outcomes.get()
    if gathered is not None:
        gathered.append((p, result, exc))
    else:
        _settle_all([(p, result, exc)])


def _settle_all(outcomes: list[_Outcome]) -> None:
    """The callers' futures settled on their loops: one call_soon_threadsafe per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].future.get_loop(), []).append(outcome)
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(_settle, settled)


def _settle(outcomes: list[_Outcome]) -> None:
    for p, result, exc in outcomes:
        if p.future.done():
            continue
        if exc is not None:
            p.future.set_exception(exc)
        else:
            p.future.set_result(result or [])


async def run_command(
    store: EventStore[Any], command: Callable[..., T], /, *args: Any, **kwargs: Any
) -> T:
    """One command, saved on its own; a lost race surfaces as ConcurrencyConflict."""
    try:
        return await store.call(command, *args, **kwargs)
    except IntegrityError as exc:
        raise ConcurrencyConflict(str(exc)) from exc


Command = Callable[..., Awaitable[Any]]
