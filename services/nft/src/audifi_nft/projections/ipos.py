"""`ipos.ipos`: every IPO's state and window, for the IPO clock (what opens or ends now) and,
later, for listings."""

from __future__ import annotations

from typing import Any

import asyncpg
from audifi_kit.projections import Projection, handles

from audifi_nft.domain.ipo import CANCELLED, CLOSED, CONFIGURED, OPEN, Ipo

IPOS = "ipos.ipos"


class Ipos(Projection):
    name = "ipos"
    version = 1

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE ipos ("
            " id uuid PRIMARY KEY,"
            " master_id uuid NOT NULL,"
            " artist_id text NOT NULL,"
            " status text NOT NULL,"
            " cap bigint NOT NULL,"
            " price_cents bigint NOT NULL,"
            " currency text NOT NULL,"
            " opens_at timestamptz NOT NULL,"
            " closes_at timestamptz NOT NULL,"
            " closed_reason text)"
        )
        await conn.execute("CREATE INDEX ipos_due ON ipos (status, opens_at, closes_at)")

    @handles(Ipo.Configured)
    async def configured(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO ipos (id, master_id, artist_id, status, cap, price_cents, currency, "
            "opens_at, closes_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (id) DO NOTHING",
            e.originator_id,
            e.master_id,
            e.artist_id,
            CONFIGURED,
            e.cap,
            e.price_cents,
            e.currency,
            e.opens_at,
            e.closes_at,
        )

    @handles(Ipo.Launched)
    async def launched(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute("UPDATE ipos SET status = $2 WHERE id = $1", e.originator_id, OPEN)

    @handles(Ipo.Closed)
    async def closed(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE ipos SET status = $2, closed_reason = $3 WHERE id = $1",
            e.originator_id,
            CLOSED,
            e.reason,
        )

    @handles(Ipo.Cancelled)
    async def cancelled(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute("UPDATE ipos SET status = $2 WHERE id = $1", e.originator_id, CANCELLED)
