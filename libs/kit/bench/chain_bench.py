"""`make bench` for the chain layer, on the embedded EVM (py-evm in process):

    send      transactions/s sent and confirmed through the adapter (nonces, gas estimation,
              receipts), 50 in flight, beside raw web3 `transact` + receipt of the same calls
    index     logs/s the indexer turns into a service's events (blocks, reorg bookkeeping, the
              inbox, the event store), beside a raw `eth_getLogs` of the same blocks

Printed, never asserted. Uses DATABASE_URL, else the local default server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from audifi_kit.chain import ChainAdapter, EmbeddedChain
from audifi_kit.chain.indexer import ChainIndexer, ChainLog
from audifi_kit.eventstore import ServiceApplication, open_event_store
from audifi_kit.settings import Settings
from audifi_kit.testing import LOCAL_DEFAULTS, drop_databases
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event
from rich.console import Console
from web3 import EthereumTesterProvider, Web3

console = Console()
EMITTER = Path(__file__).resolve().parents[1] / "tests" / "chain" / "fixtures" / "Emitter.json"


class Notes(Aggregate):
    @staticmethod
    def create_id(contract: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"bench-notes:{contract}")

    @event("Opened")
    def __init__(self, contract: str) -> None:
        self.contract = contract
        self.count = 0

    @event("NoteRecorded")
    def record(self, log_key: str) -> None:
        self.count += 1

    @event("NoteReverted")
    def revert(self, log_key: str) -> None:
        self.count -= 1


class NotesApp(ServiceApplication):
    pass


class NoteLogs:
    def apply(self, app: NotesApp, log: ChainLog) -> Sequence[Any]:
        try:
            notes = app.repository.get(Notes.create_id(log.address))
        except AggregateNotFoundError:
            notes = Notes(log.address)
        notes.record(log.key)
        return [notes]

    def revert(self, app: NotesApp, log: ChainLog) -> Sequence[Any]:
        notes = app.repository.get(Notes.create_id(log.address))
        notes.revert(log.key)
        return [notes]


async def bench_send(artifact: dict[str, Any], n: int, in_flight: int) -> dict[str, float]:
    adapter = await ChainAdapter.connect(Settings(), embedded=EmbeddedChain())
    try:
        emitter = await adapter.deploy(artifact)
        slots = asyncio.Semaphore(in_flight)

        async def one(i: int) -> None:
            async with slots:
                await adapter.transact(emitter, "note", i, f"note {i}")

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        through = n / (time.perf_counter() - started)
    finally:
        await adapter.close()

    # Raw: the same calls with web3 on its own chain, one transaction and receipt at a time.
    w3 = Web3(EthereumTesterProvider(EmbeddedChain().tester))
    sender = w3.eth.accounts[0]
    contract = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    address = w3.eth.wait_for_transaction_receipt(
        contract.constructor().transact({"from": sender})
    ).contractAddress
    deployed = w3.eth.contract(address=address, abi=artifact["abi"])

    def raw() -> float:
        started = time.perf_counter()
        for i in range(n):
            tx = deployed.functions.note(i, f"note {i}").transact({"from": sender})
            w3.eth.wait_for_transaction_receipt(tx)
        return n / (time.perf_counter() - started)

    return {"adapter": through, "raw": await asyncio.to_thread(raw)}


async def bench_index(artifact: dict[str, Any], n: int, server: str) -> dict[str, float]:
    prefix = f"audifi_chainbench{uuid.uuid4().hex[:6]}_"
    settings = Settings(database_url=server, db_prefix=prefix)
    chain = EmbeddedChain()
    adapter = await ChainAdapter.connect(Settings(), embedded=chain)
    store = await open_event_store("chainbench", NotesApp, settings)
    pool = await store.create_pool()
    try:
        emitter = await adapter.deploy(artifact)
        for i in range(n):
            await adapter.transact(emitter, "note", i, f"note {i}")
        head = await adapter.w3.eth.block_number

        started = time.perf_counter()
        logs = await adapter.w3.eth.get_logs(
            {"address": emitter.address, "fromBlock": 0, "toBlock": head}
        )
        raw = len(logs) / (time.perf_counter() - started)

        indexer = ChainIndexer(
            "chainbench.notes",
            adapter.w3,
            store,  # type: ignore[arg-type]
            pool,
            {emitter.address: emitter.abi},
            NoteLogs(),
            batch_blocks=200,
        )
        await indexer.create_tables()
        started = time.perf_counter()
        result = await indexer.catch_up()
        indexed = result.applied / (time.perf_counter() - started)
    finally:
        await pool.close()
        store.close()
        await adapter.close()
        await drop_databases(server, prefix)
    return {"indexer": indexed, "raw": raw, "logs": float(len(logs))}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=300)
    parser.add_argument("--in-flight", type=int, default=50)
    args = parser.parse_args()
    artifact = json.loads(EMITTER.read_text())
    server = os.environ.get("DATABASE_URL") or LOCAL_DEFAULTS["DATABASE_URL"][0]

    console.print(f"chain benchmark: embedded EVM, {args.transactions} transactions")
    sent = await bench_send(artifact, args.transactions, args.in_flight)
    console.print(
        f"[bold]send + confirm[/bold] through the adapter ({args.in_flight} in flight): "
        f"{sent['adapter']:,.1f} tx/s  |  baseline raw web3 transact + receipt "
        f"{sent['raw']:,.1f} tx/s  |  ratio {sent['adapter'] / sent['raw']:.2f}"
    )
    indexed = await bench_index(artifact, args.transactions, server)
    console.print(
        f"[bold]index[/bold] {indexed['logs']:.0f} logs into the event store: "
        f"{indexed['indexer']:,.1f} logs/s  |  baseline raw eth_getLogs "
        f"{indexed['raw']:,.1f} logs/s  |  ratio {indexed['indexer'] / indexed['raw']:.3f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
