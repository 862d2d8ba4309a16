from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import uuid

import asyncpg
import pytest
from audifi_kit import metadata as meta
from audifi_kit.eventstore import (
    ConcurrencyConflict,
    EventStore,
    GroupCommit,
    open_event_store,
    run_command,
)
from audifi_kit.notifications import NotificationLog
from audifi_kit.settings import Settings
from eventsourcing.application import AggregateNotFoundError
from kit_sample import Account, Bank, InsufficientFunds


async def test_a_saved_account_is_read_back_with_its_history(bank: EventStore[Bank]) -> None:
    account_id = await bank.call(bank.app.open_account, "Ada")
    await bank.call(bank.app.credit, account_id, 120)
    await bank.call(bank.app.debit, account_id, 20)

    assert await bank.call(bank.app.balance, account_id) == 100
    events = await bank.call(lambda: list(bank.app.events.get(account_id)))
    assert [type(e).__name__ for e in events] == ["Opened", "Credited", "Debited"]


async def test_a_refused_command_saves_nothing(bank: EventStore[Bank]) -> None:
    account_id = await bank.call(bank.app.open_account, "Ada")
    with pytest.raises(InsufficientFunds):
        await bank.call(bank.app.debit, account_id, 1)
    events = await bank.call(lambda: list(bank.app.events.get(account_id)))
    assert len(events) == 1


async def test_the_service_gets_its_own_database(
    bank: EventStore[Bank], settings: Settings
) -> None:
    assert bank.location.dbname == f"{settings.db_prefix}sample"
    conn = await bank.connect()
    try:
        assert await conn.fetchval("SELECT current_database()") == bank.location.dbname
        assert await conn.fetchval("SELECT to_regclass('sample_events')::text") == "sample_events"
    finally:
        await conn.close()


async def test_the_causing_request_travels_with_each_event(bank: EventStore[Bank]) -> None:
    cause = meta.EventMetadata(
        correlation_id="req-42", causation_id="req-42", traceparent="00-a-b-01"
    )
    with meta.caused_by(cause):
        account_id = await bank.call(bank.app.open_account, "Ada")
    conn = await bank.connect()
    try:
        [n] = await NotificationLog(bank.table).read(conn, 0, 10)
    finally:
        await conn.close()
    event, stored_meta = bank.decode(n)
    assert stored_meta == cause
    assert event.originator_id == account_id
    # The ids are not attributes of the domain event (the aggregate would receive them).
    assert "__audifi__" not in vars(event)
    assert (await bank.call(bank.app.repository.get, account_id)).owner == "Ada"


async def test_event_state_is_encrypted_at_rest_when_a_key_is_set(settings: Settings) -> None:
    from eventsourcing.cipher import AESCipher

    encrypted = dataclasses.replace(settings, cipher_key=AESCipher.create_key(32))
    store = await open_event_store("sample", Bank, encrypted)
    try:
        account_id = await store.call(store.app.open_account, "Grace Hopper")
        conn = await store.connect()
        try:
            raw = await conn.fetchval("SELECT state FROM sample_events")
        finally:
            await conn.close()
        assert b"Grace" not in raw
        assert (await store.call(store.app.repository.get, account_id)).owner == "Grace Hopper"
    finally:
        store.close()


async def test_of_two_concurrent_commands_on_one_account_one_wins(bank: EventStore[Bank]) -> None:
    account_id = await bank.call(bank.app.open_account, "Ada")
    # Both decide against version 1 before either saves: the second save must be refused.
    first = await bank.call(bank.app.decide_credit, account_id, 10)
    second = await bank.call(bank.app.decide_credit, account_id, 32)
    results = await asyncio.gather(
        run_command(bank, bank.app.save, first),
        run_command(bank, bank.app.save, second),
        return_exceptions=True,
    )
    conflicts = [r for r in results if isinstance(r, ConcurrencyConflict)]
    assert len(conflicts) == 1
    winner = 10 if not isinstance(results[0], Exception) else 32
    assert await bank.call(bank.app.balance, account_id) == winner  # no lost update, no double


@pytest.mark.parametrize("declared", [False, True], ids=["loaded-each", "loads-declared"])
async def test_group_commit_of_1000_commands_loses_none_and_mixes_none_up(
    bank: EventStore[Bank], declared: bool
) -> None:
    accounts = [await bank.call(bank.app.open_account, f"owner-{i}") for i in range(50)]
    group = GroupCommit(bank)

    async def credit(i: int) -> tuple[int, uuid.UUID, int, list[int]]:
        account_id, amount = accounts[i % len(accounts)], 1000 + i
        with meta.caused_by(meta.EventMetadata(correlation_id=f"req-{i}")):
            ids = await group.submit(
                lambda: bank.app.decide_credit(account_id, amount),
                loads=[account_id] if declared else (),
            )
        return i, account_id, amount, ids

    try:
        results = await asyncio.gather(*(credit(i) for i in range(1000)))
    finally:
        await group.close()

    assert group.batches < 1000 / 5, "commands were not grouped"
    conn = await bank.connect()
    try:
        notifications = {n.id: n for n in await NotificationLog(bank.table).read(conn, 0, 100_000)}
    finally:
        await conn.close()
    for i, account_id, amount, ids in results:
        [nid] = ids
        event, stored = bank.decode(notifications[nid])
        assert (event.originator_id, event.amount, stored.correlation_id) == (
            account_id,
            amount,
            f"req-{i}",
        )
    for k, account_id in enumerate(accounts):
        expected = sum(1000 + i for i in range(1000) if i % len(accounts) == k)
        assert await bank.call(bank.app.balance, account_id) == expected
    assert len(notifications) == 50 + 1000


async def test_declared_loads_see_another_process_s_writes_and_aggregates_that_do_not_exist(
    bank: EventStore[Bank], settings: Settings
) -> None:
    account_id = await bank.call(bank.app.open_account, "Ada")
    await bank.call(bank.app.credit, account_id, 1)  # now in this process's cache
    other = await open_event_store("sample", Bank, settings)  # another replica
    try:
        await other.call(other.app.credit, account_id, 100)
    finally:
        other.close()
    group = GroupCommit(bank)
    nowhere = uuid.uuid4()
    try:
        await group.submit(
            lambda: bank.app.decide_credit(account_id, 5), loads=[account_id, nowhere]
        )
        with pytest.raises(AggregateNotFoundError):  # declared, absent: the command sees so
            await group.submit(lambda: bank.app.decide_credit(nowhere, 5), loads=[nowhere])
    finally:
        await group.close()
    assert group.fallbacks == 0  # fast-forwarded when loaded: the save did not conflict
    assert await bank.call(bank.app.balance, account_id) == 106  # the replica's 100 kept


async def test_group_commit_survives_a_writer_outside_the_batch(bank: EventStore[Bank]) -> None:
    account_id = await bank.call(bank.app.open_account, "Ada")
    group = GroupCommit(bank)
    outside_done = False

    def decide_after_outside_write() -> Account:
        nonlocal outside_done
        account = bank.app.decide_credit(account_id, 5)
        if not outside_done:  # another process saves first: the batch's save conflicts
            outside_done = True
            contextvars.Context().run(bank.app.credit, account_id, 100)  # not in this batch
        return account

    try:
        ids = await group.submit(decide_after_outside_write)
    finally:
        await group.close()
    assert group.fallbacks == 1
    assert len(ids) == 1
    assert await bank.call(bank.app.balance, account_id) == 105


async def test_a_batch_loads_a_cached_aggregate_another_thread_advances_meanwhile(
    bank: EventStore[Bank],
) -> None:
    """A batch reads the cached version, selects what is newer, then advances the cached
    object under its lock: a reader's `get` in between (a GET of the same aggregate) has
    advanced it already. Found as a 500 when buyers raced for an IPO's shares."""
    account_id = await bank.call(bank.app.open_account, "Ada")
    await bank.call(bank.app.balance, account_id)  # cached at version 1
    await bank.call(bank.app.credit, account_id, 5)  # stored at version 2, cache still at 1
    recorder = bank.app.recorder
    select = recorder.select_events_after

    def select_then_a_reader_gets_it(*args, **kwargs):  # type: ignore[no-untyped-def]
        found = select(*args, **kwargs)
        contextvars.Context().run(bank.app.repository.get, account_id)  # outside the batch
        return found

    recorder.select_events_after = select_then_a_reader_gets_it  # type: ignore[method-assign]
    group = GroupCommit(bank)
    try:
        await group.submit(lambda: bank.app.decide_credit(account_id, 7), loads=[account_id])
    finally:
        await group.close()
        del recorder.select_events_after
    assert await bank.call(bank.app.balance, account_id) == 12


async def test_a_failing_command_fails_alone_in_its_batch(bank: EventStore[Bank]) -> None:
    account_id = await bank.call(bank.app.open_account, "Ada")
    group = GroupCommit(bank)

    def overdraw() -> Account:
        account: Account = bank.app.repository.get(account_id)
        account.debit(1_000_000)
        return account

    try:
        results = await asyncio.gather(
            group.submit(lambda: bank.app.decide_credit(account_id, 7)),
            group.submit(overdraw),
            return_exceptions=True,
        )
    finally:
        await group.close()
    assert isinstance(results[1], InsufficientFunds)
    assert len(results[0]) == 1
    assert await bank.call(bank.app.balance, account_id) == 7


async def test_a_second_instance_sees_the_same_store(
    bank: EventStore[Bank], settings: Settings
) -> None:
    account_id = await bank.call(bank.app.open_account, "Ada")
    other = await open_event_store("sample", Bank, settings)
    try:
        assert (await other.call(other.app.repository.get, account_id)).owner == "Ada"
    finally:
        other.close()
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await asyncpg.connect(bank.location.asyncpg_dsn.replace("sample", "nothere"))


async def test_commands_on_one_account_chain_inside_a_batch(bank: EventStore[Bank]) -> None:
    account_id = await bank.call(bank.app.open_account, "Ada")
    group = GroupCommit(bank)
    try:
        results = await asyncio.gather(
            *(
                group.submit(lambda a=a: bank.app.decide_credit(account_id, a))
                for a in range(1, 201)
            )
        )
    finally:
        await group.close()
    assert await bank.call(bank.app.balance, account_id) == sum(range(1, 201))
    assert group.fallbacks == 0
    assert group.batches <= 5, "same-account commands were not saved together"
    events = await bank.call(lambda: list(bank.app.events.get(account_id)))
    by_id = {nid: a for a, [nid] in zip(range(1, 201), results, strict=True)}
    assert len(by_id) == 200  # each caller got its own event (ids are sparse, never shared)
    assert [e.amount for e in events[1:]] == [by_id[n] for n in sorted(by_id)]


async def test_a_command_failing_midway_does_not_leak_into_its_batch(
    bank: EventStore[Bank],
) -> None:
    account_id = await bank.call(bank.app.open_account, "Ada")
    group = GroupCommit(bank)

    def credit_then_fail() -> Account:
        account: Account = bank.app.repository.get(account_id)
        account.credit(1_000)
        raise RuntimeError("crashed after deciding")

    try:
        results = await asyncio.gather(
            group.submit(lambda: bank.app.decide_credit(account_id, 1)),
            group.submit(credit_then_fail),
            group.submit(lambda: bank.app.decide_credit(account_id, 2)),
            return_exceptions=True,
        )
    finally:
        await group.close()
    assert isinstance(results[1], RuntimeError)
    assert await bank.call(bank.app.balance, account_id) == 3


class SnapshottingBank(Bank):
    snapshotting_intervals = {Account: 5}


async def test_snapshots_are_taken_at_the_interval_and_used_to_load(settings: Settings) -> None:
    store = await open_event_store("sample", SnapshottingBank, settings)
    try:
        with meta.caused_by(meta.EventMetadata(correlation_id="req-snap")):
            account_id = await store.call(store.app.open_account, "Ada")
            for _ in range(11):
                await store.call(store.app.credit, account_id, 1)
        snapshots = await store.call(lambda: list(store.app.snapshots.get(account_id)))
        assert [s.originator_version for s in snapshots] == [5, 10]
        fresh = await open_event_store("sample", SnapshottingBank, settings)  # no cache
        try:
            assert await fresh.call(fresh.app.balance, account_id) == 11
        finally:
            fresh.close()
    finally:
        store.close()


async def test_a_sole_writer_decides_from_its_cache_and_a_writer_it_did_not_see_costs_one_retry(
    bank: EventStore[Bank], settings: Settings
) -> None:
    """One replica (the default) reads nothing before a command; were another process to
    write after all, the stale command conflicts instead of overwriting, and the aggregate is
    dropped from the cache so the retry decides on what is stored."""
    assert bank.settings.sole_writer and not bank.app.repository.fastforward
    account_id = await bank.call(bank.app.open_account, "Ada")
    await bank.call(bank.app.credit, account_id, 1)  # cached at version 2
    other = await open_event_store("sample", Bank, settings)
    try:
        await other.call(other.app.credit, account_id, 100)  # version 3, unseen here
    finally:
        other.close()
    with pytest.raises(ConcurrencyConflict):
        await run_command(bank, bank.app.credit, account_id, 5)
    await run_command(bank, bank.app.credit, account_id, 5)
    assert await bank.call(bank.app.balance, account_id) == 106


async def test_replicas_fast_forward_before_every_command(settings: Settings) -> None:
    replicas = dataclasses.replace(settings, sole_writer=False)
    one = await open_event_store("sample", Bank, replicas)
    two = await open_event_store("sample", Bank, replicas)
    try:
        assert one.app.repository.fastforward
        account_id = await one.call(one.app.open_account, "Ada")
        await one.call(one.app.credit, account_id, 1)
        await two.call(two.app.credit, account_id, 100)
        await one.call(one.app.credit, account_id, 5)  # no conflict: read what two wrote
        assert await two.call(two.app.balance, account_id) == 106
    finally:
        one.close()
        two.close()
