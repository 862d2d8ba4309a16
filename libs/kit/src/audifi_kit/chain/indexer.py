"""The chain indexer: contract logs into a service's event store, exactly once, reorg-safe.

It follows the logs of a set of contract addresses from a start block, `confirmations` blocks
behind the head, and keeps every processed block's number, hash and parent hash in
`kit_chain_blocks` of the owning service's database. Before a block is applied its parent hash
is compared with the stored hash below it (and the stored tip is compared with the chain): on a
mismatch the indexer walks back to the newest block whose stored hash the chain still has (the
common ancestor), rolls back the logs of every orphaned block above it, newest first, and then
follows the new chain, as Audius' discovery node does.

The owning service implements `LogHandler` (both methods run in the event store's worker
thread and return the aggregates they changed, unsaved):

- `apply(app, log)`: the domain commands a log means (e.g. `SharesMinted`);
- `revert(app, log)`: compensating events for a log whose block left the chain (e.g.
  `MintReverted`). History is never deleted: an orphaned log's effect is undone by new events.
  It is called only for logs whose `apply` saved events.

Exactly once: the events of one log are saved in one event-store transaction together with an
inbox row `(indexer name, "<block hash>:<log index>:<generation>")` (`InboxRecorder`), and a
compensation with `"...:<generation>:reverted"`. A replay of the same block, after a crash or a
second run over the same range, fails on the inbox key and applies nothing twice. Each log is
first noted in `kit_chain_logs` (its raw topics and data, so a rollback can decode it again
after a restart); the generation counts its rollbacks, so a block that comes back after a
reorg and a reorg back is applied again, once.

Reading: headers one by one, logs by bounded eth_getLogs ranges (`batch_blocks`); on the
embedded EVM, whose getLogs is slow, through a log filter while following (see `_logs`).
A service passes `settings.chain_confirmations` as `confirmations` and runs `run()` in its
lifespan (or `catch_up()` where it wants to wait for the chain).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
from eth_utils import event_abi_to_log_topic, to_checksum_address
from eventsourcing.persistence import IntegrityError, OperationalError
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3._utils.events import get_event_data

from audifi_kit import metadata as meta
from audifi_kit.chain.embedded import EmbeddedProvider
from audifi_kit.chain.reverts import ErrorRegistry, blockchain_error
from audifi_kit.errors import BlockchainError
from audifi_kit.eventstore import INBOX_TABLE, EventStore, ServiceApplication
from audifi_kit.follower import LogFollower

log = logging.getLogger(__name__)

BLOCKS_TABLE = "kit_chain_blocks"
LOGS_TABLE = "kit_chain_logs"

INDEXER_DDL = f"""
CREATE TABLE IF NOT EXISTS {BLOCKS_TABLE} (
    indexer text NOT NULL,
    number bigint NOT NULL,
    hash text NOT NULL,
    parent_hash text NOT NULL,
    indexed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (indexer, number)
);
CREATE TABLE IF NOT EXISTS {LOGS_TABLE} (
    indexer text NOT NULL,
    block_hash text NOT NULL,
    log_index integer NOT NULL,
    block_number bigint NOT NULL,
    tx_hash text NOT NULL,
    address text NOT NULL,
    topics jsonb NOT NULL,
    data text NOT NULL,
    generation integer NOT NULL DEFAULT 0,
    reverted boolean NOT NULL DEFAULT false,
    PRIMARY KEY (indexer, block_hash, log_index)
);
CREATE INDEX IF NOT EXISTS {LOGS_TABLE}_by_number ON {LOGS_TABLE} (indexer, block_number);
"""


@dataclass(frozen=True, slots=True)
class ChainLog:
    """One contract log, decoded by the ABI of the contract that emitted it."""

    address: str
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    topics: tuple[str, ...]
    data: str
    event: str | None = None  # None: no event of the ABI has this topic
    args: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Unique per log and per chain it was mined in."""
        return f"{self.block_hash}:{self.log_index}"


class LogHandler(Protocol):
    def apply(self, app: Any, log: ChainLog) -> Sequence[Any]: ...

    def revert(self, app: Any, log: ChainLog) -> Sequence[Any]: ...


class ReorgTooDeep(BlockchainError):
    default_message = "The chain reorganised below the oldest block the indexer keeps"


@dataclass(slots=True)
class _Block:
    number: int
    hash: str
    parent_hash: str


@dataclass(slots=True)
class StepResult:
    applied: int = 0  # logs whose events were saved now
    reverted: int = 0  # logs compensated now
    blocks: int = 0  # blocks processed
    reorgs: int = 0


class ChainIndexer:
    """Follows `contracts` (address -> ABI) for one owning service's event store."""

    def __init__(
        self,
        name: str,
        w3: AsyncWeb3[Any],
        store: EventStore[ServiceApplication],
        pool: asyncpg.Pool,
        contracts: Mapping[str, Sequence[Mapping[str, Any]]],
        handler: LogHandler,
        *,
        start_block: int = 0,
        confirmations: int = 0,
        batch_blocks: int = 50,
        keep_blocks: int = 10_000,
        poll_interval: float = 1.0,
        use_filter: bool | None = None,
    ) -> None:
        self.name = name
        self.w3 = w3
        self.store = store
        self.pool = pool
        self.handler = handler
        self.start_block = start_block
        self.confirmations = confirmations
        self.batch_blocks = batch_blocks
        self.keep_blocks = keep_blocks
        self.addresses = [to_checksum_address(a) for a in contracts]
        self._events: dict[tuple[str, bytes], Mapping[str, Any]] = {}
        for address, abi in contracts.items():
            for item in abi:
                if item.get("type") == "event" and not item.get("anonymous"):
                    topic = event_abi_to_log_topic(item)  # type: ignore[arg-type]
                    self._events[(to_checksum_address(address), topic)] = item
        self._follower = LogFollower(
            f"chain indexer {name}",
            self._step_blocks,
            poll_interval=poll_interval,
            retry_delay=poll_interval,
            max_retry_delay=10 * poll_interval,
            expected_errors=(BlockchainError,),
            logger=log,
        )
        self.use_filter = (
            isinstance(w3.provider, EmbeddedProvider) if use_filter is None else use_filter
        )
        self._filter_id: str | None = None
        self._filter_covers_above = 0
        self._buffer: dict[str, list[Any]] = {}

    async def create_tables(self) -> None:
        await self.pool.execute(INDEXER_DDL)

    # -- the loop ----------------------------------------------------------------------

    @property
    def poll_interval(self) -> float:
        return self._follower.poll_interval

    @poll_interval.setter
    def poll_interval(self, seconds: float) -> None:
        self._follower.poll_interval = seconds

    async def run(self) -> None:
        """Follow the chain until `stop()`: a step, then a pause when caught up."""
        await self.create_tables()
        await self._follower.run()

    def stop(self) -> None:
        """`run()` returns after the step under way."""
        self._follower.request_stop()

    @contextlib.asynccontextmanager
    async def running(self, name: str | None = None) -> AsyncIterator[ChainIndexer]:
        """`run()` in a task for the block's duration (a service's lifespan: while it
        serves), then stopped and awaited."""
        following = asyncio.create_task(self.run(), name=name or f"chain indexer {self.name}")
        try:
            yield self
        finally:
            self.stop()
            await following

    async def _step_blocks(self) -> int:
        return (await self.step()).blocks

    async def catch_up(self) -> StepResult:
        """Step until no confirmed block is left; the total of what was done."""
        total = StepResult()
        while True:
            result = await self.step()
            total.applied += result.applied
            total.reverted += result.reverted
            total.blocks += result.blocks
            total.reorgs += result.reorgs
            if result.blocks == 0 and result.reorgs == 0:
                return total

    async def step(self) -> StepResult:
        """One bounded batch of blocks (or one rollback if the chain reorganised)."""
        result = StepResult()
        head = await self._rpc(self.w3.eth.block_number, "block number")
        tip = await self._tip()
        if tip is not None and await self._orphaned(tip, head):
            result.reverted += await self._rollback(head)
            result.reorgs += 1
            return result
        target = head - self.confirmations
        first = self.start_block if tip is None else tip.number + 1
        last = min(target, first + self.batch_blocks - 1)
        if first > last:
            return result
        blocks = [await self._header(n) for n in range(first, last + 1)]
        by_block = await self._logs(blocks)
        for block in blocks:
            if tip is not None and block.parent_hash != tip.hash:
                # A reorg between reads: roll back what this step's earlier blocks stored.
                result.reverted += await self._rollback(head)
                result.reorgs += 1
                return result
            entries = sorted(by_block.get(block.hash, []), key=lambda e: e["logIndex"])
            if any(HexBytes(e["blockHash"]).to_0x_hex() != block.hash for e in entries):
                return result  # the logs came from another fork than the header: read again
            for entry in entries:
                if await self._apply(self._decode(entry)):
                    result.applied += 1
            await self.pool.execute(
                f"INSERT INTO {BLOCKS_TABLE} (indexer, number, hash, parent_hash) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (indexer, number) DO UPDATE "
                "SET hash = EXCLUDED.hash, parent_hash = EXCLUDED.parent_hash",
                self.name,
                block.number,
                block.hash,
                block.parent_hash,
            )
            tip = block
            result.blocks += 1
        await self.pool.execute(
            f"DELETE FROM {BLOCKS_TABLE} WHERE indexer = $1 AND number < $2",
            self.name,
            tip.number - self.keep_blocks if tip else 0,
        )
        return result

    # -- reorgs ------------------------------------------------------------------------

    async def _orphaned(self, tip: _Block, head: int) -> bool:
        if tip.number > head:
            return True
        current = await self._header(tip.number)
        return current.hash != tip.hash

    async def _rollback(self, head: int) -> int:
        """Walk back to the common ancestor; compensate every log stored above it."""
        rows = await self.pool.fetch(
            f"SELECT number, hash FROM {BLOCKS_TABLE} WHERE indexer = $1 ORDER BY number DESC",
            self.name,
        )
        ancestor: int | None = None
        for row in rows:
            if row["number"] <= head and (await self._header(row["number"])).hash == row["hash"]:
                ancestor = row["number"]
                break
        if ancestor is None:
            if rows and rows[-1]["number"] > self.start_block:
                raise ReorgTooDeep(details={"indexer": self.name, "oldest": rows[-1]["number"]})
            ancestor = self.start_block - 1
        orphaned = await self.pool.fetch(
            f"SELECT * FROM {LOGS_TABLE} WHERE indexer = $1 AND block_number > $2 "
            "AND NOT reverted ORDER BY block_number DESC, log_index DESC",
            self.name,
            ancestor,
        )
        reverted = 0
        for row in orphaned:
            chain_log = self._decode_row(row)
            apply_key = f"{chain_log.key}:{row['generation']}"
            if await self._seen(apply_key) and await self._save(
                self.handler.revert, chain_log, f"{apply_key}:reverted"
            ):
                reverted += 1
            await self.pool.execute(
                f"UPDATE {LOGS_TABLE} SET reverted = true, generation = generation + 1 "
                "WHERE indexer = $1 AND block_hash = $2 AND log_index = $3 AND generation = $4",
                self.name,
                row["block_hash"],
                row["log_index"],
                row["generation"],
            )
        await self.pool.execute(
            f"DELETE FROM {BLOCKS_TABLE} WHERE indexer = $1 AND number > $2", self.name, ancestor
        )
        await self._drop_filter()  # the blocks to read again may predate it
        log.info(
            "chain indexer %s: reorg above block %s, %s logs compensated",
            self.name,
            ancestor,
            reverted,
        )
        return reverted

    # -- applying ----------------------------------------------------------------------

    async def _apply(self, chain_log: ChainLog) -> bool:
        row = await self.pool.fetchrow(
            f"INSERT INTO {LOGS_TABLE} (indexer, block_hash, log_index, block_number, tx_hash, "
            "address, topics, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT (indexer, block_hash, log_index) DO UPDATE SET reverted = false "
            "RETURNING generation",
            self.name,
            chain_log.block_hash,
            chain_log.log_index,
            chain_log.block_number,
            chain_log.tx_hash,
            chain_log.address,
            json.dumps(list(chain_log.topics)),
            chain_log.data,
        )
        assert row is not None
        return await self._save(
            self.handler.apply, chain_log, f"{chain_log.key}:{row['generation']}"
        )

    async def _save(self, decide: Any, chain_log: ChainLog, key: str) -> bool:
        """Run `decide` and save its events with the inbox key; False if already saved."""
        causation = meta.EventMetadata(causation_id=f"chain:{key}")
        failure: Exception | None = None
        for _ in range(5):
            if await self._seen(key):  # a replay: most duplicates never reach the recorder
                return False
            try:
                with meta.caused_by(causation):
                    return await self.store.call(self._decide_and_save, decide, chain_log, key)
            except (IntegrityError, OperationalError) as exc:
                # The inbox key taken meanwhile, an aggregate changed by another writer, or a
                # connection lost: look again, then decide again on fresh state.
                failure = exc
        raise BlockchainError(
            "The indexer could not save a log's events",
            details={"indexer": self.name, "key": key, "errorType": type(failure).__name__},
        )

    def _decide_and_save(self, decide: Any, chain_log: ChainLog, key: str) -> bool:
        app = self.store.app
        aggregates = [a for a in decide(app, chain_log) if a is not None]
        if not any(getattr(a, "pending_events", None) for a in aggregates):
            return False
        app.save(*aggregates, inbox=(self.name, key))
        return True

    async def _seen(self, key: str) -> bool:
        return bool(
            await self.pool.fetchval(
                f"SELECT true FROM {INBOX_TABLE} WHERE consumer = $1 AND message_id = $2",
                self.name,
                key,
            )
        )

    # -- reading -----------------------------------------------------------------------

    async def _logs(self, blocks: list[_Block]) -> dict[str, list[Any]]:
        """The followed contracts' logs of `blocks` (consecutive), by block hash.

        A bounded eth_getLogs range, or, where `use_filter` (the embedded EVM, whose getLogs
        costs tens of ms per block, ARCHITECTURE.md §10), a log filter installed once: the EVM
        hands it each block's logs as the block is mined, so it covers every block above the
        head read after installing it. Entries are keyed by block hash, so logs of an orphaned
        block are never taken for its replacement.
        """
        first, last = blocks[0].number, blocks[-1].number
        if self.use_filter:
            try:
                if self._filter_id is None:
                    self._filter_id = (
                        await self.w3.eth.filter({"address": self.addresses})
                    ).filter_id
                    self._filter_covers_above = await self.w3.eth.block_number
                for entry in await self.w3.eth.get_filter_changes(self._filter_id):
                    self._buffer.setdefault(HexBytes(entry["blockHash"]).to_0x_hex(), []).append(
                        entry
                    )
            except Exception:
                await self._drop_filter()  # e.g. a node that forgot it: read by range instead
            if self._filter_id is not None and first > self._filter_covers_above:
                for key in [k for k, v in self._buffer.items() if v[0]["blockNumber"] < first]:
                    del self._buffer[key]  # processed heights (a rollback drops the filter)
                return {b.hash: self._buffer.get(b.hash, []) for b in blocks}
        logs = await self._rpc(
            self.w3.eth.get_logs({"fromBlock": first, "toBlock": last, "address": self.addresses}),
            "get logs",
        )
        by_block: dict[str, list[Any]] = {}
        for entry in logs:
            by_block.setdefault(HexBytes(entry["blockHash"]).to_0x_hex(), []).append(entry)
        return by_block

    async def _drop_filter(self) -> None:
        filter_id, self._filter_id = self._filter_id, None
        self._buffer.clear()
        if filter_id is not None:
            with contextlib.suppress(Exception):
                await self.w3.eth.uninstall_filter(filter_id)

    async def _tip(self) -> _Block | None:
        row = await self.pool.fetchrow(
            f"SELECT number, hash, parent_hash FROM {BLOCKS_TABLE} WHERE indexer = $1 "
            "ORDER BY number DESC LIMIT 1",
            self.name,
        )
        return _Block(row["number"], row["hash"], row["parent_hash"]) if row else None

    async def _header(self, number: int) -> _Block:
        block = await self._rpc(self.w3.eth.get_block(number), f"block {number}")
        return _Block(
            number, HexBytes(block["hash"]).to_0x_hex(), HexBytes(block["parentHash"]).to_0x_hex()
        )

    def _decode(self, entry: Any) -> ChainLog:
        return self._decoded(
            address=to_checksum_address(entry["address"]),
            block_number=entry["blockNumber"],
            block_hash=HexBytes(entry["blockHash"]).to_0x_hex(),
            tx_hash=HexBytes(entry["transactionHash"]).to_0x_hex(),
            log_index=entry["logIndex"],
            topics=tuple(HexBytes(t).to_0x_hex() for t in entry["topics"]),
            data=HexBytes(entry["data"]).to_0x_hex(),
        )

    def _decode_row(self, row: asyncpg.Record) -> ChainLog:
        return self._decoded(
            address=row["address"],
            block_number=row["block_number"],
            block_hash=row["block_hash"],
            tx_hash=row["tx_hash"],
            log_index=row["log_index"],
            topics=tuple(json.loads(row["topics"])),
            data=row["data"],
        )

    def _decoded(self, **raw: Any) -> ChainLog:
        topics = raw["topics"]
        item = self._events.get((raw["address"], bytes(HexBytes(topics[0])))) if topics else None
        if item is None:
            return ChainLog(**raw)
        web3_log = {
            "address": raw["address"],
            "topics": [HexBytes(t) for t in topics],
            "data": HexBytes(raw["data"]),
            "logIndex": raw["log_index"],
            "transactionIndex": 0,
            "transactionHash": HexBytes(raw["tx_hash"]),
            "blockHash": HexBytes(raw["block_hash"]),
            "blockNumber": raw["block_number"],
        }
        decoded = get_event_data(self.w3.codec, item, web3_log)  # type: ignore[arg-type]
        return ChainLog(**raw, event=decoded["event"], args=dict(decoded["args"]))

    async def _rpc(self, awaitable: Any, action: str) -> Any:
        try:
            return await awaitable
        except Exception as exc:
            raise blockchain_error(exc, ErrorRegistry(), action=action) from None
