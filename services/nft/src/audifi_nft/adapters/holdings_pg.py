"""The `HoldingsSnapshot` port on the holdings view: a collection's holders as the view shows
them, at the last block the chain indexer has applied.

Wallets are the addresses holding shares other than the platform's custody address; what the
custody address holds is split per buyer (`holdings.custody`). The view applies the indexer's
events a moment after they are saved: a snapshot taken right after a transfer may not see it
yet, and says so only through its block (the indexer's, so possibly later than what the view
shows). Holdings move rarely compared with how often distributions are triggered, and a
trigger is an admin's deliberate act.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
from audifi_kit.chain.indexer import BLOCKS_TABLE

from audifi_nft.distributions import Holders
from audifi_nft.holdings import INDEXER_NAME
from audifi_nft.projections.holdings import BALANCES, CUSTODY
from audifi_nft.projections.wallets import owners_of


class ViewHoldings:
    def __init__(self, pool: asyncpg.Pool, custody_address: str) -> None:
        self.pool = pool
        self.custody_address = custody_address

    async def holders(self, master_id: UUID) -> Holders:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            block = await conn.fetchval(
                f"SELECT max(number) FROM {BLOCKS_TABLE} WHERE indexer = $1", INDEXER_NAME
            )
            wallets = await conn.fetch(
                f"SELECT address, amount FROM {BALANCES} WHERE master_id = $1 AND address <> $2",
                master_id,
                self.custody_address,
            )
            custody = await conn.fetch(
                f"SELECT account_id, amount FROM {CUSTODY} WHERE master_id = $1", master_id
            )
        return Holders(
            block=int(block or 0),
            wallets={r["address"]: int(r["amount"]) for r in wallets},
            custody={r["account_id"]: int(r["amount"]) for r in custody},
        )

    async def owners(self, addresses: list[str]) -> dict[str, str]:
        return dict(await owners_of(self.pool, addresses))
