"""The recorder's proof: writers race, commits are delayed, and no tailing reader ever skips.

Writers insert concurrently (single saves, group commit, and transactions that take their id
first, wait, then insert and wait again before they commit or roll back), while readers of
every kind follow the log: asyncpg in autocommit, asyncpg inside a transaction that holds an
xid (as a projection step does), and eventsourcing's own `select_notifications`. At the end
every reader must have read exactly the committed log: each event once, in one order, none
skipped. `make test` runs it for a few seconds; `make chaos` for minutes
(AUDIFI_CHAOS_SECONDS).
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
import pytest
from audifi_kit.eventstore import (
    ConcurrencyConflict,
    EventStore,
    GroupCommit,
    open_event_store,
    run_command,
)
from audifi_kit.notifications import NotificationLog
from audifi_kit.recorder import XidOrderedRecorder
from audifi_kit.settings import Settings
from kit_sample import Account, Bank

SECONDS = float(os.environ.get("AUDIFI_CHAOS_SECONDS", "5"))


@dataclass
class Reader:
    name: str
    ids: list[int] = field(default_factory=list)
    held_back: int = 0

    def take(self, page_ids: list[int]) -> None:
        for i in page_ids:
            # A reader that ever goes back has skipped something before.
            assert not self.ids or i > self.ids[-1], f"{self.name}: {i} after {self.ids[-1]}"
            self.ids.append(i)


def new_account_events(store: EventStore[Bank], credits: int) -> list:
    account = Account(f"held-{uuid.uuid4().hex[:6]}")
    for _ in range(credits):
        account.credit(1)
    return [store.mapper.to_stored_event(e) for e in account.collect_events()]


def held_writer(
    store: EventStore[Bank], stop: threading.Event, stats: dict[str, int], seed: int
) -> None:
    """Transactions that take their id first and commit last (or roll back)."""
    recorder: XidOrderedRecorder = store.app.recorder  # type: ignore[assignment]
    rng = random.Random(seed)
    with psycopg.connect(store.location.url) as conn:
        while not stop.is_set():
            events = new_account_events(store, rng.randint(0, 4))
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_current_xact_id()")  # the id (and the ids) first
                    time.sleep(rng.uniform(0, 0.03))
                    conn.execute(recorder.insert_statement, recorder.insert_params(events))
                    time.sleep(rng.uniform(0, 0.05))  # ... then commit after later writers
                    if rng.random() < 0.2:
                        raise _Rollback
                stats["held_committed"] += 1
            except _Rollback:
                stats["held_rolled_back"] += 1


class _Rollback(Exception):
    pass


async def follow(
    reader: Reader,
    read: Callable[[int], object],
    until: Callable[[Reader], bool],
) -> None:
    while not until(reader):
        page_ids = await read(reader.ids[-1] if reader.ids else 0)  # type: ignore[misc]
        reader.take(page_ids)
        if not page_ids:
            await asyncio.sleep(0.001)


async def test_every_reader_sees_every_event_once_in_one_order(settings: Settings) -> None:
    store = await open_event_store("sample", Bank, settings)
    group = GroupCommit(store)
    stop = threading.Event()
    stats = {"saved": 0, "conflicts": 0, "held_committed": 0, "held_rolled_back": 0}
    final: list[int] | None = None
    log = NotificationLog(store.table)
    followers: list[asyncio.Task[None]] = []
    conns = []
    try:
        accounts = [await store.call(store.app.open_account, f"a{i}") for i in range(20)]
        deadline = time.monotonic() + SECONDS

        async def single_writer(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                try:
                    await run_command(store, store.app.credit, rng.choice(accounts), 1)
                    stats["saved"] += 1
                except ConcurrencyConflict:
                    stats["conflicts"] += 1

        async def grouped_writer(seed: int) -> None:
            rng = random.Random(seed)
            while time.monotonic() < deadline:
                account = rng.choice(accounts)
                try:
                    await group.submit(lambda a=account: store.app.decide_credit(a, 1))
                    stats["saved"] += 1
                except ConcurrencyConflict:  # lost to a single writer twice: refused
                    stats["conflicts"] += 1

        readers = [Reader("asyncpg-rows"), Reader("asyncpg-columns")]
        readers += [Reader("in-transaction"), Reader("eventsourcing")]
        conns += [await store.connect() for _ in range(3)]

        def done(reader: Reader) -> bool:
            return final is not None and reader.ids[-1:] == final[-1:]

        def autocommit_read(conn, reader: Reader, rng: random.Random, *, columns: bool = False):
            own_log = NotificationLog(store.table)

            async def read(after: int) -> list[int]:
                if columns:  # as projections and replays read
                    ids = (await own_log.read_page(conn, after, rng.randint(1, 40))).ids
                else:
                    ids = [n.id for n in await own_log.read(conn, after, rng.randint(1, 40))]
                reader.held_back += own_log.held_back
                return ids

            return read

        async def read_in_transaction(after: int) -> list[int]:
            conn = conns[2]
            async with conn.transaction():
                # An xid of its own, as a projection step's FOR UPDATE gets one.
                await conn.execute("SELECT pg_current_xact_id()")
                page = await log.read(conn, after, 25)
            return [n.id for n in page]

        async def read_eventsourcing(after: int) -> list[int]:
            page = await asyncio.to_thread(
                store.app.recorder.select_notifications, after, 30, inclusive_of_start=False
            )
            return [n.id for n in page]

        rng = random.Random(7)
        reads = [
            autocommit_read(conns[0], readers[0], rng),
            autocommit_read(conns[1], readers[1], rng, columns=True),
            read_in_transaction,
            read_eventsourcing,
        ]
        followers += [
            asyncio.create_task(follow(reader, read, done))
            for reader, read in zip(readers, reads, strict=True)
        ]
        held = [
            asyncio.create_task(asyncio.to_thread(held_writer, store, stop, stats, seed))
            for seed in range(3)
        ]
        await asyncio.gather(
            *(single_writer(s) for s in range(4)), *(grouped_writer(s) for s in range(30))
        )
        stop.set()
        await asyncio.gather(*held)

        probe = await store.connect()
        try:
            final = [
                r[0]
                for r in await probe.fetch(
                    f"SELECT notification_id FROM {store.table} ORDER BY notification_id"
                )
            ]
        finally:
            await probe.close()
        async with asyncio.timeout(60):
            await asyncio.gather(*followers)
    finally:
        stop.set()
        for task in followers:
            task.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
        for conn in conns:
            await conn.close()
        await group.close()
        store.close()

    assert stats["held_committed"] > 10 and stats["held_rolled_back"] > 0, stats
    assert len(final) > 200, stats
    for reader in readers:
        assert reader.ids == final, f"{reader.name} did not read the log exactly once"
    # The held transactions did hold readers back: the hazard was there to be handled.
    assert sum(r.held_back for r in readers) > 0


async def test_a_transaction_that_takes_its_id_first_and_commits_last_is_not_skipped(
    bank: EventStore[Bank],
) -> None:
    recorder: XidOrderedRecorder = bank.app.recorder  # type: ignore[assignment]
    log = NotificationLog(bank.table)
    conn = await bank.connect()
    try:
        with psycopg.connect(bank.location.url) as held:
            held.execute("BEGIN")
            held.execute("SELECT pg_current_xact_id()")  # A takes its id ...
            later = await bank.call(bank.app.open_account, "B")  # ... B saves and commits
            # B's event is committed and visible, but A may still write below it: a reader
            # following visible ids (what a sequence and `xid < xmin` would give) would take
            # B and never come back for A. This one waits.
            naive = await conn.fetch(f"SELECT notification_id FROM {bank.table}")
            assert len(naive) == 1
            assert await log.read(conn, 0, 10) == []
            assert log.held_back
            assert len(await log.read_page(conn, 0, 10)) == 0
            assert log.held_back
            events = new_account_events(bank, 2)
            held.execute(recorder.insert_statement, recorder.insert_params(events))
            held.execute("COMMIT")  # A commits last
        page = await log.read(conn, 0, 10)
        columns = await log.read_page(conn, 0, 10)
    finally:
        await conn.close()
    assert [n.originator_id for n in page] == [events[0].originator_id] * 3 + [later]
    assert columns.ids == [n.id for n in page]
    assert columns.originators == [n.originator_id for n in page]
    assert list(columns) == [
        (None, None, n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in page
    ]
    assert [n.id for n in page] == sorted(n.id for n in page)


@pytest.mark.parametrize("other_database", [True, False])
async def test_only_an_open_transaction_of_this_database_holds_readers_back(
    bank: EventStore[Bank], postgres_url: str, other_database: bool
) -> None:
    log = NotificationLog(bank.table)
    conn = await bank.connect()
    url = postgres_url if other_database else bank.location.url
    try:
        with psycopg.connect(url) as other:
            other.execute("BEGIN")
            other.execute("SELECT pg_current_xact_id()")  # writes no event, holds an xid
            await bank.call(bank.app.open_account, "Ada")
            for _ in range(50):
                # Another database's transaction that ends between the read's snapshot and
                # its look at the server's activity is unknown, hence waited for: once.
                page = await log.read(conn, 0, 10)
                if page or not other_database:
                    break
            assert (len(page), log.held_back) == ((1, False) if other_database else (0, True))
            other.execute("ROLLBACK")
        assert len(await log.read(conn, 0, 10)) == 1
    finally:
        await conn.close()


async def test_followers_are_woken_after_the_commit(bank: EventStore[Bank]) -> None:
    from audifi_kit.notifications import LogWatcher

    watcher = LogWatcher(bank.location.asyncpg_dsn, bank.channel, poll_interval=30)
    await watcher.start()
    conn = await bank.connect()
    try:
        await watcher.wait(5)  # the watcher's own "look now" on connecting
        saves = [bank.call(bank.app.open_account, f"o{i}") for i in range(20)]
        await asyncio.gather(*saves)
        assert await watcher.wait(5), "no NOTIFY after the commits"
        # Coalesced wake-ups never lose the last one: everything is readable once woken.
        assert len(await NotificationLog(bank.table).read(conn, 0, 100)) == 20
    finally:
        await conn.close()
        await watcher.close()


def test_a_page_read_out_of_order_is_sorted_with_its_columns_together() -> None:
    from audifi_kit.notifications import Page, as_notifications

    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    page = Page([30, 10, 20], [c, a, b], [3, 1, 2], ["t3", "t1", "t2"], [b"3", b"1", b"2"])
    ordered = page.in_log_order()
    assert ordered.ids == [10, 20, 30]
    assert [
        (n.originator_id, n.originator_version, n.topic, n.state) for n in as_notifications(ordered)
    ] == [
        (a, 1, "t1", b"1"),
        (b, 2, "t2", b"2"),
        (c, 3, "t3", b"3"),
    ]
    assert ordered[-1] == (None, None, 30, c, 3, "t3", b"3")
    assert ordered.in_log_order() is ordered  # already in order: no copy
