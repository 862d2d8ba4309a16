"""Magic links waiting to be sent, still sealed, kept beside the events and never in them.

A link is only readable with notify's private key, and only until its mail is sent, failed or
abandoned: then the row is deleted. Keeping it out of the event store means no replay, history
or backup of the events ever holds a usable sign-in link.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

SEALED_LINKS_DDL = (
    "CREATE TABLE IF NOT EXISTS notify_sealed_links ("
    "notification_id uuid PRIMARY KEY, account_id text NOT NULL, sealed_link text NOT NULL, "
    "seal_key_id text NOT NULL)",
)


class PostgresSealedLinks:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def keep(
        self, notification_id: UUID, account_id: str, sealed_link: str, seal_key_id: str
    ) -> None:
        await self.pool.execute(
            "INSERT INTO notify_sealed_links VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            notification_id,
            account_id,
            sealed_link,
            seal_key_id,
        )

    async def find(self, notification_id: UUID) -> tuple[str, str] | None:
        """(sealed link, seal key id) of a pending magic-link mail."""
        row = await self.pool.fetchrow(
            "SELECT sealed_link, seal_key_id FROM notify_sealed_links WHERE notification_id = $1",
            notification_id,
        )
        return None if row is None else (row["sealed_link"], row["seal_key_id"])

    async def discard(self, notification_id: UUID) -> None:
        await self.pool.execute(
            "DELETE FROM notify_sealed_links WHERE notification_id = $1", notification_id
        )

    async def discard_for_account(self, account_id: str) -> None:
        await self.pool.execute("DELETE FROM notify_sealed_links WHERE account_id = $1", account_id)


class InMemorySealedLinks:
    def __init__(self) -> None:
        self.links: dict[UUID, tuple[str, str, str]] = {}  # id -> (account, link, key id)

    async def keep(
        self, notification_id: UUID, account_id: str, sealed_link: str, seal_key_id: str
    ) -> None:
        self.links.setdefault(notification_id, (account_id, sealed_link, seal_key_id))

    async def find(self, notification_id: UUID) -> tuple[str, str] | None:
        found = self.links.get(notification_id)
        return None if found is None else (found[1], found[2])

    async def discard(self, notification_id: UUID) -> None:
        self.links.pop(notification_id, None)

    async def discard_for_account(self, account_id: str) -> None:
        for notification_id, (owner, _, _) in list(self.links.items()):
            if owner == account_id:
                del self.links[notification_id]
