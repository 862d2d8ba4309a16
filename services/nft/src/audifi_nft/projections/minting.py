"""`minting.queue`: every paid allocation and where its mint stands, for the minter (what
waits to be minted) and for artists and admins (`GET /masters/{id}/mints`); withdrawals from
custody too (`reservation_id` "withdrawal:<id>", their own id as `mint_id`).

Status: allocated (paid, no mint requested yet) -> requested -> signed -> minted | failed;
signed -> requested when its transaction was dropped; failed -> requested when re-driven.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from audifi_kit.projections import Projection, handles

from audifi_nft.application import ipo_id_of
from audifi_nft.domain.custody import Withdrawal
from audifi_nft.domain.ipo import Ipo
from audifi_nft.domain.mint import FAILED, MINTED, REQUESTED, SIGNED, Mint, mint_id_of

QUEUE = "minting.queue"


class MintingQueue(Projection):
    name = "minting"
    version = 1

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE queue ("
            " reservation_id text PRIMARY KEY,"
            " mint_id uuid NOT NULL UNIQUE,"
            " ipo_id uuid NOT NULL,"
            " master_id uuid NOT NULL,"
            " account_id text NOT NULL,"
            " quantity bigint NOT NULL,"
            " status text NOT NULL,"
            " allocated_at timestamptz NOT NULL,"
            " to_address text,"
            " custody boolean,"
            " tx_hash text,"
            " attempts integer NOT NULL DEFAULT 0,"
            " error jsonb,"
            " updated_at timestamptz NOT NULL)"
        )
        await conn.execute(
            "CREATE INDEX queue_waiting ON queue (allocated_at) "
            "WHERE status IN ('allocated', 'requested', 'signed')"
        )
        await conn.execute("CREATE INDEX queue_master ON queue (master_id, allocated_at)")

    @handles(Ipo.SharesAllocated)
    async def allocated(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO queue (reservation_id, mint_id, ipo_id, master_id, account_id, "
            "quantity, status, allocated_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, 'allocated', $7, $7) "
            "ON CONFLICT (reservation_id) DO NOTHING",
            e.reservation_id,
            mint_id_of(e.reservation_id),
            e.originator_id,
            UUID(str(e.facts["master_id"])),
            e.facts["buyer_id"],
            e.facts["quantity"],
            e.at,
        )

    @handles(Withdrawal.WithdrawalRequested)
    async def withdrawal(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO queue (reservation_id, mint_id, ipo_id, master_id, account_id, "
            "quantity, status, allocated_at, updated_at, to_address, custody) "
            "VALUES ($1, $2, $3, $4, $5, $6, 'requested', $7, $7, $8, false) "
            "ON CONFLICT (reservation_id) DO NOTHING",
            e.reservation_id,
            e.originator_id,
            ipo_id_of(e.master_id),
            e.master_id,
            e.account_id,
            e.quantity,
            e.at,
            e.to,
        )

    @handles(Withdrawal.Withdrawn)
    async def withdrawn(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await self._set(conn, e, MINTED, tx_hash=e.tx_hash)

    @handles(Mint.Requested)
    async def requested(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE queue SET status = $2, to_address = $3, custody = $4, updated_at = $5 "
            "WHERE mint_id = $1",
            e.originator_id,
            REQUESTED,
            e.to,
            e.custody,
            e.at,
        )

    @handles(Mint.Signed)
    async def signed(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await self._set(conn, e, SIGNED, tx_hash=e.tx_hash, attempt=True)

    @handles(Mint.Minted)
    async def minted(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await self._set(conn, e, MINTED, tx_hash=e.tx_hash)

    @handles(Mint.Failed)
    async def failed(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await self._set(conn, e, FAILED, error=e.error)

    @handles(Mint.Dropped, Mint.Redriven)
    async def again(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await self._set(conn, e, REQUESTED)

    async def _set(
        self,
        conn: asyncpg.Connection,
        e: Any,
        status: str,
        *,
        tx_hash: str | None = None,
        error: dict[str, Any] | None = None,
        attempt: bool = False,
    ) -> None:
        await conn.execute(
            "UPDATE queue SET status = $2, tx_hash = coalesce($3, tx_hash), error = $4::jsonb, "
            "attempts = attempts + $5, updated_at = $6 WHERE mint_id = $1",
            e.originator_id,
            status,
            tx_hash,
            None if error is None else msgspec.json.encode(error).decode(),
            1 if attempt else 0,
            e.at,
        )
