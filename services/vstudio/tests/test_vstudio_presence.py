"""Presence told at a bounded rate: a burst of joins is one frame, not one per join."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from audifi_vstudio.presence import PresenceAnnouncer


class Heard:
    def __init__(self) -> None:
        self.frames: list[tuple[uuid.UUID, dict[str, Any]]] = []

    async def broadcast(self, session_id: uuid.UUID, frame: bytes) -> None:
        self.frames.append((session_id, json.loads(frame)))


async def test_a_burst_of_joins_is_told_as_one_delta_and_a_few_as_the_seeds_frames() -> None:
    heard = Heard()
    announcer = PresenceAnnouncer(heard, interval=60)
    big, small = uuid.uuid4(), uuid.uuid4()
    for i in range(500):
        announcer.joined(big, f"fan{i}", f"Fan {i}")
    announcer.joined(small, "ada", "Ada")
    announcer.joined(small, "bob", None)
    announcer.left(big, "fan7")  # joined and left before anyone was told: neither
    await announcer.close()  # tells what waits
    by_room: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for session, frame in heard.frames:
        by_room.setdefault(session, []).append(frame)
    [delta] = by_room[big]
    assert delta["type"] == "presence_delta" and delta["left"] == []
    assert [u["userId"] for u in delta["joined"]] == [f"fan{i}" for i in range(500) if i != 7]
    assert by_room[small] == [
        {"type": "user_joined", "userId": "ada", "displayName": "Ada"},
        {"type": "user_joined", "userId": "bob", "displayName": None},
    ]


async def test_the_first_change_is_told_at_once_and_the_next_ones_wait_for_the_interval() -> None:
    heard = Heard()
    now = [100.0]
    announcer = PresenceAnnouncer(heard, interval=60, clock=lambda: now[0])
    room = uuid.uuid4()
    announcer.joined(room, "ada", None)
    await announcer._flush(room)  # what the loop runs at once for a quiet room
    assert [f["type"] for _, f in heard.frames] == ["user_joined"]
    announcer.left(room, "ada")
    announcer.joined(room, "bob", None)
    assert len(heard.frames) == 1  # scheduled 60 s after the last telling, not sent
    handle = announcer._scheduled[room]
    assert 59 <= handle.when() - asyncio.get_running_loop().time() <= 60
    await announcer.close()
    assert [(f["type"], f.get("userId")) for _, f in heard.frames[1:]] == [
        ("user_left", "ada"),
        ("user_joined", "bob"),
    ]
