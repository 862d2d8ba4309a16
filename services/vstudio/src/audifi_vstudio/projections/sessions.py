"""`sessions`: V Studio sessions as a master's list shows them, and their decisions' states
(`DECISIONS_DUE`: the open ones whose `closesAt` came, for the clock).

A session's or decision's details are read from its aggregate, never from here: results are
exact there."""

from __future__ import annotations

from typing import Any

import asyncpg
from audifi_kit.projections import Projection, handles

from audifi_vstudio.domain.session import CLOSED, LOCKED, OPEN, Decision, StudioSession

SESSIONS = "sessions.sessions"
DECISIONS = "sessions.decisions"
DECISIONS_DUE = (
    f"SELECT id FROM {DECISIONS} WHERE status = '{OPEN}' AND closes_at <= $1 "
    "ORDER BY closes_at LIMIT 100"
)


class Sessions(Projection):
    name = "sessions"
    version = 1

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE sessions ("
            " id uuid PRIMARY KEY,"
            " master_id uuid NOT NULL,"
            " artist_id text NOT NULL,"
            " title text NOT NULL,"
            " status text NOT NULL,"
            " scheduled_start timestamptz,"
            " created_at timestamptz NOT NULL,"
            " decisions integer NOT NULL DEFAULT 0,"
            " open_decisions integer NOT NULL DEFAULT 0,"
            " locked_at timestamptz)"
        )
        await conn.execute("CREATE INDEX sessions_of ON sessions (master_id, created_at, id)")
        await conn.execute(
            "CREATE TABLE decisions ("
            " id uuid PRIMARY KEY,"
            " session_id uuid NOT NULL,"
            " status text NOT NULL,"
            " closes_at timestamptz)"
        )
        await conn.execute(
            f"CREATE INDEX decisions_due ON decisions (closes_at) WHERE status = '{OPEN}'"
        )

    @handles(StudioSession.Created)
    async def created(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO sessions (id, master_id, artist_id, title, status, scheduled_start, "
            "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
            e.originator_id,
            e.master_id,
            e.artist_id,
            e.title,
            OPEN,
            e.scheduled_start,
            e.at,
        )

    @handles(StudioSession.Locked)
    async def locked(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE sessions SET status = $2, locked_at = $3 WHERE id = $1",
            e.originator_id,
            LOCKED,
            e.at,
        )

    @handles(Decision.Opened)
    async def opened(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        inserted = await conn.fetchval(
            "INSERT INTO decisions (id, session_id, status, closes_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (id) DO NOTHING RETURNING true",
            e.originator_id,
            e.session_id,
            OPEN,
            e.closes_at,
        )
        if inserted:
            await conn.execute(
                "UPDATE sessions SET decisions = decisions + 1, "
                "open_decisions = open_decisions + 1 WHERE id = $1",
                e.session_id,
            )

    @handles(Decision.Closed)
    async def closed(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        session_id = await conn.fetchval(
            "UPDATE decisions SET status = $2 WHERE id = $1 AND status <> $2 RETURNING session_id",
            e.originator_id,
            CLOSED,
        )
        if session_id is not None:
            await conn.execute(
                "UPDATE sessions SET open_decisions = open_decisions - 1 WHERE id = $1",
                session_id,
            )
