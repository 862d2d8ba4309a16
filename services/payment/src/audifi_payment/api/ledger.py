"""The ledger as the treasury seed shows it.

`GET /ledger/entries?userId=` (a user sees only their own entries; an admin anyone's, or all),
each a leg of a balanced transaction with `amountCents`, `currency`, `type` credit|debit,
`eventSource`, `referenceId`, `createdAt` and its `transactionId`; `POST /ledger/entries` (an
admin's manual adjustment: balanced, with a reason, recorded with the admin's id);
`GET /balances/me`; `POST /admin/override` (an admin's correction: the reversal of a
transaction, with a reason, recorded with the admin's id).
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, Literal, TypeVar
from uuid import UUID

import msgspec
from audifi_kit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from audifi_kit.fields import UuidText
from audifi_kit.http import Identity
from audifi_kit.http.auth import require_roles
from audifi_kit.http.fields import query_parameter
from audifi_kit.http.paging import DEFAULT_LIMIT, PageCursor, PageLimit
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from audifi_payment import queries
from audifi_payment.api.dependencies import (
    IDEMPOTENT,
    PaymentContext,
    is_admin,
    pool,
    provide_payment,
)
from audifi_payment.domain.ledger import Direction, Leg, Reason, ReferenceId
from audifi_payment.domain.values import Currency

MANUAL = "manual_adjustment"
T = TypeVar("T")


class NotYourLedger(Forbidden):
    default_message = "Only an admin may read another user's ledger entries"


class Entry(msgspec.Struct, rename="camel", kw_only=True):
    id: int
    transaction_id: UUID
    user_id: str | None
    account: str
    amount_cents: int
    currency: str
    type: str
    event_source: str
    reference_id: str | None
    status: str
    created_at: datetime


class EntryPage(msgspec.Struct, rename="camel", kw_only=True):
    items: list[Entry]
    next_cursor: str | None


class AdjustmentEntry(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """One leg: `account` (`user:{id}:available`, `platform:adjustments`, ...) debited or
    credited. `currency`, when given, must be the transaction's: currencies never mix."""

    account: Annotated[str, msgspec.Meta(min_length=1, max_length=160)]
    type: Literal["credit", "debit"]
    amount_cents: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)]
    currency: Currency | None = None


class Adjustment(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    currency: Currency
    reason: Reason
    entries: Annotated[list[AdjustmentEntry], msgspec.Meta(min_length=2, max_length=50)]
    reference_id: ReferenceId | None = None


class Recorded(msgspec.Struct, rename="camel", kw_only=True):
    transaction_id: UUID
    currency: str
    entries: list[AdjustmentEntry]
    event_source: str
    reason: str | None
    actor: str | None


class Balance(msgspec.Struct, rename="camel", kw_only=True):
    currency: str
    available_cents: int
    pending_cents: int


class Balances(msgspec.Struct, rename="camel", kw_only=True):
    user_id: str
    balances: list[Balance]


class Override(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """What an admin may override: a transaction, by recording its reversal."""

    action: Literal["reverse_transaction"]
    transaction_id: UUID
    reason: Reason


class OverrideApplied(msgspec.Struct, rename="camel", kw_only=True):
    action: str
    transaction_id: UUID
    reversal_id: UUID
    actor: str
    reason: str


async def _as_entries(call: Awaitable[T]) -> T:
    """The ledger names a transaction's `legs`; this body calls them `entries`: a refusal
    names the field the client sent."""
    try:
        return await call
    except ValidationFailed as exc:
        for field in exc.details.get("fields", []):
            name = field.get("field", "")
            if name.startswith("legs"):
                name = "entries" + name[len("legs") :]
                field["field"] = name.replace(".amount", ".amountCents").replace(
                    ".direction", ".type"
                )
        raise


class LedgerController(Controller):
    path = "/ledger"
    dependencies = {"payment": Provide(provide_payment)}

    @get("/entries", raises=(NotYourLedger,))
    async def entries(
        self,
        state: State,
        identity: NamedDependency[Identity],
        userId: Annotated[
            str | None, query_parameter(UuidText, description="Whose entries (yours by default)")
        ] = None,
        limit: PageLimit = DEFAULT_LIMIT,
        cursor: PageCursor = None,
    ) -> EntryPage:
        """Ledger entries, newest first: the caller's own; an admin's view of anyone's (all
        of them without `userId`)."""
        user = str(UUID(userId)) if userId else None
        if not is_admin(identity):
            if user is not None and user != identity.user_id:
                raise NotYourLedger()
            user = identity.user_id
        page = await queries.ledger_entries(pool(state), user, limit, cursor)
        rows, next_cursor = page.items, page.next_cursor
        return EntryPage(
            items=[msgspec.convert(r, Entry, from_attributes=True) for r in rows],
            next_cursor=next_cursor,
        )

    @post(
        "/entries",
        status_code=201,
        opt=IDEMPOTENT,
        guards=[require_roles("admin")],
        raises=(Conflict,),
    )
    async def adjust(
        self,
        data: JSONBody[Adjustment],
        identity: NamedDependency[Identity],
        payment: NamedDependency[PaymentContext],
    ) -> Recorded:
        """An admin's manual adjustment: one balanced transaction (debits = credits, one
        currency), recorded with the reason and the admin's id; a user's balance never goes
        below zero (409 INSUFFICIENT_FUNDS)."""
        txn_id = await _as_entries(
            payment.store.call(
                payment.app.record,
                currency=data.currency,
                legs=[
                    Leg(
                        e.account,
                        Direction(e.type),
                        e.amount_cents,
                        MANUAL,
                        e.currency.upper() if e.currency else None,
                    )
                    for e in data.entries
                ],
                event_source=MANUAL,
                reference_id=data.reference_id,
                reason=data.reason,
                actor=identity.user_id,
            )
        )
        return Recorded(
            transaction_id=txn_id,
            currency=data.currency.upper(),
            entries=data.entries,
            event_source=MANUAL,
            reason=data.reason,
            actor=identity.user_id,
        )


class BalanceController(Controller):
    path = "/balances"

    @get("/me")
    async def mine(self, state: State, identity: NamedDependency[Identity]) -> Balances:
        """The caller's balances per currency: available and pending, in minor units."""
        rows = await queries.balances_of_user(pool(state), identity.user_id)
        return Balances(
            user_id=identity.user_id,
            balances=[msgspec.convert(r, Balance, from_attributes=True) for r in rows],
        )


class OverrideController(Controller):
    path = "/admin/override"
    dependencies = {"payment": Provide(provide_payment)}

    @post("/", status_code=201, guards=[require_roles("admin")], raises=(NotFound, Conflict))
    async def override(
        self,
        data: JSONBody[Override],
        identity: NamedDependency[Identity],
        payment: NamedDependency[PaymentContext],
    ) -> OverrideApplied:
        """An audited correction: the named transaction reversed (once), with the reason and
        the admin's id on the reversal."""
        reversal = await payment.store.call(
            payment.app.reverse, data.transaction_id, reason=data.reason, actor=identity.user_id
        )
        return OverrideApplied(
            action=data.action,
            transaction_id=data.transaction_id,
            reversal_id=reversal,
            actor=identity.user_id,
            reason=data.reason,
        )
