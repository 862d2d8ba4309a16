"""A poison event for the sample bank's `balances` view, and the view's code once fixed.

PostgreSQL text cannot hold a NUL, so a rename to `"Ada\\x00 Lovelace"` is stored in the log
(as JSON in bytea) but `Balances` cannot apply it: asyncpg raises CharacterNotInRepertoireError,
the failure issue 9 found in auth's accounts view. `ScrubbedBalances` is the deployed fix;
`spec` is the sample service running it (for `audifi` in its own process).
"""

from __future__ import annotations

from uuid import UUID

import asyncpg
from audifi_kit.projections import handles
from audifi_kit.spec import ServiceSpec
from kit_sample import Account, Balances, BalancesCopy, Bank, outbox

POISON = "Ada\x00 Lovelace"


def rename(app: Bank, account_id: UUID, owner: str) -> int:
    """Rename through the aggregate (no API refuses anything here); the event's position."""
    account: Account = app.repository.get(account_id)
    account.rename(owner)
    [recording] = app.save(account)
    return recording.notification.id


class ScrubbedBalances(Balances):
    """`balances` after the fix: a NUL never reaches a text column."""

    @handles(Account.Renamed)
    async def renamed(self, conn: asyncpg.Connection, e: Account.Renamed, _n: object) -> None:
        await conn.execute(
            "UPDATE accounts SET owner = $2, events = events + 1 WHERE id = $1",
            e.originator_id,
            e.owner.replace("\x00", ""),
        )


spec = ServiceSpec(
    name="sample",
    application=Bank,
    projections=(ScrubbedBalances, BalancesCopy),
    outbox=outbox,
)
