"""Where notify writes: each account's address, known from auth's events, forgotten on erasure.

The address lives only here (never in notify's events), so erasing the row is enough to forget
it; the tombstone keeps anything queued later from going out to an erased account.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from audifi_notify.domain import Recipient, RecipientErased

RECIPIENTS_DDL = (
    "CREATE TABLE IF NOT EXISTS notify_recipients ("
    "account_id text PRIMARY KEY, email text NOT NULL, display_name text, "
    "updated_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE IF NOT EXISTS notify_erased_accounts ("
    "account_id text PRIMARY KEY, erased_at timestamptz NOT NULL)",
)


async def _serialise(conn: asyncpg.Connection, account_id: str) -> None:
    """Holds writes about one account apart until this transaction ends, so an address stored
    while the account is being erased can never outlive the erasure."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('notify:' || $1))", account_id)


class PostgresRecipients:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def remember(self, account_id: str, email: str, display_name: str | None = None) -> None:
        """The account's address from now on (unless it was erased: then nothing is kept)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await _serialise(conn, account_id)
            await conn.execute(
                "INSERT INTO notify_recipients (account_id, email, display_name) "
                "SELECT $1, $2, $3 WHERE NOT EXISTS "
                "(SELECT 1 FROM notify_erased_accounts WHERE account_id = $1) "
                "ON CONFLICT (account_id) DO UPDATE SET email = EXCLUDED.email, "
                "display_name = coalesce(EXCLUDED.display_name, notify_recipients.display_name), "
                "updated_at = now()",
                account_id,
                email,
                display_name,
            )

    async def forget(self, account_id: str, erased_at: datetime) -> None:
        """Deletes the address and leaves the tombstone."""
        async with self.pool.acquire() as conn, conn.transaction():
            await _serialise(conn, account_id)
            await conn.execute("DELETE FROM notify_recipients WHERE account_id = $1", account_id)
            await conn.execute(
                "INSERT INTO notify_erased_accounts (account_id, erased_at) VALUES ($1, $2) "
                "ON CONFLICT DO NOTHING",
                account_id,
                erased_at,
            )

    async def find(self, account_id: str) -> Recipient | None:
        """The account's address; raises RecipientErased for an erased account."""
        row = await self.pool.fetchrow(
            "SELECT r.email, r.display_name, e.account_id IS NOT NULL AS erased "
            "FROM (SELECT $1::text AS account_id) a "
            "LEFT JOIN notify_recipients r ON r.account_id = a.account_id "
            "LEFT JOIN notify_erased_accounts e ON e.account_id = a.account_id",
            account_id,
        )
        if row["erased"]:
            raise RecipientErased(account_id)
        if row["email"] is None:
            return None
        return Recipient(account_id, row["email"], row["display_name"])


class InMemoryRecipients:
    def __init__(self) -> None:
        self.addresses: dict[str, Recipient] = {}
        self.erased: dict[str, datetime] = {}

    async def remember(self, account_id: str, email: str, display_name: str | None = None) -> None:
        if account_id in self.erased:
            return
        known = self.addresses.get(account_id)
        name = display_name if display_name is not None else known and known.display_name
        self.addresses[account_id] = Recipient(account_id, email, name or None)

    async def forget(self, account_id: str, erased_at: datetime) -> None:
        self.addresses.pop(account_id, None)
        self.erased.setdefault(account_id, erased_at)

    async def find(self, account_id: str) -> Recipient | None:
        if account_id in self.erased:
            raise RecipientErased(account_id)
        return self.addresses.get(account_id)
