"""`distributions`: every distribution (dividends of a master, months of the Revenue Pass) as
clients read it, its Merkle leaves with their claims, and what custody holders are owed.

Tables (schema `distributions`):

- `distributions`: one row per distribution (one per master and month), from `Declared`;
  `Snapshotted` adds the supply, the holder count, what a share is owed (`per_share`), the
  tree's total (`funded`: what wallet holders claim on chain), custody holders' total and the
  rounding `remainder`; `Funded` its on-chain id, funding transaction and expiry; claims keep
  `claimed_count` and `claimed` (their total) in step.
- `leaves`: the wallet holders' leaves (index, checksummed account, amount), from
  `Snapshotted`; a `Claimed` log marks its leaf (transaction, block, when recorded), a
  `ClaimReverted` (its block left the chain) unmarks it.
- `custody`: per account, what a distribution owes the shares the platform holds for it
  (paid into the platform balance, not claimed on chain).

Cents (`total_revenue`, `distribution_amount`) fit a bigint; amounts in the payment token's
base units do not always (10^15 cents are 10^19 base units), so they are numeric.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
from audifi_kit.projections import Projection, handles

from audifi_nft.domain.chain_payment import CENTS_TO_BASE_UNITS
from audifi_nft.domain.revenue import Distribution

DISTRIBUTIONS = "distributions.distributions"
LEAVES = "distributions.leaves"
CUSTODY = "distributions.custody"


class Distributions(Projection):
    name = "distributions"
    version = 1

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE distributions ("
            " id uuid PRIMARY KEY,"
            " master_id uuid NOT NULL,"
            " collection text NOT NULL,"
            " title text NOT NULL,"
            " month text NOT NULL,"
            " status text NOT NULL,"
            " currency text NOT NULL,"
            " total_revenue bigint NOT NULL,"  # cents
            " distribution_bps integer NOT NULL,"
            " distribution_amount bigint NOT NULL,"  # cents
            " sources jsonb NOT NULL,"
            " declared_by text NOT NULL,"
            " declared_at timestamptz NOT NULL,"
            " block bigint,"
            " supply bigint NOT NULL DEFAULT 0,"
            " holders integer NOT NULL DEFAULT 0,"
            " per_share numeric NOT NULL DEFAULT 0,"  # base units from here on
            " funded numeric NOT NULL DEFAULT 0,"
            " custody numeric NOT NULL DEFAULT 0,"
            " remainder numeric NOT NULL DEFAULT 0,"
            " merkle_root text,"
            " snapshotted_at timestamptz,"
            " chain_distribution_id bigint,"
            " funding_tx text,"
            " funded_at timestamptz,"
            " expires_at timestamptz,"
            " claimed_count integer NOT NULL DEFAULT 0,"
            " claimed numeric NOT NULL DEFAULT 0,"
            " UNIQUE (master_id, month))"
        )
        await conn.execute(
            "CREATE TABLE leaves ("
            " distribution_id uuid NOT NULL,"
            " idx bigint NOT NULL,"
            " account text NOT NULL,"  # checksummed
            " amount numeric NOT NULL,"
            " claimed_tx text,"
            " claimed_block bigint,"
            " claimed_at timestamptz,"
            " PRIMARY KEY (distribution_id, idx))"
        )
        await conn.execute("CREATE INDEX leaves_of_account ON leaves (account)")
        await conn.execute(
            "CREATE TABLE custody ("
            " distribution_id uuid NOT NULL,"
            " account_id text NOT NULL,"
            " amount numeric NOT NULL,"
            " PRIMARY KEY (distribution_id, account_id))"
        )

    @handles(Distribution.Declared)
    async def declared(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO distributions (id, master_id, collection, title, month, status, "
            "currency, total_revenue, distribution_bps, distribution_amount, sources, "
            "declared_by, declared_at) "
            "VALUES ($1, $2, $3, $4, $5, 'declared', $6, $7, $8, $9, $10::jsonb, $11, $12) "
            "ON CONFLICT (id) DO NOTHING",
            e.originator_id,
            e.master_id,
            e.collection,
            e.title,
            e.month,
            e.currency,
            e.total_revenue,
            e.bps,
            e.distribution_amount,
            msgspec.json.encode(e.sources).decode(),
            e.declared_by,
            e.at,
        )

    @handles(Distribution.Snapshotted)
    async def snapshotted(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        leaves = [(int(i), str(a), int(n)) for i, a, n in e.leaves]
        await conn.execute(
            "UPDATE distributions SET block = $2, supply = $3::bigint, holders = $4, "
            "per_share = CASE WHEN $3::bigint > 0 "
            "THEN div(distribution_amount::numeric * $5::bigint, $3::bigint) ELSE 0 END, "
            "funded = $6::text::numeric, custody = $7::text::numeric, "
            "remainder = $8::text::numeric, merkle_root = $9, snapshotted_at = $10 "
            "WHERE id = $1",
            e.originator_id,
            e.block,
            e.supply,
            len(e.wallet_amounts) + len(e.custody_amounts),
            CENTS_TO_BASE_UNITS,
            str(sum(n for _, _, n in leaves)),
            str(sum(e.custody_amounts.values())),
            str(e.remainder),
            e.root,
            e.at,
        )
        if leaves:
            await conn.execute(
                "INSERT INTO leaves (distribution_id, idx, account, amount) "
                "SELECT $1, i, a, n::numeric FROM unnest($2::bigint[], $3::text[], $4::text[]) "
                "AS l(i, a, n) ON CONFLICT DO NOTHING",
                e.originator_id,
                [i for i, _, _ in leaves],
                [a for _, a, _ in leaves],
                [str(n) for _, _, n in leaves],
            )
        if e.custody_amounts:
            owed = sorted(e.custody_amounts.items())
            await conn.execute(
                "INSERT INTO custody (distribution_id, account_id, amount) "
                "SELECT $1, a, n::numeric FROM unnest($2::text[], $3::text[]) AS c(a, n) "
                "ON CONFLICT DO NOTHING",
                e.originator_id,
                [a for a, _ in owed],
                [str(n) for _, n in owed],
            )

    @handles(Distribution.Funded)
    async def funded(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE distributions SET status = 'funded', chain_distribution_id = $2, "
            "funding_tx = $3, expires_at = $4, funded_at = $5 WHERE id = $1",
            e.originator_id,
            e.chain_distribution_id,
            e.tx_hash,
            e.expires_at,
            e.at,
        )

    @handles(Distribution.Swept)
    async def swept(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE distributions SET status = 'swept' WHERE id = $1", e.originator_id
        )

    @handles(Distribution.Claimed)
    async def claimed(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        amount = await conn.fetchval(
            "UPDATE leaves SET claimed_tx = $3, claimed_block = $4, claimed_at = $5 "
            "WHERE distribution_id = $1 AND idx = $2 AND claimed_tx IS NULL RETURNING amount",
            e.originator_id,
            e.index,
            e.tx_hash,
            e.block,
            e.at,
        )
        if amount is not None:  # the contract pays a leaf's own amount, once
            await conn.execute(
                "UPDATE distributions SET claimed_count = claimed_count + 1, "
                "claimed = claimed + $2 WHERE id = $1",
                e.originator_id,
                amount,
            )

    @handles(Distribution.ClaimReverted)
    async def claim_reverted(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        amount = await conn.fetchval(
            "UPDATE leaves SET claimed_tx = NULL, claimed_block = NULL, claimed_at = NULL "
            "WHERE distribution_id = $1 AND idx = $2 AND claimed_tx = $3 RETURNING amount",
            e.originator_id,
            e.index,
            e.tx_hash,
        )
        if amount is not None:
            await conn.execute(
                "UPDATE distributions SET claimed_count = claimed_count - 1, "
                "claimed = claimed - $2 WHERE id = $1",
                e.originator_id,
                amount,
            )
