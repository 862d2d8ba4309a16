"""`sessions.sessions`: each account's sign-in sessions and whether they still run."""

from __future__ import annotations

from typing import Any

import asyncpg
from audifi_kit.projections import Projection, handles

from audifi_auth.domain.session import Session


class Sessions(Projection):
    name = "sessions"
    version = 1

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE sessions ("
            " id uuid PRIMARY KEY,"
            " account_id uuid NOT NULL,"
            " method text NOT NULL,"
            " started_at timestamptz NOT NULL,"
            " expires_at timestamptz NOT NULL,"
            " refreshed_at timestamptz,"
            " revoked_at timestamptz,"
            " revoke_reason text)"
        )
        await conn.execute("CREATE INDEX sessions_account ON sessions (account_id)")

    @handles(Session.Started)
    async def started(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO sessions (id, account_id, method, started_at, expires_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            e.originator_id,
            e.account_id,
            e.method,
            e.started_at,
            e.expires_at,
        )

    @handles(Session.RefreshTokenRotated)
    async def rotated(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE sessions SET refreshed_at = $2 WHERE id = $1", e.originator_id, e.rotated_at
        )

    @handles(Session.Revoked)
    async def revoked(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE sessions SET revoked_at = $2, revoke_reason = $3 WHERE id = $1",
            e.originator_id,
            e.revoked_at,
            e.reason,
        )
