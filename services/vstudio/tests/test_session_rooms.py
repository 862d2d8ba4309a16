"""Session rooms on their own: in memory, and across replicas sharing a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest
from audifi_kit.testing import eventually
from audifi_vstudio.adapters.rooms import InMemoryRooms, Member, RedisRooms, Rooms
from redis.asyncio import Redis

PATIENCE = 10.0  # a guard against a hung test, never a timing assertion

ReplicaFactory = Callable[..., AbstractAsyncContextManager[RedisRooms]]


async def delete_namespace(redis_url: str, namespace: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{namespace}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


@pytest.fixture
async def replicas(redis_url: str, unique_name: str) -> AsyncIterator[ReplicaFactory]:
    """Opens vstudio replicas' rooms on one real Redis, under a namespace of this test's own."""
    namespace = f"t{unique_name}_vstudio"

    @asynccontextmanager
    async def replica(**options: float) -> AsyncIterator[RedisRooms]:
        async with RedisRooms(redis_url, namespace=namespace, **options) as rooms:
            yield rooms

    yield replica
    await delete_namespace(redis_url, namespace)


@pytest.fixture(params=["in-memory", "redis"])
async def rooms(request: pytest.FixtureRequest, unique_name: str) -> AsyncIterator[Rooms]:
    if request.param == "in-memory":
        async with InMemoryRooms() as in_memory:
            yield in_memory
        return
    redis_url: str = request.getfixturevalue("redis_url")
    namespace = f"t{unique_name}_vstudio"
    async with RedisRooms(redis_url, namespace=namespace) as redis_rooms:
        yield redis_rooms
    await delete_namespace(redis_url, namespace)


class Frames:
    """What one subscriber has received."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def deliver(self, frame: bytes) -> None:
        self.queue.put_nowait(frame)

    async def next(self) -> bytes:
        async with asyncio.timeout(PATIENCE):
            return await self.queue.get()


def names(members: list[Member]) -> list[str | None]:
    return [m.display_name for m in members]


async def test_presence_lists_members_in_join_order_and_forgets_those_who_leave(
    rooms: Rooms,
) -> None:
    session, other_session = uuid.uuid4(), uuid.uuid4()
    assert await rooms.presence(session) == []
    await rooms.join(session, Member("c1", "alice", "Alice"))
    await rooms.join(session, Member("c2", "bob", "Bob"))
    await rooms.join(session, Member("c3", "alice", "Alice on her phone"))
    await rooms.join(other_session, Member("c4", "carol", "Carol"))
    assert names(await rooms.presence(session)) == ["Alice", "Bob", "Alice on her phone"]

    await rooms.leave(session, "c1")
    await rooms.leave(session, "never-joined")
    assert [(m.connection_id, m.user_id) for m in await rooms.presence(session)] == [
        ("c2", "bob"),
        ("c3", "alice"),
    ]
    await rooms.leave(session, "c2")
    await rooms.leave(session, "c3")
    assert await rooms.presence(session) == []
    assert names(await rooms.presence(other_session)) == ["Carol"]


async def test_joining_again_replaces_the_connections_entry(rooms: Rooms) -> None:
    session = uuid.uuid4()
    await rooms.join(session, Member("c1", "alice", "Alice"))
    await rooms.join(session, Member("c1", "alice", "Alice B."))
    assert names(await rooms.presence(session)) == ["Alice B."]
    await rooms.leave(session, "c1")
    assert await rooms.presence(session) == []


async def test_a_broadcast_reaches_the_sessions_subscribers_and_no_one_else(rooms: Rooms) -> None:
    session, other_session = uuid.uuid4(), uuid.uuid4()
    first, second, elsewhere, gone = Frames(), Frames(), Frames(), Frames()
    async with (
        rooms.subscribe(session, first.deliver),
        rooms.subscribe(session, second.deliver),
        rooms.subscribe(other_session, elsewhere.deliver),
    ):
        async with rooms.subscribe(session, gone.deliver):
            await rooms.broadcast(session, b'{"n":1}')
            assert await gone.next() == b'{"n":1}'
        await rooms.broadcast(session, b'{"n":2}')
        await rooms.broadcast(other_session, b'{"n":3}')
        assert [await first.next(), await first.next()] == [b'{"n":1}', b'{"n":2}']
        assert [await second.next(), await second.next()] == [b'{"n":1}', b'{"n":2}']
        # Frames of one replica arrive in order: had the others leaked, they would come first.
        assert await elsewhere.next() == b'{"n":3}'
    assert gone.queue.empty()


async def test_a_frame_published_by_one_replica_reaches_subscribers_on_another(
    replicas: ReplicaFactory,
) -> None:
    session = uuid.uuid4()
    here_frames, there_frames = Frames(), Frames()
    async with replicas() as here, replicas() as there:
        async with (
            here.subscribe(session, here_frames.deliver),
            there.subscribe(session, there_frames.deliver),
        ):
            await here.broadcast(session, b'{"type":"user_joined","userId":"alice"}')
            await there.broadcast(session, b'{"type":"user_left","userId":"bob"}')
            for frames in (here_frames, there_frames):
                received = {await frames.next(), await frames.next()}
                assert received == {
                    b'{"type":"user_joined","userId":"alice"}',
                    b'{"type":"user_left","userId":"bob"}',
                }


async def test_presence_is_shared_by_replicas_and_a_crashed_replicas_members_expire(
    replicas: ReplicaFactory,
) -> None:
    session = uuid.uuid4()
    # The crashed replica never refreshes its members; the live one does, within the TTL.
    async with (
        replicas(presence_ttl=1.0) as alive,
        replicas(presence_ttl=1.0, refresh_interval=3600) as crashed,
    ):
        await alive.join(session, Member("c1", "alice", "Alice"))
        await crashed.join(session, Member("c2", "bob", "Bob"))
        assert names(await alive.presence(session)) == ["Alice", "Bob"]
        assert names(await crashed.presence(session)) == ["Alice", "Bob"]

        async def crashed_member_expired() -> bool:
            return names(await alive.presence(session)) == ["Alice"]

        await eventually(crashed_member_expired, within=PATIENCE)
        assert names(await crashed.presence(session)) == ["Alice"]


async def test_a_replica_that_closes_takes_its_members_out_of_presence(
    replicas: ReplicaFactory,
) -> None:
    session = uuid.uuid4()
    async with replicas() as staying:
        async with replicas() as closing:
            await closing.join(session, Member("c1", "alice", "Alice"))
            await staying.join(session, Member("c2", "bob", "Bob"))
            assert names(await staying.presence(session)) == ["Alice", "Bob"]
        assert names(await staying.presence(session)) == ["Bob"]
