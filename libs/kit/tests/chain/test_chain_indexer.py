"""The indexer: logs become a service's events once, and a reorg's orphaned logs are undone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import asyncpg
import pytest
from audifi_kit.chain import ChainAdapter, EmbeddedChain
from audifi_kit.chain.indexer import BLOCKS_TABLE, LOGS_TABLE, ChainIndexer, ChainLog
from audifi_kit.eventstore import EventStore, ServiceApplication, open_event_store
from audifi_kit.settings import Settings
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event
from web3.contract import AsyncContract


class NoteBook(Aggregate):
    """The owning service's view of one Emitter contract: the notes it has on chain."""

    @staticmethod
    def create_id(contract: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"notebook:{contract}")

    @event("Opened")
    def __init__(self, contract: str) -> None:
        self.contract = contract
        self.notes: dict[str, str] = {}

    @event("NoteRecorded")
    def record(self, log_key: str, note_id: int, text: str) -> None:
        self.notes[log_key] = text

    @event("NoteReverted")
    def revert(self, log_key: str) -> None:
        del self.notes[log_key]


class NotesApp(ServiceApplication):
    def notebook(self, contract: str) -> NoteBook:
        return self.repository.get(NoteBook.create_id(contract))


class NoteLogs:
    """The owning service's LogHandler: a `Noted` log records a note; its rollback reverts it."""

    def apply(self, app: NotesApp, log: ChainLog) -> Sequence[Any]:
        if log.event != "Noted":
            return []
        try:
            book = app.notebook(log.address)
        except AggregateNotFoundError:
            book = NoteBook(log.address)
        book.record(log.key, log.args["id"], log.args["note"])
        return [book]

    def revert(self, app: NotesApp, log: ChainLog) -> Sequence[Any]:
        book = app.notebook(log.address)
        book.revert(log.key)
        return [book]


@pytest.fixture
async def store(chain_settings: Settings) -> AsyncIterator[EventStore[NotesApp]]:
    store = await open_event_store("chainsvc", NotesApp, chain_settings)
    yield store
    store.close()


@pytest.fixture
async def pool(store: EventStore[NotesApp]) -> AsyncIterator[asyncpg.Pool]:
    pool = await store.create_pool()
    yield pool
    await pool.close()


@pytest.fixture
async def emitter(adapter: ChainAdapter, emitter_artifact: dict[str, Any]) -> AsyncContract:
    return await adapter.deploy(emitter_artifact)


def indexer_for(
    adapter: ChainAdapter,
    store: EventStore[NotesApp],
    pool: asyncpg.Pool,
    emitter: AsyncContract,
    *,
    confirmations: int = 0,
    name: str = "chainsvc.notes",
    use_filter: bool | None = None,
) -> ChainIndexer:
    return ChainIndexer(
        name,
        adapter.w3,
        store,  # type: ignore[arg-type]
        pool,
        {emitter.address: emitter.abi},
        NoteLogs(),
        confirmations=confirmations,
        batch_blocks=4,
        use_filter=use_filter,
    )


async def note(adapter: ChainAdapter, emitter: AsyncContract, *texts: str) -> None:
    for i, text in enumerate(texts):
        await adapter.transact(emitter, "note", i, text)


def notes(store: EventStore[NotesApp], contract: str) -> list[str]:
    return sorted(store.app.notebook(contract).notes.values())


def history(store: EventStore[NotesApp], contract: str) -> list[str]:
    events = store.app.events.get(NoteBook.create_id(contract))
    return [type(e).__name__ for e in events]


async def test_logs_become_events_once_even_when_the_range_is_indexed_again(
    adapter: ChainAdapter,
    store: EventStore[NotesApp],
    pool: asyncpg.Pool,
    emitter: AsyncContract,
) -> None:
    indexer = indexer_for(adapter, store, pool, emitter)
    await indexer.create_tables()
    await note(adapter, emitter, "a", "b", "c")

    first = await indexer.catch_up()
    again = await indexer.catch_up()
    await pool.execute(f"DELETE FROM {BLOCKS_TABLE}")  # forget the position: the same range
    restarted = indexer_for(adapter, store, pool, emitter)
    replayed = await restarted.catch_up()

    assert (first.applied, again.applied, replayed.applied) == (3, 0, 0)
    assert replayed.blocks == first.blocks
    assert notes(store, emitter.address) == ["a", "b", "c"]
    assert history(store, emitter.address).count("NoteRecorded") == 3


async def test_blocks_within_the_confirmation_lag_wait(
    adapter: ChainAdapter,
    chain: EmbeddedChain,
    store: EventStore[NotesApp],
    pool: asyncpg.Pool,
    emitter: AsyncContract,
) -> None:
    indexer = indexer_for(adapter, store, pool, emitter, confirmations=2)
    await indexer.create_tables()
    await note(adapter, emitter, "a", "b", "c")

    early = await indexer.catch_up()
    chain.mine_blocks(2)
    late = await indexer.catch_up()

    assert (early.applied, late.applied) == (1, 2)
    assert notes(store, emitter.address) == ["a", "b", "c"]


@pytest.mark.parametrize("use_filter", [True, False], ids=["log filter", "getLogs ranges"])
async def test_a_reorg_undoes_the_orphaned_logs_and_applies_the_new_chain_once(
    use_filter: bool,
    adapter: ChainAdapter,
    chain: EmbeddedChain,
    store: EventStore[NotesApp],
    pool: asyncpg.Pool,
    emitter: AsyncContract,
) -> None:
    indexer = indexer_for(adapter, store, pool, emitter, use_filter=use_filter)
    await indexer.create_tables()
    await indexer.catch_up()  # following from here: the filter sees every later block mined
    fork_point = chain.take_snapshot()
    await note(adapter, emitter, "orphan 1", "orphan 2", "orphan 3")
    before = await indexer.catch_up()
    assert notes(store, emitter.address) == ["orphan 1", "orphan 2", "orphan 3"]
    assert (indexer._filter_id is not None) is use_filter

    chain.revert_to_snapshot(fork_point)
    await adapter.resync_nonce()
    await note(adapter, emitter, "new 1", "new 2", "new 3", "new 4")
    after = await indexer.catch_up()
    again = await indexer_for(adapter, store, pool, emitter).catch_up()

    assert before.applied == 3
    assert (after.reorgs, after.reverted, after.applied) == (1, 3, 4)
    assert (again.applied, again.reverted) == (0, 0)
    assert notes(store, emitter.address) == ["new 1", "new 2", "new 3", "new 4"]
    assert history(store, emitter.address) == [
        "Opened",
        *["NoteRecorded"] * 3,
        *["NoteReverted"] * 3,  # history kept: the orphaned notes are compensated, not deleted
        *["NoteRecorded"] * 4,
    ]


async def test_a_reorg_to_a_chain_of_the_same_length_is_noticed_at_the_tip(
    adapter: ChainAdapter,
    chain: EmbeddedChain,
    store: EventStore[NotesApp],
    pool: asyncpg.Pool,
    emitter: AsyncContract,
) -> None:
    indexer = indexer_for(adapter, store, pool, emitter)
    await indexer.create_tables()
    await indexer.catch_up()
    fork_point = chain.take_snapshot()
    await note(adapter, emitter, "old 1", "old 2")
    await indexer.catch_up()

    chain.revert_to_snapshot(fork_point)
    await adapter.resync_nonce()
    await note(adapter, emitter, "new 1", "new 2")
    after = await indexer.catch_up()

    assert (after.reverted, after.applied) == (2, 2)
    assert notes(store, emitter.address) == ["new 1", "new 2"]


async def test_a_block_that_returns_after_a_reorg_back_is_applied_again_once(
    adapter: ChainAdapter,
    chain: EmbeddedChain,
    store: EventStore[NotesApp],
    pool: asyncpg.Pool,
    emitter: AsyncContract,
) -> None:
    indexer = indexer_for(adapter, store, pool, emitter)
    await indexer.create_tables()
    await indexer.catch_up()
    fork_point = chain.take_snapshot()
    await note(adapter, emitter, "a")
    branch_a = chain.take_snapshot()
    await indexer.catch_up()

    chain.revert_to_snapshot(fork_point)  # a block without logs replaces "a"'s block
    chain.mine_blocks(1)
    await indexer.catch_up()
    assert notes(store, emitter.address) == []

    chain.revert_to_snapshot(branch_a)  # and the first branch wins after all
    chain.mine_blocks(1)
    back = await indexer.catch_up()

    assert back.applied == 1
    assert notes(store, emitter.address) == ["a"]
    assert history(store, emitter.address).count("NoteRecorded") == 2


async def test_the_running_indexer_follows_new_blocks_until_stopped(
    adapter: ChainAdapter,
    store: EventStore[NotesApp],
    pool: asyncpg.Pool,
    emitter: AsyncContract,
) -> None:
    indexer = indexer_for(adapter, store, pool, emitter)
    indexer.poll_interval = 0.05
    running = asyncio.create_task(indexer.run())

    await note(adapter, emitter, "live 1", "live 2")
    async with asyncio.timeout(10):
        while await pool.fetchval(f"SELECT count(*) FROM {LOGS_TABLE}") < 2:
            await asyncio.sleep(0.05)
    indexer.stop()
    await asyncio.wait_for(running, 5)

    assert notes(store, emitter.address) == ["live 1", "live 2"]


async def test_two_instances_of_one_indexer_racing_apply_each_log_once(
    adapter: ChainAdapter,
    store: EventStore[NotesApp],
    pool: asyncpg.Pool,
    emitter: AsyncContract,
) -> None:
    first = indexer_for(adapter, store, pool, emitter)
    second = indexer_for(adapter, store, pool, emitter)
    await first.create_tables()
    await note(adapter, emitter, *(f"note {i}" for i in range(8)))

    results = await asyncio.gather(first.catch_up(), second.catch_up())

    assert sum(r.applied for r in results) == 8
    assert history(store, emitter.address).count("NoteRecorded") == 8
    assert len(notes(store, emitter.address)) == 8
