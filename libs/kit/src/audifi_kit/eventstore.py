"""A service's event store: its eventsourcing Application on its own PostgreSQL database.

eventsourcing has no asyncio API (ARCHITECTURE.md §10), so the application is built once and
every call goes through `asyncio.to_thread`, never more at once than the pool has connections.
Its PostgreSQL recorder locks the events table per insert transaction, so one application's
writes are serialised: `GroupCommit` saves the events of many concurrent commands in one
transaction for the hot write paths.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import UUID

import asyncpg
from eventsourcing.application import Application, ProcessingEvent, Repository
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    IntegrityError,
    Mapper,
    MapperDeserialisationError,
    Notification,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic, resolve_topic, strtobool
from psycopg.sql import SQL, Identifier

from audifi_kit import metadata as meta
from audifi_kit.postgres import PgLocation, service_database
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
        cls = resolve_topic(stored_event.topic)
        state = stored_event.state
        try:
            if self.cipher:
                state = self.cipher.decrypt(state)
            if self.compressor:
                state = self.compressor.decompress(state)
            event_state: dict[str, Any] = self.transcoder.decode(state)
        except Exception as exc:
            raise MapperDeserialisationError(
                f"cannot decode {stored_event.topic} of {stored_event.originator_id}"
                f" v{stored_event.originator_version}: {exc}"
            ) from exc
        event_meta = meta.EventMetadata.from_dict(event_state.pop(META_KEY, None))
        originator_id = stored_event.originator_id
        event_state["originator_id"] = (
            originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
        )
        event_state["originator_version"] = stored_event.originator_version
        class_version = getattr(cls, "class_version", 1)
        from_version = event_state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
            from_version += 1
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", event_state)
        return domain_event, event_meta


class InboxRecorder(PostgresApplicationRecorder):
    """The library's recorder, plus an inbox row written in the same transaction as events.

    A consumer whose handler changes this service's event store passes `inbox=(consumer,
    message_id)` to `save`: a redelivered message then fails on the inbox's primary key and
    nothing is applied twice (eventsourcing's own tracking keeps one max position per upstream,
    which a bus that redelivers out of order cannot use).
    """

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
        self._insert_inbox = SQL(
            "INSERT INTO {schema}.{inbox} (consumer, message_id) VALUES (%s, %s) "
            "ON CONFLICT DO NOTHING RETURNING true"
        ).format(schema=Identifier(self.datastore.schema), inbox=Identifier(INBOX_TABLE))

    def _insert_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        inbox: tuple[str, str] | None = kwargs.get("inbox")
        if inbox is not None:
            # Read the answer now: a unique violation inside the recorder's pipeline would
            # surface at whichever later statement syncs first, sometimes only as "pipeline
            # aborted" (an OperationalError). A duplicate is always an IntegrityError here.
            curs.execute(self._insert_inbox, inbox, prepare=True)
            if curs.fetchone() is None:
                raise IntegrityError(f"{inbox[0]} has already applied {inbox[1]}")
        super()._insert_events(curs, stored_events, **kwargs)


class ServiceApplication(Application[UUID]):
    """Base of every service's application: metadata-carrying mapper, inbox-aware recorder."""

    def construct_mapper(self) -> Mapper[UUID]:
        base = super().construct_mapper()
        return MetadataMapper(
            transcoder=base.transcoder, compressor=base.compressor, cipher=base.cipher
        )

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
        self, batch: Sequence[tuple[Sequence[Any], meta.EventMetadata]]
    ) -> list[list[int]]:
        """Save several commands' collected events in one transaction.

        Each entry is one command's events and the metadata of the request that caused it;
        returns each command's notification ids.
        """
        processing = ProcessingEvent[UUID]()
        spans: list[tuple[int, int]] = []
        for events, event_meta in batch:
            start = len(processing.events)
            for event in events:
                object.__setattr__(event, META_ATTR, event_meta)
            processing.collect_events(*events)
            spans.append((start, len(processing.events)))
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        ids = [r.notification.id for r in recordings]
        return [ids[a:b] for a, b in spans]


A = TypeVar("A", bound=ServiceApplication)
T = TypeVar("T")


@dataclass(slots=True)
class EventStore(Generic[A]):
    """One service's event store and the way async code reaches it."""

    service: str
    app: A
    location: PgLocation
    settings: Settings
    _slots: asyncio.Semaphore

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
            return await asyncio.to_thread(fn, *args, **kwargs)

    def decode(self, n: Notification) -> tuple[DomainEventProtocol[UUID], meta.EventMetadata]:
        return self.mapper.decode(n)

    async def connect(self, **kwargs: Any) -> asyncpg.Connection:
        return await asyncpg.connect(self.location.asyncpg_dsn, **kwargs)

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        kwargs.setdefault("min_size", 1)
        kwargs.setdefault("max_size", 4)
        return await asyncpg.create_pool(self.location.asyncpg_dsn, **kwargs)

    def close(self) -> None:
        self.app.close()


def application_env(location: PgLocation, settings: Settings) -> dict[str, str]:
    env = {
        **location.eventsourcing_env(),
        "CREATE_TABLE": "y",
        "POSTGRES_POOL_SIZE": str(settings.pool_size),
        "POSTGRES_MAX_OVERFLOW": "0",
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",  # its insert path skips the table lock (§10)
        "POSTGRES_PRE_PING": "y",
        "APPLICATION_RECORDER_TOPIC": get_topic(InboxRecorder),
    }
    if settings.aggregate_cache_size > 0:
        env["AGGREGATE_CACHE_MAXSIZE"] = str(settings.aggregate_cache_size)
        env["AGGREGATE_CACHE_FASTFORWARD"] = "y"
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


class _Deferred(Exception):
    """The command touched an aggregate a failed command left unusable in this batch."""


@dataclass(slots=True)
class _Batch:
    """Aggregates loaded in the current batch: later commands continue from their state."""

    aggregates: dict[UUID, Any] = field(default_factory=dict)
    poisoned: set[UUID] = field(default_factory=set)


_current_batch: ContextVar[_Batch | None] = ContextVar("audifi_group_commit_batch", default=None)


class BatchRepository(Repository[UUID]):
    """The library's repository; inside a group-commit batch, one object per aggregate.

    A command that loads an aggregate an earlier command of the same batch already changed
    gets that changed object, so both commands' events are saved in one transaction, in order,
    and neither loses to the other.
    """

    def get(self, aggregate_id: UUID, **kwargs: Any) -> Any:  # type: ignore[override]
        batch = _current_batch.get()
        if batch is None or kwargs.get("version") is not None:
            return super().get(aggregate_id, **kwargs)
        if aggregate_id in batch.poisoned:
            raise _Deferred(aggregate_id)
        aggregate = batch.aggregates.get(aggregate_id)
        if aggregate is None:
            aggregate = super().get(aggregate_id, **kwargs)
            batch.aggregates[aggregate_id] = aggregate
        return aggregate


class GroupCommit:
    """Saves the events of many concurrent commands in one transaction.

    A command is a function run in the worker thread that loads aggregates through the
    application's repository, calls their methods and returns the aggregates it created or
    changed, without saving them. Commands queued while a transaction runs form the next batch.
    Commands on the same aggregate chain inside a batch (see `BatchRepository`). If the batch
    conflicts with a writer outside it, each command is decided again and saved on its own, and
    only a command that conflicts then gets `ConcurrencyConflict`.
    """

    def __init__(self, store: EventStore[Any], *, max_batch: int = 500) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0
        self.fallbacks = 0

    async def submit(self, decide: Callable[[], Iterable[Any] | Any]) -> list[int]:
        """Run `decide` in the batch; returns the notification ids of the events it saved."""
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="group-commit")
        loop = asyncio.get_running_loop()
        pending = _Pending(decide, meta.current.get(), loop.create_future())
        await self._queue.put(pending)
        return await pending.future

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def _run(self) -> None:
        carry: list[_Pending] = []
        while True:
            batch = carry or [await self._queue.get()]
            carry = []
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                carry = await self.store.call(self._commit, batch)
            except BaseException as exc:  # never leave a caller waiting forever
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
            self.batches += 1

    def _commit(self, batch: list[_Pending]) -> list[_Pending]:
        """Runs in the worker thread. Returns the commands deferred to the next batch."""
        decided, deferred = self._decide_all(batch)
        if not decided:
            return deferred
        try:
            results = self.store.app.save_batch([(events, p.metadata) for p, events in decided])
        except IntegrityError:
            self.fallbacks += 1
            for p, _ in decided:
                self._commit_alone(p)
            return deferred
        for (p, _), ids in zip(decided, results, strict=True):
            _resolve(p, result=ids)
        return deferred

    def _decide_all(
        self, batch: list[_Pending]
    ) -> tuple[list[tuple[_Pending, list[Any]]], list[_Pending]]:
        state = _Batch()
        token = _current_batch.set(state)
        decided: list[tuple[_Pending, list[Any]]] = []
        deferred: list[_Pending] = []
        try:
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
        return decided, deferred

    def _commit_alone(self, p: _Pending) -> None:
        try:
            decided, _ = self._decide_all([p])
            if not decided:
                return  # failed alone: its future already carries the error
            [ids] = self.store.app.save_batch([(decided[0][1], p.metadata)])
        except IntegrityError as exc:
            _resolve(p, exc=ConcurrencyConflict(str(exc)))
        except Exception as exc:
            _resolve(p, exc=exc)
        else:
            _resolve(p, result=ids)


def _run_in_context(decide: Callable[[], Any], event_meta: meta.EventMetadata) -> Any:
    with meta.caused_by(event_meta):
        return decide()


def _as_list(result: Iterable[Any] | Any) -> list[Any]:
    if result is None:
        return []
    if isinstance(result, list | tuple):
        return list(result)
    return [result]


def _resolve(
    p: _Pending, *, result: list[int] | None = None, exc: BaseException | None = None
) -> None:
    loop = p.future.get_loop()

    def settle() -> None:
        if p.future.done():
            return
        if exc is not None:
            p.future.set_exception(exc)
        else:
            p.future.set_result(result or [])

    loop.call_soon_threadsafe(settle)


async def run_command(
    store: EventStore[Any], command: Callable[..., T], /, *args: Any, **kwargs: Any
) -> T:
    """One command, saved on its own; a lost race surfaces as ConcurrencyConflict."""
    try:
        return await store.call(command, *args, **kwargs)
    except IntegrityError as exc:
        raise ConcurrencyConflict(str(exc)) from exc


Command = Callable[..., Awaitable[Any]]
