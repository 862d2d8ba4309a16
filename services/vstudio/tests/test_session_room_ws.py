"""The session room WebSocket, as clients see it, in both run modes (in-memory and Redis rooms)."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import uuid
from typing import TYPE_CHECKING

import pytest
from audifi_kit.testing import eventually
from audifi_vstudio.adapters.rooms import Member, Rooms, rooms_for
from audifi_vstudio.api.ws import ConnectionLimits
from websockets.exceptions import ConnectionClosedError

if TYPE_CHECKING:
    from conftest import Vstudio

PATIENCE = 10.0  # a guard against a hung test, never a timing assertion

distributed_only = pytest.mark.parametrize("settings", ["distributed"], indirect=True)
embedded_only = pytest.mark.parametrize("settings", ["embedded"], indirect=True)


async def connections_of(rooms: Rooms, session_id: uuid.UUID, user_id: str) -> int:
    return sum(m.user_id == user_id for m in await rooms.presence(session_id))


async def until_connections(rooms: Rooms, session_id: uuid.UUID, user_id: str, n: int) -> None:
    async def reached() -> bool:
        return await connections_of(rooms, session_id, user_id) == n

    await eventually(reached, within=PATIENCE, every=0.01, what=f"{n} connections of {user_id}")


async def test_members_see_each_other_join_under_their_verified_user_ids(
    vstudio: Vstudio,
) -> None:
    session = uuid.uuid4()
    async with vstudio.connect(session, "alice") as alice:
        assert await alice.frame() == {"type": "presence", "sessionId": str(session), "users": []}
        # The claimed user id is not the one the token proves: the token wins.
        await alice.send({"type": "join", "userId": "mallory", "displayName": "Fan123"})
        assert await alice.frame() == {
            "type": "user_joined",
            "userId": "alice",
            "displayName": "Fan123",
        }
        async with vstudio.connect(session, "bob") as bob:
            assert await bob.frame() == {
                "type": "presence",
                "sessionId": str(session),
                "users": [{"userId": "alice", "displayName": "Fan123"}],
            }
            await bob.send({"type": "join", "userId": "alice"})
            bob_joined = {"type": "user_joined", "userId": "bob", "displayName": None}
            assert await bob.frame() == bob_joined
            assert await alice.frame() == bob_joined


async def test_a_member_who_leaves_is_announced_and_no_longer_present(vstudio: Vstudio) -> None:
    session = uuid.uuid4()
    async with vstudio.member(session, "alice", "Al") as alice:
        async with vstudio.member(session, "bob", "Bobby"):
            assert await alice.frame() == {
                "type": "user_joined",
                "userId": "bob",
                "displayName": "Bobby",
            }
        assert await alice.frame() == {"type": "user_left", "userId": "bob"}
        async with vstudio.connect(session, "carol") as carol:
            assert (await carol.frame())["users"] == [{"userId": "alice", "displayName": "Al"}]


async def test_a_user_leaves_the_room_only_with_their_last_connection(vstudio: Vstudio) -> None:
    session = uuid.uuid4()
    async with vstudio.member(session, "alice") as alice:
        async with vstudio.member(session, "bob", "Bob's phone"):
            assert (await alice.frame_of("user_joined"))["userId"] == "bob"
            async with vstudio.member(session, "bob", "Bob's laptop"):
                assert (await alice.frame_of("user_joined"))["userId"] == "bob"
            await until_connections(vstudio.rooms, session, "bob", 1)
            async with vstudio.member(session, "carol") as carol:
                # Bob is listed once, and Alice's next news is Carol, not Bob leaving.
                assert await alice.frame() == {
                    "type": "user_joined",
                    "userId": "carol",
                    "displayName": None,
                }
                async with vstudio.connect(session, "dave") as dave:
                    users = (await dave.frame())["users"]
                    assert [u["userId"] for u in users] == ["alice", "bob", "carol"]
                await carol.send({"type": "ping"})
                assert await carol.frame() == {"type": "pong"}
            assert await alice.frame_of("user_left") == {"type": "user_left", "userId": "carol"}
        assert await alice.frame_of("user_left") == {"type": "user_left", "userId": "bob"}


@distributed_only
async def test_frames_cross_replicas_both_ways(vstudio: Vstudio) -> None:
    session = uuid.uuid4()
    # Another vstudio replica: its own rooms on the same Redis, as `rooms_for` builds them.
    async with rooms_for(vstudio.settings) as replica, vstudio.member(session, "alice") as alice:
        await replica.join(session, Member("replica-conn-1", "carol", "Caro"))
        carol_joined = {"type": "user_joined", "userId": "carol", "displayName": "Caro"}
        await replica.broadcast(session, json.dumps(carol_joined).encode())
        assert await alice.frame() == carol_joined

        async with vstudio.connect(session, "dave") as dave:
            users = (await dave.frame())["users"]
            assert users == [
                {"userId": "alice", "displayName": None},
                {"userId": "carol", "displayName": "Caro"},
            ]

        seen: asyncio.Queue[bytes] = asyncio.Queue()
        async with replica.subscribe(session, seen.put_nowait):
            async with vstudio.member(session, "erin", "Erin"):
                async with asyncio.timeout(PATIENCE):
                    frame = json.loads(await seen.get())
        assert frame == {"type": "user_joined", "userId": "erin", "displayName": "Erin"}
        await replica.leave(session, "replica-conn-1")


@embedded_only
async def test_connections_without_a_valid_token_are_closed_with_4401(vstudio: Vstudio) -> None:
    session = uuid.uuid4()
    refused = [
        {},
        {"Authorization": "Basic dTpw"},
        {"Authorization": "Bearer not-a-jwt"},
        vstudio.forged_bearer("alice"),
        vstudio.bearer("alice", ttl=-60),
    ]
    for headers in refused:
        async with vstudio.connect(session, headers=headers) as client:
            with pytest.raises(ConnectionClosedError) as closed:
                await client.frame()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4401, headers
    async with vstudio.connect(session, "alice") as alice:
        assert (await alice.frame())["users"] == []


@embedded_only
async def test_an_invalid_frame_is_answered_to_its_sender_and_the_connection_kept(
    vstudio: Vstudio,
) -> None:
    session = uuid.uuid4()
    async with vstudio.member(session, "alice") as alice, vstudio.member(session, "bob") as bob:
        assert (await alice.frame_of("user_joined"))["userId"] == "bob"
        for bad in ("not json", "[]", '{"decisionId": "d1"}', '{"type": "join", "displayName": 7}'):
            await alice.send_raw(bad)
            error = await alice.frame()
            assert error["type"] == "error" and error["code"] == "VALIDATION_ERROR", bad
            assert error["message"]
        await alice.send({"type": "vote", "decisionId": "d1", "choice": "A"})
        assert await alice.frame() == {  # the seed's example id: no decision of ours
            "type": "error",
            "code": "DECISION_NOT_FOUND",
            "message": "Decision not found",
            "decisionId": "d1",
        }
        await alice.send({"type": "shout", "text": "hi"})
        assert await alice.frame() == {
            "type": "error",
            "code": "NOT_SUPPORTED",
            "message": "Frames of type 'shout' are not supported",
        }
        await alice.send({"type": "join", "displayName": "x" * 10_000})
        assert (await alice.frame())["code"] == "VALIDATION_ERROR"

        await alice.send({"type": "ping"})
        assert await alice.frame() == {"type": "pong"}
        # The errors went to Alice alone.
        await bob.send({"type": "ping"})
        assert await bob.frame() == {"type": "pong"}


@pytest.mark.parametrize("limits", [ConnectionLimits(send_queue=8, close_timeout=60)])
async def test_a_client_that_stops_reading_is_dropped_with_1013(vstudio: Vstudio) -> None:
    session = uuid.uuid4()
    # A small receive window and no compression, so the server's writes back up soon after
    # the client stops reading.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", vstudio.port))
    noise = json.dumps({"type": "noise", "pad": "x" * 16_384}).encode()

    options = {"sock": sock, "max_queue": 1, "compression": None}
    async with vstudio.member(session, "slowpoke", **options) as slow:
        async with asyncio.timeout(PATIENCE * 6):
            for sent in itertools.count(1):
                await vstudio.rooms.broadcast(session, noise)
                await asyncio.sleep(0)  # let the server write to the socket meanwhile
                if sent % 16 == 0 and not await connections_of(vstudio.rooms, session, "slowpoke"):
                    break
        # Once it reads again, it gets what was already on its way, then the close.
        with pytest.raises(ConnectionClosedError) as closed:
            async with asyncio.timeout(PATIENCE * 3):
                while True:
                    await slow.connection.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013

    async with vstudio.connect(session, "alice") as alice:
        assert (await alice.frame())["users"] == []


@embedded_only
async def test_a_token_of_a_signed_out_session_is_closed_with_4401(vstudio: Vstudio) -> None:
    from datetime import UTC, datetime, timedelta

    from audifi_kit.http.revocations import REVOCATIONS_STATE_KEY

    session = uuid.uuid4()
    out = vstudio.signing_key.token("alice", sid="session-out")
    # As the app's consumer of auth.session.revoked records a logout:
    await vstudio.app.state[REVOCATIONS_STATE_KEY].revoke(
        "session-out", datetime.now(UTC) + timedelta(minutes=15)
    )
    async with vstudio.connect(session, headers={"Authorization": f"Bearer {out}"}) as client:
        with pytest.raises(ConnectionClosedError) as closed:
            await client.frame()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    still = vstudio.signing_key.token("alice", sid="session-on")
    async with vstudio.connect(session, headers={"Authorization": f"Bearer {still}"}) as alice:
        assert (await alice.frame())["users"] == []
