"""Session rooms: who is in a V Studio session right now, and the frames sent to its members.

One room per StudioSession. A connection subscribes to the room's frames, joins it (presence)
and leaves it; anyone may broadcast a frame to a room, and every connection subscribed to it
receives the frame, on whichever vstudio replica it is connected. Two implementations, chosen
by settings like every adapter (ARCHITECTURE.md §6):

* `InMemoryRooms` (embedded mode, `settings.redis_url` unset): one process, plain dicts.
* `RedisRooms` (distributed mode): a pub/sub channel per session carries frames to every
  replica, which hands them to its own subscribers; a sorted set per session holds presence,
  each member scored by the time its entry expires. The replica holding a member's connection
  refreshes the entry every `presence_ttl / 3`; a replica that crashes stops refreshing, so its
  members drop out of every presence list within `presence_ttl`, with no clean-up needed.

Frames are ephemeral: delivered at most once, to whoever is subscribed at that moment, and
lost if Redis or a replica restarts on the way. That is right for presence and live updates,
and it is why durable facts (votes cast, decisions closed, the master lock) are events in the
service's event store, never pub/sub messages: a frame may announce a fact the store already
holds; a client that missed one reads the state again over HTTP.

`subscribe` takes a `Deliver` callback that must not block (the room hands one frame to every
subscriber in turn); the connection behind it bounds its own queue (see `api/ws.py`).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import msgspec
import structlog
from audifi_kit.settings import Settings
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

log = structlog.get_logger("audifi.vstudio")

Deliver = Callable[[bytes], None]
"""Hands one frame to a subscriber. Called on the event loop; must not block or await."""


class Member(msgspec.Struct, frozen=True, rename="camel"):
    """One connection in a room. A user may hold several (tabs, devices): one member each."""

    connection_id: str
    user_id: str
    display_name: str | None = None
    joined_at: float = msgspec.field(default_factory=time.time)


class Members(list[Member]):
    """A room's first members as the rooms hand them out again until they change, with a
    `memo` for what callers derive from them (dropped with the list)."""

    __slots__ = ("memo",)

    def __init__(self, members: Iterable[Member]) -> None:
        super().__init__(members)
        self.memo: dict[str, Any] = {}


_member_encoder = msgspec.json.Encoder()
_member_decoder = msgspec.json.Decoder(Member)


class Rooms(abc.ABC):
    """The rooms of every session, as seen from one replica.

    Use as `async with rooms_for(settings) as rooms:`; `close` takes this replica's members
    out of presence.
    """

    def __init__(self) -> None:
        # Per session, subscription number -> its callback: a leave is one dict removal, not a
        # search through a big room's list.
        self._subscribers: dict[UUID, dict[int, Deliver]] = {}
        self._subscriptions = itertools.count()
        self._audience = 0

    def audience(self) -> int:
        """How many subscriptions this replica delivers room frames to, in every room."""
        return self._audience

    async def start(self) -> None:  # noqa: B027 - the in-memory rooms need no start-up
        """Connect to whatever carries the rooms."""

    async def close(self) -> None:  # noqa: B027
        """Stop; this replica's members leave every room."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @abc.abstractmethod
    async def join(self, session_id: UUID, member: Member) -> None:
        """Put `member` into the session's presence (again: replaces its earlier entry)."""

    @abc.abstractmethod
    async def leave(self, session_id: UUID, connection_id: str) -> None:
        """Take the connection out of the session's presence; unknown ones are ignored."""

    @abc.abstractmethod
    async def presence(self, session_id: UUID, limit: int | None = None) -> list[Member]:
        """Who is in the session now, earliest join first (the first `limit` of them)."""

    @abc.abstractmethod
    async def count(self, session_id: UUID) -> int:
        """How many connections are in the session now."""

    async def has_user(self, session_id: UUID, user_id: str) -> bool:
        """Whether any connection of `user_id` is in the session."""
        return any(m.user_id == user_id for m in await self.presence(session_id))

    @abc.abstractmethod
    async def broadcast(self, session_id: UUID, frame: bytes) -> None:
        """Send `frame` to every connection subscribed to the session, on every replica."""

    @asynccontextmanager
    async def subscribe(self, session_id: UUID, deliver: Deliver) -> AsyncIterator[None]:
        """Frames broadcast to the session go to `deliver` while the context is open.

        Entered, the subscription is live: every frame broadcast from then on, from any replica,
        reaches `deliver`, in the order that replica sent them.
        """
        number = next(self._subscriptions)
        self._subscribers.setdefault(session_id, {})[number] = deliver
        self._audience += 1
        try:
            await self._listen(session_id)
            yield
        finally:
            self._audience -= 1
            subscribers = self._subscribers.get(session_id, {})
            subscribers.pop(number, None)
            if not subscribers:
                self._subscribers.pop(session_id, None)
                await self._unlisten(session_id)

    async def _listen(self, session_id: UUID) -> None:  # noqa: B027
        """Make sure frames broadcast to the session reach this replica."""

    async def _unlisten(self, session_id: UUID) -> None:  # noqa: B027
        """No connection here is subscribed to the session any more."""

    def _deliver(self, session_id: UUID, frame: bytes) -> None:
        subscribers = self._subscribers.get(session_id)
        if not subscribers:
            return
        for deliver in tuple(subscribers.values()):
            try:
                deliver(frame)
            except Exception:  # one broken subscriber must not starve the others
                log.exception("a subscriber failed to take a frame", session_id=str(session_id))


class InMemoryRooms(Rooms):
    """Every room in this process's memory: the embedded mode, one vstudio process."""

    def __init__(self) -> None:
        super().__init__()
        # Per session, connection -> member in the order they joined (a re-join keeps its
        # place: dicts keep insertion order), and how many connections each user holds.
        self._members: dict[UUID, dict[str, Member]] = {}
        self._users: dict[UUID, dict[str, int]] = {}
        # Per session, the first members as `presence(limit)` last listed them, and their
        # connections: handed out again until a join or leave changes them (a big room's
        # first members rarely change while hundreds connect).
        self._heads: dict[UUID, tuple[int, Members, frozenset[str]]] = {}

    async def join(self, session_id: UUID, member: Member) -> None:
        members = self._members.setdefault(session_id, {})
        if member.connection_id not in members:
            users = self._users.setdefault(session_id, {})
            users[member.user_id] = users.get(member.user_id, 0) + 1
        members[member.connection_id] = member
        head = self._heads.get(session_id)
        if head is not None and (len(members) <= head[0] or member.connection_id in head[2]):
            del self._heads[session_id]

    async def leave(self, session_id: UUID, connection_id: str) -> None:
        members = self._members.get(session_id)
        if members is None or (member := members.pop(connection_id, None)) is None:
            return
        head = self._heads.get(session_id)
        if head is not None and connection_id in head[2]:
            del self._heads[session_id]
        users = self._users[session_id]
        users[member.user_id] -= 1
        if not users[member.user_id]:
            del users[member.user_id]
        if not members:
            del self._members[session_id]
            del self._users[session_id]
            self._heads.pop(session_id, None)

    async def presence(self, session_id: UUID, limit: int | None = None) -> list[Member]:
        """The members (the first `limit`): a list the caller must not change."""
        members = self._members.get(session_id, {})
        if limit is None:
            return list(members.values())
        head = self._heads.get(session_id)
        if head is None or head[0] != limit:
            first = Members(itertools.islice(members.values(), limit))
            head = (limit, first, frozenset(m.connection_id for m in first))
            if members:
                self._heads[session_id] = head
        return head[1]

    async def count(self, session_id: UUID) -> int:
        return len(self._members.get(session_id, ()))

    async def has_user(self, session_id: UUID, user_id: str) -> bool:
        return user_id in self._users.get(session_id, {})

    async def broadcast(self, session_id: UUID, frame: bytes) -> None:
        self._deliver(session_id, frame)

    async def close(self) -> None:
        self._members.clear()
        self._users.clear()
        self._heads.clear()


class RedisRooms(Rooms):
    """Rooms shared by every vstudio replica through one Redis.

    Keys live under `namespace` (`<namespace>:session:<id>:frames` is the pub/sub channel,
    `<namespace>:session:<id>:presence` the sorted set), so deployments sharing a Redis do not
    see each other's rooms. Presence scores are expiry times on this host's wall clock: the
    replicas' clocks must agree to well within `presence_ttl` (NTP does).
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "audifi_vstudio",
        presence_ttl: float = 30.0,
        refresh_interval: float | None = None,
        confirm_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        self.url = url
        self.namespace = namespace
        self.presence_ttl = presence_ttl
        # A replica refreshing less often than the TTL is, to the others, a crashed one.
        self.refresh_interval = presence_ttl / 3 if refresh_interval is None else refresh_interval
        self.confirm_timeout = confirm_timeout
        self._redis: Redis | None = None
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        # Per session listened to: resolved when Redis confirms the channel's subscription.
        self._confirmed: dict[UUID, asyncio.Future[None]] = {}
        self._sessions: dict[bytes, UUID] = {}
        # This replica's members (connection id -> encoded entry), refreshed while it lives.
        self._entries: dict[UUID, dict[str, bytes]] = {}
        # Serialises presence writes with the refresh, which must not put back a member that
        # left (or an entry a re-join replaced) while its pipeline was on the way.
        self._writing = asyncio.Lock()

    def channel(self, session_id: UUID) -> str:
        return f"{self.namespace}:session:{session_id}:frames"

    def presence_key(self, session_id: UUID) -> str:
        return f"{self.namespace}:session:{session_id}:presence"

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("the rooms are not started")
        return self._redis

    async def start(self) -> None:
        self._redis = Redis.from_url(self.url)
        self._pubsub = self._redis.pubsub()
        await self._pubsub.connect()  # so the reader has a connection before any subscription
        self._reader = asyncio.create_task(self._read(self._pubsub), name="vstudio-rooms-reader")
        self._refresher = asyncio.create_task(self._refresh(), name="vstudio-rooms-presence")

    async def close(self) -> None:
        for task in (self._reader, self._refresher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reader = self._refresher = None
        if self._redis is not None:
            try:
                await self._forget(self._entries)
            except RedisError as exc:  # they expire on their own
                log.warning(
                    "could not take this replica's members out of presence", error=repr(exc)
                )
        self._entries.clear()
        for confirmed in self._confirmed.values():
            confirmed.cancel()
        self._confirmed.clear()
        self._sessions.clear()
        if self._pubsub is not None:
            await self._pubsub.aclose()
            self._pubsub = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def join(self, session_id: UUID, member: Member) -> None:
        entry = _member_encoder.encode(member)
        key = self.presence_key(session_id)
        async with self._writing:
            entries = self._entries.setdefault(session_id, {})
            earlier = entries.get(member.connection_id)
            entries[member.connection_id] = entry
            async with self.redis.pipeline(transaction=True) as pipe:
                if earlier is not None and earlier != entry:
                    pipe.zrem(key, earlier)
                pipe.zadd(key, {entry: time.time() + self.presence_ttl})
                pipe.pexpire(key, self._key_ttl_ms)
                await pipe.execute()

    async def leave(self, session_id: UUID, connection_id: str) -> None:
        async with self._writing:
            entries = self._entries.get(session_id, {})
            entry = entries.pop(connection_id, None)
            if not entries:
                self._entries.pop(session_id, None)
            if entry is not None:
                await self.redis.zrem(self.presence_key(session_id), entry)

    async def presence(self, session_id: UUID, limit: int | None = None) -> list[Member]:
        key, now = self.presence_key(session_id), time.time()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)  # crashed replicas' members
            pipe.zrangebyscore(key, f"({now}", "+inf")
            _, entries = await pipe.execute()
        members = sorted((_member_decoder.decode(e) for e in entries), key=_join_order)
        return members if limit is None else members[:limit]

    async def count(self, session_id: UUID) -> int:
        return int(
            await self.redis.zcount(self.presence_key(session_id), f"({time.time()}", "+inf")
        )

    async def broadcast(self, session_id: UUID, frame: bytes) -> None:
        await self.redis.publish(self.channel(session_id), frame)

    async def _listen(self, session_id: UUID) -> None:
        if self._pubsub is None:
            raise RuntimeError("the rooms are not started")
        confirmed = self._confirmed.get(session_id)
        if confirmed is None:
            confirmed = self._confirmed[session_id] = asyncio.get_running_loop().create_future()
            channel = self.channel(session_id)
            self._sessions[channel.encode()] = session_id
            await self._pubsub.subscribe(channel)
        # Redis orders a publish after a subscription only once it has processed the SUBSCRIBE:
        # until the confirmation arrives, another replica's frame could pass us by.
        await asyncio.wait_for(asyncio.shield(confirmed), self.confirm_timeout)

    async def _unlisten(self, session_id: UUID) -> None:
        confirmed = self._confirmed.pop(session_id, None)
        if confirmed is not None and not confirmed.done():
            confirmed.cancel()
        channel = self.channel(session_id)
        self._sessions.pop(channel.encode(), None)
        if self._pubsub is not None:
            with contextlib.suppress(RedisError):  # a lost connection unsubscribes us anyway
                await self._pubsub.unsubscribe(channel)

    async def _read(self, pubsub: PubSub) -> None:
        """Hand every frame arriving on a listened-to channel to this replica's subscribers."""
        failures = 0
        while True:
            try:
                message = await pubsub.get_message(timeout=None)
            except (RedisError, OSError) as exc:
                # redis-py reconnects and subscribes again on the next read; frames published
                # meanwhile are lost, which ephemeral frames may be.
                failures += 1
                log.warning("room frames unreadable from Redis; retrying", error=repr(exc))
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))
                continue
            failures = 0
            if message is None:
                continue
            session_id = self._sessions.get(message["channel"])
            if session_id is None:  # unsubscribed meanwhile
                continue
            if message["type"] == "message":
                self._deliver(session_id, message["data"])
            elif message["type"] == "subscribe":
                confirmed = self._confirmed.get(session_id)
                if confirmed is not None and not confirmed.done():
                    confirmed.set_result(None)

    async def _refresh(self) -> None:
        """Keep this replica's members present while it lives."""
        while True:
            await asyncio.sleep(self.refresh_interval)
            if not self._entries:
                continue
            try:
                async with self._writing:
                    await self._touch(self._entries)
            except RedisError as exc:
                log.warning("presence not refreshed", error=repr(exc))

    async def _touch(self, entries: dict[UUID, dict[str, bytes]]) -> None:
        expires = time.time() + self.presence_ttl
        async with self.redis.pipeline(transaction=False) as pipe:
            for session_id, members in list(entries.items()):
                if members:
                    key = self.presence_key(session_id)
                    pipe.zadd(key, dict.fromkeys(members.values(), expires))
                    pipe.pexpire(key, self._key_ttl_ms)
            await pipe.execute()

    async def _forget(self, entries: dict[UUID, dict[str, bytes]]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for session_id, members in entries.items():
                if members:
                    pipe.zrem(self.presence_key(session_id), *members.values())
            await pipe.execute()

    @property
    def _key_ttl_ms(self) -> int:
        # The whole set goes when nobody refreshes it: a room every replica left by crashing.
        return math.ceil(self.presence_ttl * 2 * 1000)


def rooms_for(settings: Settings, *, presence_ttl: float = 30.0) -> Rooms:
    """Redis rooms when `settings.redis_url` is set (distributed), else in-memory (embedded).

    Redis keys are namespaced by the deployment's `db_prefix`, as its databases are.
    """
    if settings.redis_url:
        return RedisRooms(
            settings.redis_url,
            namespace=f"{settings.db_prefix}vstudio",
            presence_ttl=presence_ttl,
        )
    return InMemoryRooms()


def _join_order(member: Member) -> tuple[float, str]:
    return member.joined_at, member.connection_id


__all__ = ["Deliver", "InMemoryRooms", "Member", "RedisRooms", "Rooms", "rooms_for"]
