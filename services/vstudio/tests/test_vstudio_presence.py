"""Presence told at a bounded rate: a burst of joins is one frame, not one per join."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from audifi_vstudio.presence import PresenceAnnouncer
from hypothesis import given, settings
from hypothesis import strategies as st


class Heard:
    """A room as the announcer sees it: what it broadcast, how many are in it, who listens."""

    def __init__(self, count: int = 0, audience: int = 0) -> None:
        self.frames: list[tuple[uuid.UUID, dict[str, Any]]] = []
        self.connections = count
        self.listening = audience

    async def broadcast(self, session_id: uuid.UUID, frame: bytes) -> None:
        self.frames.append((session_id, json.loads(frame)))

    async def count(self, session_id: uuid.UUID) -> int:
        return self.connections

    def audience(self) -> int:
        return self.listening


class Connection:
    """One joiner's socket: the frames told to it alone."""

    def __init__(self) -> None:
        self.told: list[dict[str, Any]] = []

    def tell(self, frame: bytes) -> None:
        self.told.append(json.loads(frame))


async def test_a_burst_of_joins_is_told_as_one_delta_and_a_few_as_the_seeds_frames() -> None:
    heard = Heard(count=499)
    announcer = PresenceAnnouncer(heard, interval=60, named=50)
    big, small = uuid.uuid4(), uuid.uuid4()
    fans = {f"fan{i}": Connection() for i in range(500)}
    for i, (user, connection) in enumerate(fans.items()):
        announcer.joined(big, user, f"Fan {i}", tell=connection.tell)
    ada = Connection()
    announcer.joined(small, "ada", "Ada", tell=ada.tell)
    announcer.joined(small, "bob", None)
    announcer.left(big, "fan7")  # joined and left before anyone was told: neither
    await announcer.close()  # tells what waits
    by_room: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for session, frame in heard.frames:
        by_room.setdefault(session, []).append(frame)
    [delta] = by_room[big]
    # One frame for the burst: the first 50 joiners named, the room's size said.
    assert delta["type"] == "presence_delta" and delta["left"] == []
    named = [f"fan{i}" for i in range(500) if i != 7][:50]
    assert [u["userId"] for u in delta["joined"]] == named
    assert delta["count"] == 499
    # Every joiner sees its own join once: in the delta, or told to it alone.
    for i, (user, connection) in enumerate(fans.items()):
        if user in named or user == "fan7":
            assert connection.told == [], user
        else:
            assert connection.told == [
                {"type": "user_joined", "userId": user, "displayName": f"Fan {i}"}
            ]
    assert by_room[small] == [
        {"type": "user_joined", "userId": "ada", "displayName": "Ada"},
        {"type": "user_joined", "userId": "bob", "displayName": None},
    ]
    assert ada.told == []  # the room's frame named her


async def test_the_interval_grows_with_the_audience_so_frames_stay_within_the_budget() -> None:
    heard = Heard()
    announcer = PresenceAnnouncer(heard, interval=0.25, budget=4_000)
    for listening, interval in ((0, 0.25), (1_000, 0.25), (5_000, 1.25), (20_000, 5.0)):
        heard.listening = listening
        assert announcer.current_interval() == interval
    # A room of 5,000 told once per 1.25 s: 4,000 frames a second, however fast they join.
    heard.listening = 5_000
    now = [100.0]
    announcer = PresenceAnnouncer(heard, interval=0.25, budget=4_000, clock=lambda: now[0])
    room = uuid.uuid4()
    announcer.joined(room, "ada", None)
    await announcer._flush(room)
    announcer.joined(room, "bob", None)
    handle = announcer._scheduled[room]
    assert 1.2 <= handle.when() - asyncio.get_running_loop().time() <= 1.25
    await announcer.close()


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


@given(
    st.lists(
        st.tuples(st.sampled_from(["join", "leave", "flush"]), st.integers(0, 30)),
        max_size=120,
    ),
    st.integers(1, 12),
)
@settings(max_examples=150, deadline=None)
def test_every_join_still_standing_at_its_telling_is_seen_once_by_its_joiner(
    steps: list[tuple[str, int]], named: int
) -> None:
    """Any joins and leaves, told in any batches: a joiner whose join was told sees it exactly
    once (named in the room's frame or told alone); one cancelled by its leave sees nothing."""

    async def run() -> None:
        heard = Heard(count=100)
        announcer = PresenceAnnouncer(heard, interval=60, individually=3, named=named)
        room = uuid.uuid4()
        told_to: dict[int, Connection] = {}
        waiting: dict[str, list[int]] = {}  # user -> joiner connections of the open batch
        for n, (step, user_n) in enumerate(steps):
            user = f"fan{user_n}"
            if step == "join":
                told_to[n] = Connection()
                announcer.joined(room, user, None, tell=told_to[n].tell)
                waiting.setdefault(user, []).append(n)
            elif step == "leave":
                announcer.left(room, user)
            else:
                pending = dict(announcer._pending.get(room, {}))
                before = len(heard.frames)
                await announcer._flush(room)
                frames = [f for _, f in heard.frames[before:]]
                named_now = {u["userId"] for f in frames if "joined" in f for u in f["joined"]}
                named_now |= {f["userId"] for f in frames if f["type"] == "user_joined"}
                for f in frames:
                    if f["type"] == "presence_delta":
                        assert len(f["joined"]) <= named and len(f["left"]) <= named
                for u, joiners in waiting.items():
                    told = pending.get(u, ("left",))[0] == "joined"
                    for j in joiners:
                        alone = told_to[j].told
                        if not told:  # its join cancelled by a leave in the same batch
                            assert alone == [] and u not in named_now
                        elif u in named_now:  # the room's frame names it: nothing alone
                            assert alone == []
                        else:  # told to it alone, once
                            assert alone == [
                                {"type": "user_joined", "userId": u, "displayName": None}
                            ]
                waiting = {}
        await announcer.close()

    asyncio.run(run())
