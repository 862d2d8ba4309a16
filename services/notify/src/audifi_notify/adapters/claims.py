"""Which sender process makes which delivery attempt, so replicas never send one mail twice.

A claim is per (notification, attempt) and expires: an attempt a crashed process claimed is
taken over after the lease.
"""

from __future__ import annotations

import time
from uuid import UUID

import asyncpg

CLAIMS_DDL = (
    "CREATE TABLE IF NOT EXISTS notify_delivery_claims ("
    "notification_id uuid NOT NULL, attempt integer NOT NULL, "
    "claimed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (notification_id, attempt))",
)


class PostgresClaims:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def claim(self, notification_id: UUID, attempt: int, lease: float) -> bool:
        return bool(
            await self.pool.fetchval(
                "INSERT INTO notify_delivery_claims (notification_id, attempt) VALUES ($1, $2) "
                "ON CONFLICT (notification_id, attempt) DO UPDATE SET claimed_at = now() "
                "WHERE notify_delivery_claims.claimed_at < now() - make_interval(secs => $3) "
                "RETURNING true",
                notification_id,
                attempt,
                lease,
            )
        )


class InMemoryClaims:
    def __init__(self) -> None:
        self.claimed: dict[tuple[UUID, int], float] = {}

    async def claim(self, notification_id: UUID, attempt: int, lease: float) -> bool:
        now = time.monotonic()
        claimed_at = self.claimed.get((notification_id, attempt))
        if claimed_at is not None and claimed_at >= now - lease:
            return False
        self.claimed[(notification_id, attempt)] = now
        return True
