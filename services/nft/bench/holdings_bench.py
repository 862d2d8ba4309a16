"""`make bench` for nft's holdings: MasterShares' transfers indexed into the holdings view.

    holdings  logs/s the share indexer turns into holdings (block headers, reorg bookkeeping,
              the inbox, `ShareToken` events in the event store, and the `holdings` view
              caught up behind them), vs a raw `eth_getLogs` of the same blocks, in this
              process, on the embedded EVM

The chain: the platform's contracts deployed, a few masters' IPOs opened and their shares
minted by nft's operator to three holders, then `--transfers` movements signed by the
holders themselves (wallet to wallet; one in `BATCH_EVERY` a TransferBatch of every master).
Both rates count the same logs: every MasterShares log of the range (the indexer reads them
all, and records events for those that move shares). Printed, never asserted (beyond the
view adding up to the minted supply). Uses DATABASE_URL (else the local server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid

from audifi_kit.chain import ChainAdapter
from audifi_kit.chain.platform import PlatformChain, artifact
from audifi_kit.eventstore import open_event_store
from audifi_kit.projections import ProjectionRunner
from audifi_kit.settings import Settings
from audifi_kit.testing import LOCAL_DEFAULTS, drop_databases
from audifi_nft.application import NftApplication
from audifi_nft.holdings import share_indexer
from audifi_nft.projections.holdings import BALANCES, MASTERS, Holdings
from rich.console import Console
from rich.table import Table

console = Console()
MASTERS_COUNT = 4
HOLDERS = (7, 8, 9)  # genesis accounts no service of the bench signs with
MINTED = 1_000  # per master and holder
BATCH_EVERY = 4  # one transfer in this many is a TransferBatch of every master
RECEIVER = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
GAS = 300_000  # above any of these calls: no estimate per transaction


async def make_transfers(chain: PlatformChain, transfers: int) -> list[uuid.UUID]:
    """The masters whose shares were minted and moved.

    One transaction a block, as the embedded EVM mines them: with several in a block,
    eth-tester numbers each transaction's logs from 0 (a node numbers them across the
    block), and logs of one block would share their (block hash, log index) key.
    """
    operator = await chain.adapter("nft")
    shares = await chain.contract("nft", "MasterShares")
    abi = artifact("MasterShares")
    holders = [
        await ChainAdapter.connect(Settings(), embedded=chain.embedded, account_index=i)
        for i in HOLDERS
    ]
    masters = [uuid.uuid4() for _ in range(MASTERS_COUNT)]
    ids = [m.int for m in masters]
    try:
        for m in masters:  # the platform: IPOs opened, shares minted to the holders
            await operator.transact(shares, "openIpo", m.int, MINTED * len(holders), RECEIVER, 500)
            for h in holders:
                await operator.transact(shares, "mint", h.address, m.int, MINTED, gas=GAS)
        handles = [h.contract(abi, shares.address) for h in holders]
        chooser = random.Random(7)
        for i in range(transfers):  # the holders, wallet to wallet
            k = i % len(holders)
            sender, contract = holders[k], handles[k]
            to = (
                holders[(k + 1) % len(holders)].address
                if i % 3
                else sender.w3.to_checksum_address(f"0x{chooser.getrandbits(160):040x}")
            )
            if i % BATCH_EVERY == 0:
                await sender.transact(
                    contract,
                    "safeBatchTransferFrom",
                    sender.address,
                    to,
                    ids,
                    [1] * len(ids),
                    b"",
                    gas=GAS,
                )
            else:
                await sender.transact(
                    contract,
                    "safeTransferFrom",
                    sender.address,
                    to,
                    ids[i % len(ids)],
                    1,
                    b"",
                    gas=GAS,
                )
        return masters
    finally:
        for h in holders:
            await h.close()


async def bench_holdings(server: str, transfers: int) -> None:
    prefix = f"audifi_hbench{uuid.uuid4().hex[:6]}_"
    settings = Settings(database_url=server, db_prefix=prefix, pool_size=4)
    chain = PlatformChain(settings)
    store = await open_event_store("nft", NftApplication, settings)
    pool = await store.create_pool()
    runner = ProjectionRunner(store, Holdings())
    try:
        deployment = await chain.start()
        t = time.perf_counter()
        masters = await make_transfers(chain, transfers)
        sent = time.perf_counter() - t
        reader = await chain.adapter("nft")
        head = await reader.w3.eth.block_number
        address = deployment.address("MasterShares")

        t = time.perf_counter()
        logs = await reader.w3.eth.get_logs(
            {"address": address, "fromBlock": deployment.start_block, "toBlock": head}
        )
        raw = len(logs) / (time.perf_counter() - t)

        indexer = await share_indexer("nft.shares", chain, store, pool, settings, batch_blocks=200)
        await indexer.create_tables()
        await runner.start()
        t = time.perf_counter()
        result = await indexer.catch_up()
        indexed_at = time.perf_counter() - t
        last = await pool.fetchval(f'SELECT max(notification_id) FROM "{store.table}"')
        await runner.wait(last, timeout=120)
        elapsed = time.perf_counter() - t

        for m in masters:  # the view adds up: every minted share is somewhere
            held = await pool.fetchval(
                f"SELECT coalesce(sum(amount), 0) FROM {BALANCES} WHERE master_id = $1", m
            )
            supply = await pool.fetchval(f"SELECT supply FROM {MASTERS} WHERE master_id = $1", m)
            assert held == supply == MINTED * len(HOLDERS), (m, held, supply)
        rate = len(logs) / elapsed
        console.print(
            f"chain: {len(logs)} MasterShares logs in {head - deployment.start_block + 1} blocks "
            f"({transfers} holder transfers, sent in {sent:.1f} s); {result.applied} of them moved "
            "shares"
        )
        table = Table("benchmark", "figure", "baseline (same run)", "ratio", title="audifi nft")
        table.add_row(
            "share transfers indexed into holdings (event store + view)",
            f"{rate:,.0f} logs/s (the indexer alone {len(logs) / indexed_at:,.0f} logs/s)",
            f"raw eth_getLogs of the same blocks {raw:,.0f} logs/s",
            f"{rate / raw:.3f}",
        )
        console.print(table)
    finally:
        await runner.stop()
        await pool.close()
        store.close()
        await chain.close()
        await drop_databases(server, prefix)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transfers", type=int, default=120)
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL") or LOCAL_DEFAULTS["DATABASE_URL"][0]
    await bench_holdings(server, args.transfers)


if __name__ == "__main__":
    asyncio.run(main())
