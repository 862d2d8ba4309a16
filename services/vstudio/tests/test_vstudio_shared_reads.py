"""A big room's sockets share snapshot reads, never one read before they asked."""

from __future__ import annotations

import asyncio

import pytest
from audifi_vstudio.studio import SharedReads


async def until(condition: object) -> None:
    while not condition():  # type: ignore[operator]
        await asyncio.sleep(0)  # other tasks run: no time passes


async def test_readers_meanwhile_share_the_next_read_which_sees_what_changed() -> None:
    state = {"s": 0}
    started: list[int] = []
    gates: list[asyncio.Event] = []

    async def read(key: str) -> int:
        seen = state[key]
        started.append(seen)
        gate = asyncio.Event()
        gates.append(gate)
        await gate.wait()
        return seen

    reads: SharedReads[str, int] = SharedReads(read)
    first = [asyncio.create_task(reads.get("s")) for _ in range(3)]
    await until(lambda: started)
    state["s"] = 1  # changed after the first read looked: later askers must see it
    later = [asyncio.create_task(reads.get("s")) for _ in range(4)]
    await asyncio.sleep(0)
    assert started == [0]  # one read at a time per key
    gates[0].set()
    assert await asyncio.gather(*first) == [0, 0, 0]
    await until(lambda: len(gates) == 2)
    gates[1].set()
    assert await asyncio.gather(*later) == [1, 1, 1, 1]
    assert started == [0, 1]  # seven askers, two reads


async def test_a_failed_read_fails_its_waiters_and_the_next_asker_reads_again() -> None:
    calls = 0

    async def read(key: str) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise LookupError(key)
        return key.upper()

    reads: SharedReads[str, str] = SharedReads(read)
    failed = await asyncio.gather(reads.get("a"), reads.get("a"), return_exceptions=True)
    assert all(isinstance(f, LookupError) for f in failed)
    assert await reads.get("a") == "A"


async def test_a_waiter_cancelled_leaves_the_read_to_the_others() -> None:
    gate = asyncio.Event()

    async def read(key: str) -> str:
        await gate.wait()
        return key

    reads: SharedReads[str, str] = SharedReads(read)
    leaving = asyncio.create_task(reads.get("k"))
    staying = asyncio.create_task(reads.get("k"))
    await asyncio.sleep(0)
    leaving.cancel()
    gate.set()
    assert await staying == "k"
    with pytest.raises(asyncio.CancelledError):
        await leaving
