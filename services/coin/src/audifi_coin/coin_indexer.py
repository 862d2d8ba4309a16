"""Each artist coin's logs into its `ArtistCoin`: the kit's reorg-safe `ChainIndexer`, one per
coin (its coin, pool and staking contracts, from the block the coin was made in).

One indexer per coin because the contracts are made at run time: an indexer follows a fixed
set of addresses, and a coin's indexer starting at its own deployment block misses nothing
whatever the others have read. `CoinIndexers` starts them for the live coins when the app
starts and for each coin as it goes live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from audifi_kit.chain.indexer import ChainIndexer, ChainLog
from audifi_kit.chain.platform import PlatformChain, artifact
from audifi_kit.eventstore import EventStore
from audifi_kit.settings import Settings

from audifi_coin.application import CoinApplication
from audifi_coin.domain.coin import LIVE, REORG_WINDOW, ArtistCoin

log = logging.getLogger(__name__)

ABIS = {"coin": "ArtistCoin", "pool": "Pool", "staking": "Staking"}
KEEP_BLOCKS = REORG_WINDOW


class CoinLogHandler:
    """The indexer's `LogHandler` for a coin's three contracts."""

    def apply(self, app: CoinApplication, chain_log: ChainLog) -> Sequence[Any]:
        found = app.coin_of_address(chain_log.address)
        if found is None or chain_log.event is None:
            return []
        coin, role = found
        args = dict(chain_log.args)
        if chain_log.event == "Swapped":
            args["baseIn"] = str(args["tokenIn"]).lower() == (coin.address or "").lower()
        changed = coin.apply_log(
            chain_log.key, role, chain_log.event, args, datetime.now(UTC), chain_log.block_number
        )
        return [coin] if changed else []

    def revert(self, app: CoinApplication, chain_log: ChainLog) -> Sequence[Any]:
        found = app.coin_of_address(chain_log.address)
        if found is None:
            return []
        coin, _ = found
        return [coin] if coin.revert_log(chain_log.key, datetime.now(UTC)) else []


def coin_indexer(
    coin: ArtistCoin,
    chain: PlatformChain,
    reader_w3: Any,
    store: EventStore[CoinApplication],
    pool: asyncpg.Pool,
    settings: Settings,
    **options: Any,
) -> ChainIndexer:
    contracts = {
        address: artifact(ABIS[role], settings).abi for role, address in coin.contracts().items()
    }
    assert coin.address is not None and coin.deploy_block is not None
    return ChainIndexer(
        f"coin-{coin.address.lower()}",
        reader_w3,
        store,  # type: ignore[arg-type]
        pool,
        contracts,
        CoinLogHandler(),
        start_block=coin.deploy_block,
        confirmations=settings.chain_confirmations,
        keep_blocks=KEEP_BLOCKS,
        **options,
    )


class CoinIndexers:
    """The running indexers, one per live coin."""

    def __init__(
        self,
        chain: PlatformChain,
        store: EventStore[CoinApplication],
        pool: asyncpg.Pool,
        settings: Settings,
        **options: Any,
    ) -> None:
        self.chain = chain
        self.store = store
        self.pool = pool
        self.settings = settings
        self.options = options
        self.indexers: dict[str, ChainIndexer] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def start_all(self) -> None:
        for artist_id in await self.store.call(self.store.app.coin_artists):
            coin = await self.store.call(self.store.app.coin, artist_id)
            if coin.status == LIVE:
                await self.start(coin)

    def started(self, coin: ArtistCoin) -> None:
        """A coin went live (from a request): its indexer starts in the background."""
        if coin.status == LIVE and coin.artist_id not in self.indexers:
            task = asyncio.get_running_loop().create_task(self.start(coin))
            task.add_done_callback(_log_failure)

    async def start(self, coin: ArtistCoin) -> ChainIndexer:
        existing = self.indexers.get(coin.artist_id)
        if existing is not None:
            return existing
        reader = await self.chain.adapter("coin")
        indexer = coin_indexer(
            coin, self.chain, reader.w3, self.store, self.pool, self.settings, **self.options
        )
        self.indexers[coin.artist_id] = indexer
        await indexer.create_tables()
        self.tasks[coin.artist_id] = asyncio.create_task(
            indexer.run(), name=f"coin indexer {coin.symbol}"
        )
        return indexer

    async def stop(self) -> None:
        for indexer in self.indexers.values():
            indexer.stop()
        for task in self.tasks.values():
            with contextlib.suppress(Exception):
                await task
        self.indexers.clear()
        self.tasks.clear()


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a coin's indexer did not start", exc_info=task.exception())
