"""The ledger's read models: every leg as an entry, and every account's balance.

Both are set-based (`PageProjection`): the ledger is the busiest log of the service, and a
replay must run near the speed of reading it. Each decodes only the fields it reads from
`LedgerTransaction`'s events; a page becomes one or two statements whatever its length.

- `ledger_entries.entries`: one row per leg (the seed's `ledger_entries`, plus the transaction,
  the account and the two-phase status). An entry's id is its leg's ordinal in the ledger
  (1, 2, 3... in log order, legs in their transaction's order), counted by the projection
  rather than drawn from a sequence, whose numbers a rolled-back page would skip: a replay
  gives every entry the id it had, so a cursor a client holds, or a later record naming an
  entry (a payout, an anomaly), still finds it after `audifi replay`.
- `account_balances.balances`: TigerBeetle's four figures per (account, currency), the fold of
  `ledger_verify` kept up to date. The hot accounts' balances (platform fees, Stripe clearing)
  are read from here only; their writers never keep one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec
from audifi_kit.projections import PageEvent, PageProjection, Tagged
from eventsourcing.utils import get_topic

from audifi_payment.domain.accounts import user_of
from audifi_payment.domain.ledger import LedgerTransaction

ENTRIES = "ledger_entries.entries"
BALANCES = "account_balances.balances"

_RECORDED = get_topic(LedgerTransaction.Recorded)
_POSTED = get_topic(LedgerTransaction.Posted)
_STATUS = 9  # the status column's place in a row of `entries`


class _Leg(msgspec.Struct, gc=False):
    account: str
    direction: str
    amount: int
    event_source: str | None = None


class _Recorded(msgspec.Struct):
    timestamp: Tagged
    currency: str
    legs: list[_Leg]
    event_source: str
    reference_id: str | None = None
    reason: str | None = None
    actor: str | None = None
    pending: bool = False
    reverses: Tagged | None = None


class _Settled(msgspec.Struct, gc=False):
    """Posted and Voided: the transaction's id is the event's aggregate; nothing else is read."""


class LedgerEntries(PageProjection):
    name = "ledger_entries"
    version = 1
    fields = {
        LedgerTransaction.Recorded: _Recorded,
        LedgerTransaction.Posted: _Settled,
        LedgerTransaction.Voided: _Settled,
    }

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE entries ("
            " id bigint PRIMARY KEY,"
            " txn_id uuid NOT NULL,"
            " account text NOT NULL,"
            " user_id text,"
            " direction text NOT NULL CHECK (direction IN ('credit', 'debit')),"
            " amount_cents bigint NOT NULL,"
            " currency text NOT NULL,"
            " event_source text NOT NULL,"
            " reference_id text,"
            " status text NOT NULL CHECK (status IN ('posted', 'pending', 'voided')),"
            " reverses uuid,"
            " reason text,"
            " actor text,"
            " created_at timestamptz NOT NULL,"
            " position bigint NOT NULL)"
        )
        await conn.execute(
            "CREATE INDEX entries_of_user ON entries (user_id, created_at, id) "
            "WHERE user_id IS NOT NULL"
        )
        await conn.execute("CREATE INDEX entries_by_created ON entries (created_at, id)")
        await conn.execute("CREATE INDEX entries_of_txn ON entries (txn_id)")
        await conn.execute("CREATE INDEX entries_of_account ON entries (account, created_at, id)")

    async def apply_events(self, conn: asyncpg.Connection, events: list[PageEvent]) -> None:
        rows: list[list] = []
        last_id = 0
        if any(e.topic == _RECORDED for e in events):
            last_id = await conn.fetchval("SELECT coalesce(max(id), 0) FROM entries")
        recorded_here: dict[UUID, list[list]] = {}  # txn -> its rows in this page
        settled: dict[UUID, str] = {}  # txn recorded in an earlier page -> its new status
        for e in events:
            if e.topic == _RECORDED:
                r: _Recorded = e.data
                status = "pending" if r.pending else "posted"
                created_at = datetime.fromisoformat(r.timestamp.data)
                reverses = UUID(r.reverses.data) if r.reverses is not None else None
                txn_rows = recorded_here[e.originator_id] = []
                for leg in r.legs:
                    last_id += 1
                    txn_rows.append(
                        [
                            last_id,
                            e.originator_id,
                            leg.account,
                            user_of(leg.account),
                            leg.direction,
                            leg.amount,
                            r.currency,
                            leg.event_source or r.event_source,
                            r.reference_id,
                            status,
                            reverses,
                            r.reason,
                            r.actor,
                            created_at,
                            e.id,
                        ]
                    )
                rows += txn_rows
                continue
            status = "posted" if e.topic == _POSTED else "voided"
            here = recorded_here.get(e.originator_id)
            if here is None:
                settled[e.originator_id] = status
            else:
                for row in here:
                    row[_STATUS] = status
        if rows:
            columns = list(zip(*rows, strict=True))
            await conn.execute(
                "INSERT INTO entries (id, txn_id, account, user_id, direction, amount_cents, "
                "currency, event_source, reference_id, status, reverses, reason, actor, "
                "created_at, position) SELECT * FROM unnest($1::bigint[], $2::uuid[], "
                "$3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], "
                "$9::text[], $10::text[], $11::uuid[], $12::text[], $13::text[], "
                "$14::timestamptz[], $15::bigint[])",
                *(list(c) for c in columns),
            )
        if settled:
            await conn.execute(
                "UPDATE entries SET status = s.status FROM unnest($1::uuid[], $2::text[]) "
                "AS s(txn_id, status) WHERE entries.txn_id = s.txn_id",
                list(settled),
                list(settled.values()),
            )


# --- balances ---------------------------------------------------------------------------------

# A (account, currency)'s change in a page: debits_posted, credits_posted, debits_pending,
# credits_pending, in the table's column order.
_Delta = list[int]
_Totals = dict[str, tuple[int, int]]  # account -> (debits, credits) of one transaction


def _totals(legs: Iterable[_Leg]) -> _Totals:
    totals: _Totals = {}
    for leg in legs:
        debits, credits = totals.get(leg.account, (0, 0))
        if leg.direction == "debit":
            debits += leg.amount
        else:
            credits += leg.amount
        totals[leg.account] = (debits, credits)
    return totals


class AccountBalances(PageProjection):
    """Balances per (account, currency), as `ledger_verify`'s fold computes them.

    Posted and Voided carry no legs, so the projection keeps the totals of each transaction
    still pending in its own `pending_legs` table (never another view's tables: each view is
    rebuilt on its own) and drops them once it is settled.
    """

    name = "account_balances"
    version = 1
    fields = LedgerEntries.fields

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE balances ("
            " account text NOT NULL,"
            " currency text NOT NULL,"
            " debits_posted bigint NOT NULL,"
            " credits_posted bigint NOT NULL,"
            " debits_pending bigint NOT NULL,"
            " credits_pending bigint NOT NULL,"
            " PRIMARY KEY (account, currency))"
        )
        await conn.execute(
            "CREATE TABLE pending_legs ("
            " txn_id uuid NOT NULL,"
            " account text NOT NULL,"
            " currency text NOT NULL,"
            " debits bigint NOT NULL,"
            " credits bigint NOT NULL,"
            " PRIMARY KEY (txn_id, account))"
        )

    async def apply_events(self, conn: asyncpg.Connection, events: list[PageEvent]) -> None:
        deltas: dict[tuple[str, str], _Delta] = {}

        def move(currency: str, totals: _Totals, posted: int, pending: int) -> None:
            """Add the transaction's totals `posted` times to the posted figures and `pending`
            times to the pending ones."""
            for account, (debits, credits) in totals.items():
                delta = deltas.get((account, currency))
                if delta is None:
                    delta = deltas[(account, currency)] = [0, 0, 0, 0]
                delta[0] += posted * debits
                delta[1] += posted * credits
                delta[2] += pending * debits
                delta[3] += pending * credits

        recorded = {e.originator_id for e in events if e.topic == _RECORDED}
        earlier = [e.originator_id for e in events if e.originator_id not in recorded]
        held = await self._held(conn, earlier) if earlier else {}
        held_here: dict[UUID, tuple[str, _Totals]] = {}  # recorded pending in this page
        for e in events:
            if e.topic == _RECORDED:
                r: _Recorded = e.data
                totals = _totals(r.legs)
                if r.pending:
                    move(r.currency, totals, 0, 1)
                    held_here[e.originator_id] = (r.currency, totals)
                else:
                    move(r.currency, totals, 1, 0)
                continue
            found = held_here.pop(e.originator_id, None) or held.get(e.originator_id)
            if found is None:  # its Recorded was parked: park this one too, visibly
                raise LookupError(f"transaction {e.originator_id} settled but never held")
            currency, totals = found
            move(currency, totals, 1 if e.topic == _POSTED else 0, -1)

        if held:
            await conn.execute(
                "DELETE FROM pending_legs WHERE txn_id = ANY($1::uuid[])", list(held)
            )
        if held_here:
            legs = [
                (txn_id, account, currency, debits, credits)
                for txn_id, (currency, totals) in held_here.items()
                for account, (debits, credits) in totals.items()
            ]
            await conn.execute(
                "INSERT INTO pending_legs SELECT * FROM unnest($1::uuid[], $2::text[], "
                "$3::text[], $4::bigint[], $5::bigint[])",
                *(list(c) for c in zip(*legs, strict=True)),
            )
        if deltas:
            await conn.execute(
                "INSERT INTO balances SELECT * FROM unnest($1::text[], $2::text[], "
                "$3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) "
                "ON CONFLICT (account, currency) DO UPDATE SET "
                "debits_posted = balances.debits_posted + excluded.debits_posted, "
                "credits_posted = balances.credits_posted + excluded.credits_posted, "
                "debits_pending = balances.debits_pending + excluded.debits_pending, "
                "credits_pending = balances.credits_pending + excluded.credits_pending",
                [account for account, _ in deltas],
                [currency for _, currency in deltas],
                *([d[i] for d in deltas.values()] for i in range(4)),
            )

    @staticmethod
    async def _held(
        conn: asyncpg.Connection, txn_ids: list[UUID]
    ) -> dict[UUID, tuple[str, _Totals]]:
        """The totals of transactions recorded pending in earlier pages."""
        held: dict[UUID, tuple[str, _Totals]] = {}
        for r in await conn.fetch(
            "SELECT txn_id, account, currency, debits, credits FROM pending_legs "
            "WHERE txn_id = ANY($1::uuid[])",
            txn_ids,
        ):
            held.setdefault(r["txn_id"], (r["currency"], {}))[1][r["account"]] = (
                r["debits"],
                r["credits"],
            )
        return held
