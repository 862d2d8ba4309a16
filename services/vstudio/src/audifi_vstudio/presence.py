"""Presence changes told to a room at a bounded rate, however fast members come and go.

Every join sent to every member makes a room's cost grow with the square of its size (5,000
sockets opening one room: 12.5 million frames, and as many names). So this replica's joins
and leaves in a room are gathered and told at most once per interval (the first change at
once, when the room was quiet): a handful as the seed's frames, one each (`user_joined`,
`user_left`), more as one `{"type": "presence_delta", "joined": [{"userId", "displayName"}],
"left": [userId], "count"}` frame, which names at most `named` users each way and says how
many connections the room holds (`count`): a client of a big room keeps a count and the
names it was given, as the `presence` frame on connect gives it. A joiner the delta does not
name is told its own `user_joined` directly, so every member sees its join confirmed once.
A user who joined and left within one batch is told neither way.

The interval grows with this replica's audience, so the presence frames it sends stay within
`budget` a second however many sockets it holds: `max(interval, audience / budget)` (4,000
frames/s: 0.25 s up to 1,000 sockets, 1.25 s for a room of 5,000, 5 s at 20,000). Each
replica batches its own members' changes, so a member receives at most (replicas /
interval) presence frames a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from typing import Protocol
from uuid import UUID

import msgspec

log = logging.getLogger(__name__)


class _Frame(msgspec.Struct, tag_field="type", rename="camel", frozen=True):
    pass


class UserJoined(_Frame, tag="user_joined"):
    user_id: str
    display_name: str | None


class UserLeft(_Frame, tag="user_left"):
    user_id: str


class PresentUser(msgspec.Struct, rename="camel", frozen=True):
    user_id: str
    display_name: str | None


class PresenceDelta(_Frame, tag="presence_delta"):
    joined: list[PresentUser]
    left: list[str]
    count: int  # the room's connections once these changes are made


_encoder = msgspec.json.Encoder()

Tell = Callable[[bytes], None]
"""Hands a frame to one connection (its send queue): must not block."""


class Room(Protocol):
    async def broadcast(self, session_id: UUID, frame: bytes) -> None: ...

    async def count(self, session_id: UUID) -> int: ...

    def audience(self) -> int: ...


class PresenceAnnouncer:
    def __init__(
        self,
        rooms: Room,
        *,
        interval: float = 0.25,
        individually: int = 8,
        named: int = 50,
        budget: float = 4_000.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rooms = rooms
        self.interval = interval
        self.individually = individually
        self.named = named
        self.budget = budget
        self.clock = clock
        # Per session: user -> ("joined", display name) | ("left", None), the latest change.
        self._pending: dict[UUID, dict[str, tuple[str, str | None]]] = {}
        # Per session: the connections whose join waits, by user, to be confirmed to them.
        self._joiners: dict[UUID, dict[str, list[Tell]]] = {}
        self._told_at: dict[UUID, float] = {}
        self._scheduled: dict[UUID, asyncio.TimerHandle] = {}
        self._flushing: set[asyncio.Task[None]] = set()

    def joined(
        self,
        session_id: UUID,
        user_id: str,
        display_name: str | None,
        tell: Tell | None = None,
    ) -> None:
        """`user_id` joined; `tell` reaches the joining connection, should the room's frame
        not name it."""
        if tell is not None:
            self._joiners.setdefault(session_id, {}).setdefault(user_id, []).append(tell)
        self._change(session_id, user_id, ("joined", display_name))

    def left(self, session_id: UUID, user_id: str) -> None:
        self._change(session_id, user_id, ("left", None))

    def current_interval(self) -> float:
        """The shortest time between two tellings of one room: longer as more listen."""
        return max(self.interval, self.rooms.audience() / self.budget)

    def _change(self, session_id: UUID, user_id: str, change: tuple[str, str | None]) -> None:
        pending = self._pending.setdefault(session_id, {})
        earlier = pending.pop(user_id, None)
        if earlier is not None and earlier[0] != change[0]:
            # Joined then left (or left then joined again) in one batch. A leave cancels the
            # join nobody was told of; a join after a leave is told (the leave may have been).
            if change[0] == "left":
                return
        pending[user_id] = change  # re-inserted: the batch keeps the order of last changes
        if session_id not in self._scheduled:
            told = self._told_at.get(session_id)
            interval = self.current_interval()
            delay = 0.0 if told is None else max(0.0, told + interval - self.clock())
            loop = asyncio.get_running_loop()
            self._scheduled[session_id] = loop.call_later(delay, self._flush_soon, session_id)

    def _flush_soon(self, session_id: UUID) -> None:
        task = asyncio.get_running_loop().create_task(self._flush(session_id))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self, session_id: UUID) -> None:
        self._scheduled.pop(session_id, None)
        pending = self._pending.pop(session_id, {})
        joiners = self._joiners.pop(session_id, {})
        self._told_at[session_id] = told = self.clock()
        # Forgotten once it no longer delays anything: a room told once is not kept forever.
        loop = asyncio.get_running_loop()
        loop.call_later(self.current_interval(), self._forget, session_id, told)
        if not pending:
            return
        try:
            count = None
            if len(pending) > self.individually:
                count = await self.rooms.count(session_id)
            frames = self.frames(pending, count)
            for frame in frames:
                await self.rooms.broadcast(session_id, _encoder.encode(frame))
        except Exception:  # presence is ephemeral: the next change tells the room again
            log.warning("presence of session %s not told", session_id, exc_info=True)
            return
        named = _named(frames)
        for user_id, tells in joiners.items():
            change = pending.get(user_id)
            if change is None or change[0] != "joined" or user_id in named:
                continue
            own = _encoder.encode(UserJoined(user_id=user_id, display_name=change[1]))
            for tell in tells:
                with contextlib.suppress(Exception):  # a connection gone meanwhile
                    tell(own)

    def _forget(self, session_id: UUID, told: float) -> None:
        if self._told_at.get(session_id) == told:
            del self._told_at[session_id]

    def frames(
        self, pending: dict[str, tuple[str, str | None]], count: int | None = None
    ) -> list[_Frame]:
        if len(pending) <= self.individually:
            return [
                UserJoined(user_id=user, display_name=name) if kind == "joined" else UserLeft(user)
                for user, (kind, name) in pending.items()
            ]
        joined = (PresentUser(u, name) for u, (kind, name) in pending.items() if kind == "joined")
        left = (user for user, (kind, _) in pending.items() if kind == "left")
        return [
            PresenceDelta(
                joined=list(itertools.islice(joined, self.named)),
                left=list(itertools.islice(left, self.named)),
                count=0 if count is None else count,
            )
        ]

    async def close(self) -> None:
        for handle in self._scheduled.values():
            handle.cancel()
        sessions = list(self._scheduled)
        self._scheduled.clear()
        for session_id in sessions:  # what waited is told now
            await self._flush(session_id)
        for task in list(self._flushing):
            with contextlib.suppress(Exception):
                await task


def _named(frames: list[_Frame]) -> set[str]:
    """The users whose join the frames name."""
    named: set[str] = set()
    for frame in frames:
        if isinstance(frame, UserJoined):
            named.add(frame.user_id)
        elif isinstance(frame, PresenceDelta):
            named.update(user.user_id for user in frame.joined)
    return named
