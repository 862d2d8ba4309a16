"""What the payment service's routes read: its read models (`projections/`), never its log.

Each function takes an asyncpg pool or connection and answers msgspec Structs shaped as the
API answers them (camelCase on the wire), so a controller can return them as they are. A
missing subscription or order is None: the route decides between 404 and 403.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from audifi_kit.paging import DEFAULT_LIMIT, Page, PageQuery, Position, page_of

from audifi_payment.domain.accounts import user_available, user_pending
from audifi_payment.domain.values import invalid
from audifi_payment.projections.billing import SUBSCRIPTIONS, TIERS
from audifi_payment.projections.ledger import BALANCES, ENTRIES
from audifi_payment.projections.orders import LATE_PAYMENTS, ORDERS
from audifi_payment.projections.split_rules import RULES

Db = asyncpg.Connection | asyncpg.Pool

_MAX_ENTRY_ID = 2**63 - 1


class _View(msgspec.Struct, rename="camel", kw_only=True):
    pass


# --- the ledger -----------------------------------------------------------------------------


class LedgerEntry(_View):
    """One leg of a transaction, as the treasury seed shows an entry (plus the transaction,
    the account and the two-phase status)."""

    id: int
    transaction_id: UUID
    account: str
    user_id: str | None
    type: str  # credit | debit
    amount_cents: int
    currency: str
    event_source: str
    reference_id: str | None
    status: str  # posted | pending | voided
    reverses: UUID | None
    reason: str | None
    actor: str | None
    created_at: datetime


class UserBalance(_View):
    """A user's money in one currency, in minor units.

    `available_cents`: what they may spend now (posted credits less posted and held debits of
    their available account). `pending_cents`: what is on its way and not spendable yet: their
    pending account's balance, holds included, plus credits held for their available account.
    """

    currency: str
    available_cents: int
    pending_cents: int


class AccountBalance(_View):
    """One account's figures in one currency (TigerBeetle's four)."""

    account: str
    currency: str
    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0


def _entry(r: asyncpg.Record) -> LedgerEntry:
    return LedgerEntry(
        id=r["id"],
        transaction_id=r["txn_id"],
        account=r["account"],
        user_id=r["user_id"],
        type=r["direction"],
        amount_cents=r["amount_cents"],
        currency=r["currency"],
        event_source=r["event_source"],
        reference_id=r["reference_id"],
        status=r["status"],
        reverses=r["reverses"],
        reason=r["reason"],
        actor=r["actor"],
        created_at=r["created_at"],
    )


def _entry_position(entry: LedgerEntry) -> Position:
    # The cursor's 16-byte id carries the entry's (bigint) id; big-endian, so ordered alike.
    return Position(entry.created_at, UUID(int=entry.id))


async def ledger_entries(
    db: Db,
    user_id: str | None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    *,
    newest_first: bool = True,
) -> Page[LedgerEntry]:
    """A page of ledger entries, newest first: the user's own (the legs on their balances),
    or every entry when `user_id` is None (an admin's view). ValidationFailed naming `limit`
    or `cursor` when either is refused."""
    query = PageQuery.parse(limit, cursor, newest_first=newest_first)
    # Two statements rather than `$1 IS NULL OR ...`, which would keep a generic plan off
    # the per-user index.
    mine, first_arg = ("user_id = $1 AND ", 2) if user_id is not None else ("", 1)
    condition, order, args = query.sql("created_at", "id", first_arg=first_arg)
    if query.after is not None:
        after_id = query.after.id.int
        if after_id > _MAX_ENTRY_ID:
            raise invalid("cursor", "The cursor names no ledger entry")
        args[1] = after_id
    rows = await db.fetch(
        f"SELECT * FROM {ENTRIES} WHERE {mine}{condition} {order}",
        *([user_id] if user_id is not None else []),
        *args,
    )
    return page_of([_entry(r) for r in rows], query, _entry_position)


async def balances_of_user(db: Db, user_id: str) -> list[UserBalance]:
    """The user's available and pending money per currency (`GET /balances/me`), currencies
    in alphabetical order; none before their first entry."""
    rows = await db.fetch(
        f"SELECT currency, "
        "sum(CASE WHEN account = $1 THEN credits_posted - debits_posted - debits_pending "
        "ELSE 0 END)::bigint AS available_cents, "
        "sum(CASE WHEN account = $1 THEN credits_pending ELSE credits_posted + credits_pending "
        "- debits_posted - debits_pending END)::bigint AS pending_cents "
        f"FROM {BALANCES} WHERE account IN ($1, $2) GROUP BY currency ORDER BY currency",
        user_available(user_id),
        user_pending(user_id),
    )
    return [UserBalance(**dict(r)) for r in rows]


async def account_balance(db: Db, account: str, currency: str) -> AccountBalance:
    """Any account's balance, a hot one's included; zeros before its first posting."""
    row = await db.fetchrow(
        f"SELECT * FROM {BALANCES} WHERE account = $1 AND currency = $2", account, currency
    )
    return (
        AccountBalance(**dict(row)) if row else AccountBalance(account=account, currency=currency)
    )


# --- split rules ----------------------------------------------------------------------------


class SplitRecipient(_View):
    recipient_id: str
    basis_points: int


class SplitRuleView(_View):
    id: UUID
    owner_id: str
    name: str
    recipients: list[SplitRecipient]
    is_default: bool
    created_at: datetime
    updated_at: datetime


def _rule(r: asyncpg.Record) -> SplitRuleView:
    fields = dict(r)
    # Stored in the projection's snake_case; the Struct reads its camelCase names.
    fields["recipients"] = [
        SplitRecipient(recipient_id=x["recipient_id"], basis_points=x["basis_points"])
        for x in msgspec.json.decode(r["recipients"])
    ]
    return SplitRuleView(**fields)


async def split_rules_of(db: Db, owner_id: str) -> list[SplitRuleView]:
    """The owner's rules, oldest first."""
    rows = await db.fetch(
        f"SELECT * FROM {RULES} WHERE owner_id = $1 ORDER BY created_at, id", owner_id
    )
    return [_rule(r) for r in rows]


async def split_rule(db: Db, rule_id: UUID) -> SplitRuleView | None:
    row = await db.fetchrow(f"SELECT * FROM {RULES} WHERE id = $1", rule_id)
    return _rule(row) if row else None


# --- tiers and subscriptions ------------------------------------------------------------------


class TierView(_View):
    id: UUID
    artist_id: str
    name: str
    price_cents: int
    currency: str
    interval: str
    archived: bool
    created_at: datetime
    archived_at: datetime | None


async def tiers(db: Db, artist_id: str | None = None) -> list[TierView]:
    """The artist's tiers (every artist's when None), oldest first; an archived one is listed,
    marked (existing subscribers keep it; nobody new may subscribe)."""
    rows = await db.fetch(
        f"SELECT * FROM {TIERS} WHERE ($1::text IS NULL OR artist_id = $1) ORDER BY created_at, id",
        artist_id,
    )
    return [TierView(**dict(r)) for r in rows]


class SubscriptionView(_View):
    id: UUID
    fan_id: str
    artist_id: str
    tier_id: UUID
    price_cents: int
    currency: str
    interval: str
    status: str  # incomplete | active | past_due | canceled | incomplete_expired
    current_period_end: datetime | None
    cancel_at_period_end: bool
    opened_at: datetime
    started_at: datetime | None
    canceled_at: datetime | None
    stripe_subscription_id: str | None
    stripe_customer_id: str | None


async def subscriptions_of(db: Db, fan_id: str) -> list[SubscriptionView]:
    """Every subscription the fan opened, oldest first."""
    rows = await db.fetch(
        f"SELECT * FROM {SUBSCRIPTIONS} WHERE fan_id = $1 ORDER BY opened_at, id", fan_id
    )
    return [SubscriptionView(**dict(r)) for r in rows]


async def subscription(db: Db, subscription_id: UUID) -> SubscriptionView | None:
    row = await db.fetchrow(f"SELECT * FROM {SUBSCRIPTIONS} WHERE id = $1", subscription_id)
    return SubscriptionView(**dict(row)) if row else None


# --- orders -----------------------------------------------------------------------------------


class LatePaymentView(_View):
    """A payment that came when the order could no longer take it: refunded, or owed one."""

    payment_intent_id: str
    amount: int
    currency: str
    reason: str  # expired | failed | paid_already | amount_mismatch
    received_at: datetime
    refund_id: str | None
    refunded_at: datetime | None
    refund_transaction_id: UUID | None


class OrderView(_View):
    id: UUID
    product_service: str
    product_kind: str
    product_reference: str
    title: str
    quantity: int
    unit_amount: int
    total: int
    currency: str
    buyer_id: str
    seller_id: str
    status: str  # open | checkout_started | paid | expired | failed
    expires_at: datetime
    opened_at: datetime
    checkout_session_id: str | None
    paid_at: datetime | None
    payment_intent_id: str | None
    ledger_transaction_id: UUID | None
    closed_at: datetime | None
    failure_reason: str | None
    refund_status: str | None  # None | refund_due | refunded
    late_payments: list[LatePaymentView]


async def order(db: Db, order_id: UUID) -> OrderView | None:
    row = await db.fetchrow(f"SELECT * FROM {ORDERS} WHERE id = $1", order_id)
    if row is None:
        return None
    late = [
        LatePaymentView(**_without(r, "order_id"))
        for r in await db.fetch(
            f"SELECT * FROM {LATE_PAYMENTS} WHERE order_id = $1 "
            "ORDER BY received_at, payment_intent_id",
            order_id,
        )
    ]
    refund_status = None
    if late:
        refund_status = "refund_due" if any(p.refund_id is None for p in late) else "refunded"
    return OrderView(**dict(row), refund_status=refund_status, late_payments=late)


def _without(record: asyncpg.Record, *names: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in names}
