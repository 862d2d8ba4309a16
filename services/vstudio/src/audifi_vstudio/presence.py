"""Presence changes told to a room at a bounded rate, however fast members come and go.

Every join sent to every member makes a room's cost grow with the square of its size (5,000
sockets opening one room: 25 million frames). So this replica's joins and leaves in a room
are gathered and told at most once per `interval` (the first change at once, when the room
was quiet): a handful as the seed's frames, one each (`user_joined`, `user_left`), more as one
`{"type": "presence_delta", "joined": [{"userId", "displayName"}], "left": [userId]}` frame.
A user who joined and left within one batch is told neither way. Each replica batches its
own members' changes, so a member receives at most (replicas / `interval`) presence frames a
second.
"""

from __future__ import annotations

import asyncio
import contextlib
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


_encoder = msgspec.json.Encoder()


class Broadcast(Protocol):
    async def broadcast(self, session_id: UUID, frame: bytes) -> None: ...


class PresenceAnnouncer:
    def __init__(
        self,
        rooms: Broadcast,
        *,
        interval: float = 0.25,
        individually: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rooms = rooms
        self.interval = interval
        self.individually = individually
        self.clock = clock
        # Per session: user -> ("joined", display name) | ("left", None), the latest change.
        self._pending: dict[UUID, dict[str, tuple[str, str | None]]] = {}
        self._told_at: dict[UUID, float] = {}
        self._scheduled: dict[UUID, asyncio.TimerHandle] = {}
        self._flushing: set[asyncio.Task[None]] = set()

    def joined(self, session_id: UUID, user_id: str, display_name: str | None) -> None:
        self._change(session_id, user_id, ("joined", display_name))

    def left(self, session_id: UUID, user_id: str) -> None:
        self._change(session_id, user_id, ("left", None))

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
            delay = 0.0 if told is None else max(0.0, told + self.interval - self.clock())
            loop = asyncio.get_running_loop()
            self._scheduled[session_id] = loop.call_later(delay, self._flush_soon, session_id)

    def _flush_soon(self, session_id: UUID) -> None:
        task = asyncio.get_running_loop().create_task(self._flush(session_id))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self, session_id: UUID) -> None:
        self._scheduled.pop(session_id, None)
        pending = self._pending.pop(session_id, {})
        self._told_at[session_id] = told = self.clock()
        # Forgotten once it no longer delays anything: a room told once is not kept forever.
        loop = asyncio.get_running_loop()
        loop.call_later(self.interval, self._forget, session_id, told)
        if not pending:
            return
        try:
            for frame in self.frames(pending):
                await self.rooms.broadcast(session_id, _encoder.encode(frame))
        except Exception:  # presence is ephemeral: the next change tells the room again
            log.warning("presence of session %s not told", session_id, exc_info=True)

    def _forget(self, session_id: UUID, told: float) -> None:
        if self._told_at.get(session_id) == told:
            del self._told_at[session_id]

    def frames(self, pending: dict[str, tuple[str, str | None]]) -> list[_Frame]:
        if len(pending) <= self.individually:
            return [
                UserJoined(user_id=user, display_name=name) if kind == "joined" else UserLeft(user)
                for user, (kind, name) in pending.items()
            ]
        return [
            PresenceDelta(
                joined=[
                    PresentUser(user, name)
                    for user, (kind, name) in pending.items()
                    if kind == "joined"
                ],
                left=[user for user, (kind, _) in pending.items() if kind == "left"],
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
