"""The one log-following loop (audifi_kit.follower) the relay, projections, notify's sender and
the chain indexer run on: wake-ups, leadership, stopping, errors, held-back reads."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid

import asyncpg
import psycopg
from audifi_kit.eventstore import EventStore
from audifi_kit.follower import LogFollower
from audifi_kit.notifications import NotificationLog
from audifi_kit.testing import eventually
from kit_sample import Bank


class Reader:
    """A minimal follower of the bank's log: remembers how far it read, says when it moves."""

    def __init__(self, bank: EventStore[Bank], **options: object) -> None:
        self.log = NotificationLog(bank.table)
        self.position = 0
        self.steps = 0
        self.saw_held_back = asyncio.Event()
        self.follower = LogFollower(
            "reader",
            self.step,
            store=bank,
            held_back=lambda: self.log.held_back,
            **options,  # type: ignore[arg-type]
        )
        self._moved = asyncio.Condition()

    async def step(self) -> int:
        assert self.follower.conn is not None
        page = await self.log.read(self.follower.conn, self.position, 100)
        self.steps += 1
        if self.log.held_back:
            self.saw_held_back.set()
        if page:
            self.position = page[-1].id
            async with self._moved:
                self._moved.notify_all()
        return len(page)

    async def reached(self, position: int, within: float) -> None:
        async with asyncio.timeout(within), self._moved:
            await self._moved.wait_for(lambda: self.position >= position)


async def last_position(bank: EventStore[Bank]) -> int:
    conn = await bank.connect()
    try:
        return int(await conn.fetchval(f"SELECT max(notification_id) FROM {bank.table}"))
    finally:
        await conn.close()


async def test_a_notify_wakes_the_follower_long_before_its_poll_interval(
    bank: EventStore[Bank],
) -> None:
    reader = Reader(bank, poll_interval=60)
    await reader.follower.start()
    try:
        await eventually(lambda: reader.steps >= 1)  # idle now, until woken
        await bank.call(bank.app.open_account, "Ada")
        await reader.reached(await last_position(bank), within=10)
    finally:
        await reader.follower.stop()


async def test_without_a_notify_the_follower_still_looks_every_poll_interval(
    bank: EventStore[Bank],
) -> None:
    conn = await bank.connect()
    await conn.execute("CREATE TABLE IF NOT EXISTS plain_log (id serial PRIMARY KEY)")
    seen: list[int] = []

    async def step() -> int:  # a table nobody sends a NOTIFY for
        seen.append(await conn.fetchval("SELECT count(*) FROM plain_log"))
        return 0

    follower = LogFollower("plain", step, poll_interval=0.05)
    await follower.start()
    try:
        await eventually(lambda: seen)
        await conn.execute("INSERT INTO plain_log DEFAULT VALUES")
        await eventually(lambda: seen[-1] == 1, within=5)
    finally:
        await follower.stop()
        await conn.close()


async def test_a_standby_takes_over_when_the_leaders_connection_dies(
    bank: EventStore[Bank],
) -> None:
    options = {"leader_lock": f"test-{uuid.uuid4()}", "leader_poll": 0.05, "retry_delay": 0.05}
    first, second = Reader(bank, **options), Reader(bank, **options)
    await first.follower.start()
    await eventually(lambda: first.follower.leading)
    await second.follower.start()
    try:
        await bank.call(bank.app.open_account, "Ada")
        await first.reached(await last_position(bank), within=10)
        assert not second.follower.leading and second.steps == 0

        assert first.follower.conn is not None
        pid = first.follower.conn.get_server_pid()
        killer = await bank.connect()
        try:
            await killer.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await killer.close()

        await eventually(lambda: second.follower.leading, within=10)
        await bank.call(bank.app.open_account, "Bob")
        await second.reached(await last_position(bank), within=10)
        # The old leader noticed, reconnected and stands by: one leader at a time.
        await eventually(lambda: first.follower.failures >= 1 and first.follower.conn is not None)
        assert not first.follower.leading
    finally:
        await asyncio.gather(first.follower.stop(), second.follower.stop())


def follower_tasks() -> list[asyncio.Task]:
    return [
        t
        for t in asyncio.all_tasks()
        if t.get_name().startswith(("follow-", "listen-")) and not t.done()
    ]


async def test_stop_lets_the_step_under_way_finish_then_closes_everything(
    bank: EventStore[Bank],
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    finished: list[bool] = []
    conns: list[asyncpg.Connection] = []

    async def step() -> int:
        assert follower.conn is not None
        conns.append(follower.conn)
        entered.set()
        await release.wait()
        finished.append(True)
        return 1

    follower = LogFollower("slow", step, store=bank, poll_interval=60)
    await follower.start()
    await entered.wait()
    stopping = asyncio.create_task(follower.stop(grace=10))
    await asyncio.sleep(0)  # one turn of the loop: stop() has begun, the step still waits
    assert not stopping.done()
    release.set()
    async with asyncio.timeout(5):
        await stopping

    assert finished == [True]  # the step was not cut short, and no other began
    assert not follower.running
    assert conns[0].is_closed()
    assert follower_tasks() == []


async def test_stop_cancels_a_step_that_outlives_the_grace_period(bank: EventStore[Bank]) -> None:
    cancelled: list[bool] = []

    async def step() -> int:
        try:
            await asyncio.Event().wait()  # e.g. publishing to a broker that is away
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return 0

    follower = LogFollower("stuck", step, store=bank)
    await follower.start()
    await eventually(lambda: follower.conn is not None)
    started = time.monotonic()
    await follower.stop(grace=0.1)

    assert time.monotonic() - started < 5
    assert cancelled == [True]
    assert not follower.running
    assert follower_tasks() == []


async def test_failing_steps_back_off_and_are_logged_once_per_streak(caplog) -> None:
    calls: list[float] = []

    async def step() -> int:
        calls.append(time.monotonic())
        if len(calls) <= 5:
            raise RuntimeError("the node is away")
        return 0

    logger = logging.getLogger(f"test.follower.{uuid.uuid4().hex}")
    follower = LogFollower(
        "flaky", step, poll_interval=60, retry_delay=0.02, max_retry_delay=0.08, logger=logger
    )
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        await follower.start()
        try:
            await eventually(lambda: len(calls) >= 6 and follower.failures == 0, within=10)
        finally:
            await follower.stop()

    gaps = [b - a for a, b in itertools.pairwise(calls)][:5]
    assert all(g >= d * 0.9 for g, d in zip(gaps, (0.02, 0.04, 0.08, 0.08, 0.08), strict=True))
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1 and loud[0].exc_info is not None  # once, with its traceback
    assert "RuntimeError" in loud[0].getMessage()
    assert any("going again after 5 failures" in r.getMessage() for r in caplog.records)


async def test_a_read_held_back_by_an_open_transaction_is_retried_at_once_not_at_the_poll(
    bank: EventStore[Bank],
) -> None:
    reader = Reader(bank, poll_interval=60)
    await reader.follower.start()
    try:
        await eventually(lambda: reader.steps >= 1)
        with psycopg.connect(bank.location.url) as held:
            held.execute("BEGIN")
            held.execute("SELECT pg_current_xact_id()")  # holds an id, will write no event
            await bank.call(bank.app.open_account, "Ada")  # its NOTIFY wakes the reader ...
            async with asyncio.timeout(10):
                await reader.saw_held_back.wait()  # ... which may not read the event yet
            assert reader.position == 0
            held.execute("COMMIT")  # no event written, so no NOTIFY
        # Only the held-back retry can take the reader there before its 60 s poll.
        await reader.reached(await last_position(bank), within=5)
    finally:
        await reader.follower.stop()
