"""A periodic chore keeps running through a failing step and stops with its context."""

from __future__ import annotations

import asyncio
import logging

from audifi_kit.periodic import every


async def test_a_failing_step_is_logged_and_the_next_one_runs(caplog) -> None:
    runs: list[int] = []
    third = asyncio.Event()

    async def step() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("the database is away")
        if len(runs) == 3:
            third.set()

    with caplog.at_level(logging.WARNING, logger="audifi_kit.periodic"):
        async with every(0.01, step, name="chore") as task:
            await asyncio.wait_for(third.wait(), 5)
    assert task.cancelled()
    assert runs[:3] == [0, 1, 2]
    assert [r.getMessage() for r in caplog.records][:1] == [
        "chore failed (RuntimeError: the database is away); trying again in 0.01 s"
    ]


async def test_leaving_cancels_the_step_under_way() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with every(0.0, slow, name="slow"):
        await asyncio.wait_for(started.wait(), 5)
    assert cancelled.is_set()
