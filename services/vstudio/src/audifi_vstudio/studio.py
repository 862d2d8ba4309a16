"""V Studio's service layer: what a request or a socket frame asks, free of the web.

`Studio` turns callers into what the application records: accounts into pseudonyms (the
service's key, tally.py), a `shares` decision's holders into its snapshot of weights (asked of
nft through the `Masters` port, with the caller's own token), votes into group-committed
decisions; and tells the session's room what changed (`Rooms.broadcast`: in-process when
embedded, Redis pub/sub across replicas when distributed). Votes are coalesced: a decision
that received votes is announced (`vote_update`, its whole results read back from the event
store) at most every `interval` seconds, however many votes arrived — no replica holds a
tally in memory, each announces what the store says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar
from uuid import UUID, uuid4

import asyncpg
from audifi_kit.eventstore import ConcurrencyConflict, EventStore, GroupCommit
from audifi_kit.keys import service_key
from audifi_kit.media.storage import InMemoryStorage, MediaStorage
from audifi_kit.settings import Settings

from audifi_vstudio.application import VstudioApplication
from audifi_vstudio.domain.session import SHARES, Decision, NotAProducer, StudioSession
from audifi_vstudio.domain.tally import pseudonym
from audifi_vstudio.frames import (
    ContributionAddedFrame,
    DecisionOpenedFrame,
    SessionLockedFrame,
    Snapshot,
    decision_closed,
    decision_state,
    encode,
    vote_update,
)

log = logging.getLogger(__name__)

KEY_ENV = "AUDIFI_VSTUDIO_PSEUDONYM_KEY"
# Replicas voting on one decision at once: a batch that lost the race is decided again.
VOTE_RACES = 5
KEY_FILE = "vstudio-pseudonym.key"

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class MasterFacts:
    master_id: UUID
    artist_id: str
    title: str


class Masters(Protocol):
    """nft's word on a master and its holders (adapters/masters_nft.py)."""

    async def master(self, master_id: UUID, token: str) -> MasterFacts: ...

    async def holders(self, master_id: UUID, token: str) -> dict[str, int]: ...


class Broadcast(Protocol):
    async def broadcast(self, session_id: UUID, frame: bytes) -> None: ...


def pseudonym_key(settings: Settings) -> bytes:
    """The key of voters' pseudonyms: AUDIFI_VSTUDIO_PSEUDONYM_KEY (hex; every replica the
    same), else one made once and kept in the settings' var_dir (a single machine)."""
    return service_key(settings, KEY_ENV, KEY_FILE)


class VoteUpdates:
    """Decisions that received votes, announced at most every `interval` seconds each."""

    def __init__(
        self,
        read: Callable[[UUID], Any],
        rooms: Broadcast,
        interval: float = 0.1,
    ) -> None:
        self.read = read
        self.rooms = rooms
        self.interval = interval
        self._dirty: dict[UUID, UUID] = {}  # decision -> session
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def touch(self, session_id: UUID, decision_id: UUID) -> None:
        self._dirty[decision_id] = session_id
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="vstudio vote updates")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def flush(self) -> None:
        dirty, self._dirty = self._dirty, {}
        for decision_id, session_id in dirty.items():
            try:
                decision = await self.read(decision_id)
                await self.rooms.broadcast(session_id, encode(vote_update(decision)))
            except Exception:  # the next vote announces it again; the room must go on
                log.warning("vote update of %s not sent", decision_id, exc_info=True)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()
            await asyncio.sleep(self.interval)  # the rate limit: votes meanwhile wait


class SharedReads(Generic[K, V]):
    """Concurrent reads of one key share one read, which started after each of them asked.

    A big room opening: hundreds of sockets a second each wanting the session's snapshot.
    One read runs per key; whoever asks meanwhile waits for the next one, started when it
    ends, so nobody gets a result read before they asked (a socket subscribes to its room,
    then reads: a change in between is seen twice, never missed)."""

    def __init__(self, read: Callable[[K], Awaitable[V]]) -> None:
        self.read = read
        self._running: dict[K, asyncio.Future[V]] = {}
        self._begun: set[K] = set()  # keys whose running read has looked already
        self._next: dict[K, asyncio.Future[V]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        if (shared := self._running.get(key)) is None:
            shared = self._running[key] = loop.create_future()
            self._start(key, shared)
        elif key in self._begun and (shared := self._next.get(key)) is None:
            shared = self._next[key] = loop.create_future()
        return await asyncio.shield(shared)  # a waiter cancelled leaves the read to others

    def _start(self, key: K, shared: asyncio.Future[V]) -> None:
        task = asyncio.get_running_loop().create_task(self._run(key, shared))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: K, shared: asyncio.Future[V]) -> None:
        self._begun.add(key)
        try:
            shared.set_result(await self.read(key))
        except asyncio.CancelledError:
            shared.cancel()
            raise
        except Exception as exc:
            shared.set_exception(exc)
            shared.exception()  # retrieved: nobody may be waiting any more
        finally:
            del self._running[key]
            self._begun.discard(key)
            if (waiting := self._next.pop(key, None)) is not None:
                self._running[key] = waiting
                self._start(key, waiting)


class Studio:
    def __init__(
        self,
        store: EventStore[VstudioApplication],
        group: GroupCommit,
        masters: Masters,
        rooms: Broadcast,
        key: bytes,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        interval: float = 0.1,
        pool: asyncpg.Pool | None = None,
        storage: MediaStorage | None = None,
    ) -> None:
        self.storage = storage or InMemoryStorage()  # producers' takes
        self.store = store
        self.pool = pool  # the service database's, for its read models
        self.group = group
        self.masters = masters
        self.rooms = rooms
        self.key = key
        self.clock = clock
        self.updates = VoteUpdates(self.decision, rooms, interval)
        self._snapshots: SharedReads[UUID, bytes] = SharedReads(self._snapshot_frame)

    @property
    def app(self) -> VstudioApplication:
        return self.store.app

    async def start(self) -> None:
        await self.updates.start()

    async def stop(self) -> None:
        await self.updates.stop()

    # -- reads ---------------------------------------------------------------------------------

    async def session(self, session_id: UUID) -> StudioSession:
        return await self.store.call(self.app.session, session_id)

    async def decision(self, decision_id: UUID, session_id: UUID | None = None) -> Decision:
        return await self.store.call(self.app.decision, decision_id, session_id)

    async def decisions(self, session: StudioSession) -> list[Decision]:
        return await self.store.call(self.app.decisions_of, session.id)

    async def snapshot(self, session_id: UUID) -> Snapshot:
        session = await self.session(session_id)
        return Snapshot(
            session_id=session.id,
            status=session.status,
            decisions=[decision_state(d) for d in await self.decisions(session)],
        )

    async def snapshot_frame(self, session_id: UUID) -> bytes:
        """The `snapshot` frame of a socket that just connected: one read, and one encoding,
        shared by the sockets connecting meanwhile (SessionNotFound: no such session)."""
        return await self._snapshots.get(session_id)

    async def _snapshot_frame(self, session_id: UUID) -> bytes:
        return encode(await self.snapshot(session_id))

    def voter(self, decision_id: UUID, account_id: str) -> str:
        return pseudonym(self.key, decision_id, account_id)

    # -- commands ------------------------------------------------------------------------------

    async def create_session(
        self,
        *,
        master_id: UUID,
        actor_id: str,
        actor_is_admin: bool,
        token: str,
        title: str,
        scheduled_start: datetime | None,
    ) -> StudioSession:
        master = await self.masters.master(master_id, token)  # MASTER_NOT_FOUND
        return await self.store.call(
            self.app.create_session,
            session_id=uuid4(),
            master_id=master_id,
            artist_id=master.artist_id,
            actor_id=actor_id,
            actor_is_admin=actor_is_admin,
            title=title,
            scheduled_start=scheduled_start,
            now=self.clock(),
        )

    async def open_decision(
        self,
        session_id: UUID,
        *,
        actor_id: str,
        actor_is_admin: bool,
        token: str,
        question: str,
        options: list[str] | None,
        weighting: str,
        closes_at: datetime | None,
        contribution_ids: list[Any] | None = None,
    ) -> Decision:
        session = await self.session(session_id)
        self.app.require_artist(session, actor_id, actor_is_admin, "opens decisions")
        session.require_open()
        decision_id = uuid4()
        weights = None
        if weighting == SHARES:
            holders = await self.masters.holders(session.master_id, token)
            weights = {self.voter(decision_id, a): n for a, n in holders.items() if n > 0}
        decision = await self.store.call(
            self.app.open_decision,
            session_id,
            decision_id=decision_id,
            actor_id=actor_id,
            actor_is_admin=actor_is_admin,
            question=question,
            options=options,
            weighting=weighting,
            closes_at=closes_at,
            weights=weights,
            now=self.clock(),
            contribution_ids=contribution_ids,
        )
        frame = DecisionOpenedFrame(
            decision_id=decision.id,
            question=decision.question,
            options=decision.options,
            weighting=decision.weighting,
            closes_at=decision.closes_at,
        )
        await self.rooms.broadcast(session_id, encode(frame))
        return decision

    async def vote(
        self, session_id: UUID, decision_id: UUID, *, account_id: str, choice: Any
    ) -> Decision:
        """The account's vote, recorded (group-committed with the decision's other votes);
        its room hears the new results within `interval`."""
        voter = self.voter(decision_id, account_id)
        app, now = self.app, self.clock()
        decided: list[Decision] = []

        def decide() -> Decision:
            decision = app.decide_vote(
                decision_id, session_id=session_id, voter=voter, choice=choice, now=now
            )
            decided.append(decision)
            return decision

        for attempt in range(VOTE_RACES):
            decided.clear()
            try:
                await self.group.submit(decide, loads=[decision_id])
                break
            except ConcurrencyConflict:  # another replica's batch took the decision first
                if attempt == VOTE_RACES - 1:
                    raise
        self.updates.touch(session_id, decision_id)
        # The decision as this vote left it (or a later vote of its batch): reading it again
        # from the store would copy the whole decision, most of a vote's cost at 1,000 ballots.
        return decided[-1]

    async def close_decision(
        self, session_id: UUID, decision_id: UUID, *, actor_id: str, actor_is_admin: bool
    ) -> Decision:
        decision = await self.store.call(
            self.app.close_decision,
            decision_id,
            session_id=session_id,
            actor_id=actor_id,
            actor_is_admin=actor_is_admin,
            now=self.clock(),
        )
        await self.rooms.broadcast(session_id, encode(decision_closed(decision)))
        return decision

    async def close_if_due(self, decision_id: UUID) -> bool:
        """The clock's: a decision whose `closesAt` came, closed and announced."""
        if not await self.store.call(self.app.close_if_due, decision_id, now=self.clock()):
            return False
        decision = await self.decision(decision_id)
        await self.rooms.broadcast(decision.session_id, encode(decision_closed(decision)))
        return True

    async def lock(self, session_id: UUID, *, actor_id: str, actor_is_admin: bool) -> StudioSession:
        before = await self.session(session_id)
        was_open = {d.id for d in await self.decisions(before) if d.status == "open"}
        session = await self.store.call(
            self.app.lock_session,
            session_id,
            actor_id=actor_id,
            actor_is_admin=actor_is_admin,
            now=self.clock(),
        )
        for decision in await self.decisions(session):
            if decision.id in was_open:
                await self.rooms.broadcast(session_id, encode(decision_closed(decision)))
        if before.status != session.status:
            await self.rooms.broadcast(
                session_id, encode(SessionLockedFrame(session_id=session_id))
            )
        return session

    # -- producers and their takes -------------------------------------------------------------

    async def invite_producer(
        self, session_id: UUID, *, account_id: str, actor_id: str, actor_is_admin: bool
    ) -> StudioSession:
        return await self.store.call(
            self.app.invite_producer,
            session_id,
            account_id=account_id,
            actor_id=actor_id,
            actor_is_admin=actor_is_admin,
            now=self.clock(),
        )

    async def check_contributor(
        self, session_id: UUID, *, actor_id: str, actor_is_admin: bool
    ) -> StudioSession:
        """Refused before anything is stored: the session open, the caller its producer."""
        session = await self.session(session_id)
        session.require_open()
        if not session.may_contribute(actor_id, actor_is_admin):
            raise NotAProducer(details={"sessionId": str(session_id)})
        return session

    async def add_contribution(
        self,
        session_id: UUID,
        *,
        actor_id: str,
        actor_is_admin: bool,
        title: str,
        note: str,
        chunks: AsyncIterator[bytes],
    ) -> tuple[StudioSession, UUID]:
        """A take stored (audio only: a stem or a mix) and recorded; its room hears of it."""
        await self.check_contributor(session_id, actor_id=actor_id, actor_is_admin=actor_is_admin)
        stored = await self.storage.put(f"contributions/{session_id}", chunks, expect="audio")
        contribution_id = uuid4()
        session = await self.store.call(
            self.app.add_contribution,
            session_id,
            contribution_id=contribution_id,
            actor_id=actor_id,
            actor_is_admin=actor_is_admin,
            title=title,
            note=note,
            file={
                "key": stored.key,
                "mime": stored.mime,
                "size": stored.size,
                "sha256": stored.sha256,
            },
            now=self.clock(),
        )
        frame = ContributionAddedFrame(
            contribution_id=contribution_id,
            producer_id=actor_id,
            title=title,
            note=note,
            url=contribution_url(session_id, contribution_id),
        )
        await self.rooms.broadcast(session_id, encode(frame))
        return session, contribution_id


def contribution_url(session_id: UUID, contribution_id: UUID) -> str:
    return f"/api/v1/vstudio/sessions/{session_id}/contributions/{contribution_id}/file"
