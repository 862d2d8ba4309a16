"""`accounts.accounts`: who each account is, for /users/me and the admin listing.

The e-mail and display name arrive opened by the event store's mapper; after erasure (and in
any replay after it) the mapper yields None for them, and the erasure handler clears the row.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from audifi_kit.projections import Projection, handles

from audifi_auth.domain.account import Account


class Accounts(Projection):
    name = "accounts"
    version = 1

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE accounts ("
            " id uuid PRIMARY KEY,"
            " email text,"
            " display_name text,"
            " roles text[] NOT NULL,"
            " wallets text[] NOT NULL DEFAULT '{}',"
            " two_factor boolean NOT NULL DEFAULT false,"
            " erased boolean NOT NULL DEFAULT false,"
            " created_at timestamptz NOT NULL)"
        )
        await conn.execute("CREATE INDEX accounts_created ON accounts (created_at, id)")

    @handles(Account.Registered)
    async def registered(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        wallets = [e.wallet_address] if e.wallet_address else []
        await conn.execute(
            "INSERT INTO accounts (id, email, roles, wallets, created_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            e.originator_id,
            e.email,
            list(e.roles),
            wallets,
            e.registered_at,
        )

    @handles(Account.RoleGranted)
    async def role_granted(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE accounts SET roles = array_append(roles, $2) "
            "WHERE id = $1 AND NOT ($2 = ANY(roles))",
            e.originator_id,
            e.role,
        )

    @handles(Account.DisplayNameSet)
    async def display_name_set(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE accounts SET display_name = $2 WHERE id = $1", e.originator_id, e.display_name
        )

    @handles(Account.WalletLinked)
    async def wallet_linked(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        if e.wallet_address is None:
            return
        await conn.execute(
            "UPDATE accounts SET wallets = array_append(wallets, $2) WHERE id = $1",
            e.originator_id,
            e.wallet_address,
        )

    @handles(Account.TwoFactorEnabled)
    async def two_factor_enabled(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute("UPDATE accounts SET two_factor = true WHERE id = $1", e.originator_id)

    @handles(Account.Erased)
    async def erased(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE accounts SET email = NULL, display_name = NULL, wallets = '{}', "
            "two_factor = false, erased = true WHERE id = $1",
            e.originator_id,
        )
