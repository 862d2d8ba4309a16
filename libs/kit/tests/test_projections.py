from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from audifi_kit.eventstore import EventStore, open_event_store
from audifi_kit.projections import ParkedEvent, ProjectionRunner, handles, list_parked, rebuild
from audifi_kit.settings import Settings
from audifi_kit.testing import WITHIN, eventually
from kit_sample import Account, Balances, BalancesCopy, Bank, PageBalances
from parking_sample import POISON, ScrubbedBalances, rename
from prometheus_client import REGISTRY
from structlog.testing import capture_logs


@pytest.fixture
async def balances(bank: EventStore[Bank]) -> AsyncIterator[ProjectionRunner]:
    runner = ProjectionRunner(bank, Balances(), page_size=100)
    await runner.start()
    yield runner
    await runner.stop()


async def rows(bank: EventStore[Bank], schema: str) -> list[tuple]:
    conn = await bank.connect()
    try:
        records = await conn.fetch(
            f"SELECT id, owner, balance, events FROM {schema}.accounts ORDER BY id"
        )
        return [tuple(r) for r in records]
    finally:
        await conn.close()


async def test_the_view_shows_a_write_once_the_api_waits_for_it(
    bank: EventStore[Bank], balances: ProjectionRunner
) -> None:
    account_id = await bank.call(bank.app.open_account, "Ada")
    position = await bank.call(bank.app.credit, account_id, 250)
    await balances.wait(position)
    assert await rows(bank, "balances") == [(account_id, "Ada", 250, 2)]


async def test_each_event_changes_the_view_exactly_once_across_restarts(
    bank: EventStore[Bank],
) -> None:
    account_id = await bank.call(bank.app.open_account, "Ada")
    for _ in range(30):
        thirtieth = await bank.call(bank.app.credit, account_id, 1)
    first = ProjectionRunner(bank, Balances(), page_size=7)
    await first.start()
    await first.wait(thirtieth)  # notification ids are sparse: wait for the id itself
    await first.stop()
    for _ in range(10):
        last = await bank.call(bank.app.credit, account_id, 1)
    # Two runners (two replicas of the service) follow the same view concurrently.
    a, b = (
        ProjectionRunner(bank, Balances(), page_size=3),
        ProjectionRunner(bank, Balances(), page_size=3),
    )
    await asyncio.gather(a.start(), b.start())
    try:
        # Each step reads the stored position, so both end at `last`, and past it neither
        # can apply an event again: the count below is final.
        await asyncio.gather(a.wait(last, timeout=WITHIN), b.wait(last, timeout=WITHIN))
    finally:
        await asyncio.gather(a.stop(), b.stop())
    assert await rows(bank, "balances") == [(account_id, "Ada", 40, 41)]
    assert a.applied + b.applied == 10


async def test_a_rebuilt_view_equals_the_live_one_row_for_row(
    bank: EventStore[Bank], balances: ProjectionRunner
) -> None:
    accounts = [await bank.call(bank.app.open_account, f"o{i}") for i in range(20)]
    for i in range(200):
        await bank.call(bank.app.credit, accounts[i % 20], i)
    last = await bank.call(bank.app.credit, accounts[0], 1)
    await balances.wait(last)
    before = await rows(bank, "balances")

    position = await rebuild(bank, Balances(), page_size=50)

    assert position == last
    assert await rows(bank, "balances") == before


async def test_a_rebuild_while_writes_go_on_still_matches_a_never_rebuilt_view(
    bank: EventStore[Bank], balances: ProjectionRunner
) -> None:
    reference = ProjectionRunner(bank, BalancesCopy(), page_size=100)
    await reference.start()
    accounts = [await bank.call(bank.app.open_account, f"o{i}") for i in range(10)]
    for i in range(300):
        await bank.call(bank.app.credit, accounts[i % 10], 1)

    stop = asyncio.Event()
    written: list[int] = []

    async def keep_writing() -> None:
        i = 0
        while not stop.is_set():
            written.append(await bank.call(bank.app.credit, accounts[i % 10], i))
            i += 1

    writer = asyncio.create_task(keep_writing())
    progress: list[tuple[int, int]] = []
    try:
        await eventually(lambda: len(written) >= 20, what="writes before the rebuild")
        await rebuild(bank, Balances(), page_size=20, progress=lambda d, t: progress.append((d, t)))
        during = len(written)
        await eventually(lambda: len(written) >= during + 20, what="writes after the rebuild")
    finally:
        stop.set()
        await writer
    last = written[-1]
    await balances.wait(last)
    await reference.wait(last)
    await reference.stop()

    assert len(written) > 5, "the rebuild did not overlap with writes"
    assert progress and progress[-1][0] == progress[-1][1]
    assert await rows(bank, "balances") == await rows(bank, "balances_copy")
    total = sum(r[2] for r in await rows(bank, "balances"))
    assert total == 300 + sum(range(len(written)))


async def test_raising_the_version_rebuilds_the_view_at_start(bank: EventStore[Bank]) -> None:
    account_id = await bank.call(bank.app.open_account, "Ada")
    runner = ProjectionRunner(bank, Balances())
    await runner.start()
    await runner.wait(1)
    await runner.stop()
    conn = await bank.connect()
    try:
        await conn.execute("UPDATE balances.accounts SET balance = 999")  # a corrupted view

        class BalancesV2(Balances):
            version = 2

        runner = ProjectionRunner(bank, BalancesV2())
        await runner.start()
        await runner.stop()
        assert await rows(bank, "balances") == [(account_id, "Ada", 0, 1)]
        assert (
            await conn.fetchval(
                "SELECT version FROM kit_projection_positions WHERE name='balances'"
            )
            == 2
        )
    finally:
        await conn.close()


# ------------------------------------------------------------ events a handler cannot apply


def parked_total() -> float:
    sample = REGISTRY.get_sample_value(
        "audifi_projection_events_parked_total", {"service": "sample", "projection": "balances"}
    )
    return sample or 0.0


async def parked(bank: EventStore[Bank]) -> list[ParkedEvent]:
    conn = await bank.connect()
    try:
        return await list_parked(conn, "balances")
    finally:
        await conn.close()


async def poisoned_account(bank: EventStore[Bank]) -> tuple[UUID, int, int]:
    """Ada's account: opened, credited 5, renamed with a NUL (the poison), credited 10."""
    account_id = await bank.call(bank.app.open_account, "Ada")
    await bank.call(bank.app.credit, account_id, 5)
    poison = await bank.call(rename, bank.app, account_id, POISON)
    last = await bank.call(bank.app.credit, account_id, 10)
    return account_id, poison, last


async def test_an_event_the_view_cannot_take_is_parked_and_the_events_after_it_are_applied_once(
    bank: EventStore[Bank],
) -> None:
    account_id, poison, last = await poisoned_account(bank)
    counted = parked_total()
    runner = ProjectionRunner(bank, Balances(), page_size=100)  # all four events: one page
    with capture_logs() as logs:
        await runner.start()
        try:
            await runner.wait(last, timeout=5)  # a read waiting for its write is answered
        finally:
            await runner.stop()

    # The rename is missing (owner still Ada, 3 events counted), each credit counted once.
    assert await rows(bank, "balances") == [(account_id, "Ada", 15, 3)]
    [entry] = await parked(bank)
    assert (entry.notification_id, entry.attempts) == (poison, 3)
    assert entry.topic.endswith("Account.Renamed")
    assert entry.originator_id == account_id
    assert entry.error_type == "asyncpg.exceptions.CharacterNotInRepertoireError"
    assert "0x00" in entry.error_message
    assert [
        line["notification_id"] for line in logs if line["event"] == "projection_event_parked"
    ] == [poison]
    assert parked_total() == counted + 1


async def test_a_transient_error_is_retried_and_nothing_is_parked(
    bank: EventStore[Bank],
) -> None:
    class Flaky(Balances):
        failures_left = 5  # more than a parked event's attempts

        @handles(Account.Credited)
        async def credited(self, conn: asyncpg.Connection, e: Any, n: object) -> None:
            if self.failures_left:
                self.failures_left -= 1
                raise ConnectionResetError("the database went away")
            await super().credited(conn, e, n)

    account_id = await bank.call(bank.app.open_account, "Ada")
    last = await bank.call(bank.app.credit, account_id, 7)
    runner = ProjectionRunner(bank, Flaky(), retry_delay=0.01)
    await runner.start()
    try:
        await runner.wait(last, timeout=10)
    finally:
        await runner.stop()
    assert await rows(bank, "balances") == [(account_id, "Ada", 7, 2)]
    assert await parked(bank) == []


async def test_a_handler_failing_on_every_event_stalls_the_view_rather_than_parking_them_all(
    bank: EventStore[Bank],
) -> None:
    class Broken(Balances):
        @handles(Account.Credited)
        async def credited(self, conn: asyncpg.Connection, e: Any, n: object) -> None:
            raise ValueError("a bug in the new release")

    account_id = await bank.call(bank.app.open_account, "Ada")
    for amount in (1, 2, 3, 4):
        await bank.call(bank.app.credit, account_id, amount)
    runner = ProjectionRunner(bank, Broken(), max_parked_in_a_row=2, retry_delay=0.01)
    await runner.start()
    try:
        await eventually(lambda: runner.failures >= 2)
    finally:
        await runner.stop()
    assert runner.position == 0
    assert await parked(bank) == []


async def test_a_rebuild_parks_again_what_still_fails_and_takes_in_what_the_fix_applies(
    bank: EventStore[Bank],
) -> None:
    account_id, poison, last = await poisoned_account(bank)
    runner = ProjectionRunner(bank, Balances())
    await runner.start()
    await runner.wait(last, timeout=5)
    await runner.stop()

    assert await rebuild(bank, Balances()) == last
    assert [(p.notification_id, p.attempts) for p in await parked(bank)] == [(poison, 3)]

    assert await rebuild(bank, ScrubbedBalances()) == last
    assert await parked(bank) == []
    assert await rows(bank, "balances") == [(account_id, "Ada Lovelace", 15, 4)]


async def test_a_page_at_a_time_view_equals_the_event_at_a_time_one_live_and_rebuilt(
    bank: EventStore[Bank], balances: ProjectionRunner
) -> None:
    # Opened, credited, debited and renamed within one page and across pages.
    accounts = [await bank.call(bank.app.open_account, f"o{i}") for i in range(15)]
    for i in range(120):
        await bank.call(bank.app.credit, accounts[i % 15], i)
    await bank.call(bank.app.debit, accounts[3], 7)
    await bank.call(rename, bank.app, accounts[4], "Grace")
    late = await bank.call(bank.app.open_account, "late")
    last = await bank.call(bank.app.credit, late, 3)
    await balances.wait(last)
    runner = ProjectionRunner(bank, PageBalances(), page_size=40)
    await runner.start()
    try:
        await runner.wait(last)
    finally:
        await runner.stop()
    expected = await rows(bank, "balances")
    assert await rows(bank, "page_balances") == expected
    assert (accounts[4], "Grace", sum(range(4, 120, 15)), 10) in expected

    assert await rebuild(bank, PageBalances(), page_size=1000) == last  # all in one page
    assert await rows(bank, "page_balances") == expected


async def test_a_page_at_a_time_view_parks_the_one_event_it_cannot_take(
    bank: EventStore[Bank],
) -> None:
    account_id, poison, last = await poisoned_account(bank)
    runner = ProjectionRunner(bank, PageBalances(), page_size=100)  # all four: one page
    await runner.start()
    try:
        await runner.wait(last, timeout=5)
    finally:
        await runner.stop()
    assert await rows(bank, "page_balances") == [(account_id, "Ada", 15, 3)]
    conn = await bank.connect()
    try:
        [entry] = await list_parked(conn, "page_balances")
    finally:
        await conn.close()
    assert (entry.notification_id, entry.attempts) == (poison, 3)


async def test_a_page_at_a_time_view_reads_an_encrypted_and_compressed_log(
    settings: Settings,
) -> None:
    from eventsourcing.cipher import AESCipher

    sealed = dataclasses.replace(
        settings, cipher_key=AESCipher.create_key(32), compress=True, db_prefix=settings.db_prefix
    )
    store = await open_event_store("sample", Bank, sealed)
    try:
        account = await store.call(store.app.open_account, "Ada")
        last = await store.call(store.app.credit, account, 7)
        assert await rebuild(store, PageBalances()) == last
        assert await rows(store, "page_balances") == [(account, "Ada", 7, 2)]
    finally:
        store.close()
