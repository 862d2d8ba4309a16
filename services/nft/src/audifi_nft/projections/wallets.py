"""`wallets.owners`: which account linked each EVM wallet (the newest link wins), from nft's
record of auth's wallet links: whose line a holder's address is, and whom to tell that a
distribution owes them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from audifi_kit.projections import Projection, handles

from audifi_nft.domain.wallets import AccountWallets

OWNERS = "wallets.owners"


class WalletOwners(Projection):
    name = "wallets"
    version = 1

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE owners ("
            " address text PRIMARY KEY,"  # checksummed
            " account_id text NOT NULL,"
            " linked_at timestamptz NOT NULL)"
        )

    @handles(AccountWallets.Linked)
    async def linked(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO owners (address, account_id, linked_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (address) DO UPDATE SET account_id = excluded.account_id, "
            "linked_at = excluded.linked_at WHERE owners.linked_at <= excluded.linked_at",
            e.address,
            e.account_id,
            e.at,
        )


async def owners_of(pool: asyncpg.Pool, addresses: Sequence[str]) -> Mapping[str, str]:
    """address -> account id, for the addresses some account linked."""
    rows = await pool.fetch(
        f"SELECT address, account_id FROM {OWNERS} WHERE address = ANY($1::text[])",
        list(addresses),
    )
    return {r["address"]: r["account_id"] for r in rows}
