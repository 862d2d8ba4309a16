"""The double-entry ledger: balanced transactions in legs, two-phase holds, reversals, guards.

A ledger transaction is a set of legs (account, debit|credit, amount) in ONE currency whose
debits equal its credits, or it is refused; once recorded it never changes, except that a
pending one (a hold) is later posted or voided whole, and a posted one may be reversed once by
a new transaction that swaps every leg. Balances are never written by hand: they are a fold of
the legs (`Balance`), and only a flagged account (a user's balance) has one kept at write time,
in its `AccountGuard`, so that the event store's optimistic concurrency serialises the writers
of that one account and nobody else (TigerBeetle's and Formance's model).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

from audifi_kit.errors import Conflict, NotFound
from audifi_kit.fields import SingleLineText, check
from eventsourcing.domain import Aggregate, event

from audifi_payment.domain.accounts import Balance, flags_for, invalid

MAX_AMOUNT = 2**63  # exclusive: an amount, and a transaction's total, fit a PostgreSQL bigint
MAX_LEGS = 1000
REVERSAL = "reversal"

_SOURCE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_NAMESPACE = UUID("5a1f0c9e-7d0b-4f53-9a57-3c2e6b8d41a0")

ReferenceId = SingleLineText(255, min_length=1)
Reason = SingleLineText(500, min_length=1)
Actor = SingleLineText(128, min_length=1)


class Direction(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class TransactionStatus(StrEnum):
    PENDING = "pending"
    POSTED = "posted"
    VOIDED = "voided"


# --- refusals -----------------------------------------------------------------------------


class InsufficientFunds(Conflict):
    code = "INSUFFICIENT_FUNDS"
    default_message = "The account's balance does not cover this transaction"


class LedgerTransactionNotFound(NotFound):
    code = "LEDGER_TRANSACTION_NOT_FOUND"
    default_message = "No such ledger transaction"


class TransactionNotPending(Conflict):
    code = "TRANSACTION_NOT_PENDING"
    default_message = "Only a pending transaction can be posted or voided"


class TransactionNotPosted(Conflict):
    code = "TRANSACTION_NOT_POSTED"
    default_message = "Only a posted transaction can be reversed"


class TransactionAlreadyReversed(Conflict):
    code = "TRANSACTION_ALREADY_REVERSED"
    default_message = "The transaction has been reversed already"


class TransactionIdTaken(Conflict):
    code = "TRANSACTION_ID_TAKEN"
    default_message = "Another transaction was recorded under this id"


# --- legs and terms -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Leg:
    """One posting. `event_source` defaults to the transaction's; `currency`, when a caller
    gives one per leg, must be the transaction's (a mix is refused, never converted)."""

    account: str
    direction: Direction | str
    amount: int
    event_source: str | None = None
    currency: str | None = None

    def as_stored(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "direction": str(self.direction),
            "amount": self.amount,
            "event_source": self.event_source,
            "currency": self.currency,
        }

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> Leg:
        return cls(
            account=stored["account"],
            direction=Direction(stored["direction"]),
            amount=stored["amount"],
            event_source=stored["event_source"],
            currency=stored["currency"],
        )

    def swapped(self) -> Leg:
        other = Direction.CREDIT if self.direction == Direction.DEBIT else Direction.DEBIT
        return replace(self, direction=other, event_source=REVERSAL)


@dataclass(frozen=True, slots=True)
class Terms:
    """What a transaction says, checked: two records of one id must say exactly this."""

    currency: str
    legs: tuple[Leg, ...]
    event_source: str
    reference_id: str | None = None
    reason: str | None = None
    actor: str | None = None
    pending: bool = False
    reverses: UUID | None = None


def _check_source(value: object, field: str) -> str:
    if not isinstance(value, str) or not _SOURCE.fullmatch(value):
        raise invalid(field, "An event source is lower-case letters, digits and '_'")
    return value


def _check_amount(value: object, field: str) -> int:
    # bool is an int to Python; a float that happens to be whole is still a float.
    if type(value) is not int:
        raise invalid(field, "An amount is a whole number of minor units")
    if not 0 < value < MAX_AMOUNT:
        raise invalid(field, "An amount is greater than 0 and less than 2^63")
    return value


def _check_currency(value: object, field: str) -> str:
    if not isinstance(value, str) or len(value) != 3 or not all("A" <= c <= "Z" for c in value):
        raise invalid(field, "A currency is an ISO 4217 code of three capital letters")
    return value


def terms(
    *,
    currency: object,
    legs: Iterable[Leg],
    event_source: object,
    reference_id: str | None = None,
    reason: str | None = None,
    actor: str | None = None,
    pending: bool = False,
    reverses: UUID | None = None,
) -> Terms:
    """The transaction's terms when it balances in one currency; else ValidationFailed naming
    the field at fault."""
    currency = _check_currency(currency, "currency")
    source = _check_source(event_source, "eventSource")
    if reference_id is not None:
        check(ReferenceId, reference_id, field="referenceId")
    if reason is not None:
        check(Reason, reason, field="reason")
    if actor is not None:
        check(Actor, actor, field="actor")
    if isinstance(legs, str | bytes | Mapping) or not isinstance(legs, Iterable):
        raise invalid("legs", "Legs are a list")
    given = list(legs)
    if not 2 <= len(given) <= MAX_LEGS:
        raise invalid("legs", f"A transaction has 2 to {MAX_LEGS} legs, not {len(given)}")
    checked: list[Leg] = []
    debits = credits = 0
    for i, leg in enumerate(given):
        at = f"legs[{i}]"
        if not isinstance(leg, Leg):
            raise invalid(at, "A leg has an account, a direction and an amount")
        flags_for(leg.account, field=f"{at}.account")
        if leg.direction not in (Direction.DEBIT, Direction.CREDIT):
            raise invalid(f"{at}.direction", "A direction is 'debit' or 'credit'")
        amount = _check_amount(leg.amount, f"{at}.amount")
        if leg.currency is not None and leg.currency != currency:
            raise invalid(
                "legs",
                f"One currency per transaction: {at} is in {leg.currency!r}, "
                f"the transaction in {currency}",
            )
        direction = Direction(leg.direction)
        if direction == Direction.DEBIT:
            debits += amount
        else:
            credits += amount
        leg_source = source if leg.event_source is None else leg.event_source
        checked.append(
            Leg(
                leg.account,
                direction,
                amount,
                _check_source(leg_source, f"{at}.eventSource"),
                currency,
            )
        )
    if debits != credits:
        raise invalid(
            "legs",
            f"Debits ({debits}) and credits ({credits}) differ by {abs(debits - credits)}"
            f" {currency}: a transaction must balance",
        )
    if debits >= MAX_AMOUNT:
        raise invalid("legs", "A transaction moves less than 2^63 minor units")
    return Terms(
        currency=currency,
        legs=tuple(checked),
        event_source=source,
        reference_id=reference_id,
        reason=reason,
        actor=actor,
        pending=bool(pending),
        reverses=reverses,
    )


def totals_by_account(legs: Iterable[Leg]) -> dict[str, tuple[int, int]]:
    """Each account's (debits, credits) in these legs: one account may appear in several."""
    totals: dict[str, tuple[int, int]] = {}
    for leg in legs:
        debits, credits = totals.get(leg.account, (0, 0))
        if leg.direction == Direction.DEBIT:
            debits += leg.amount
        else:
            credits += leg.amount
        totals[leg.account] = (debits, credits)
    return totals


def flagged_totals(legs: Iterable[Leg]) -> dict[str, tuple[int, int]]:
    """The totals of the accounts whose balance must be checked at write time."""
    return {a: t for a, t in totals_by_account(legs).items() if flags_for(a).flagged}


def transaction_id_for(event_source: str, reference: str) -> UUID:
    """A deterministic id for the booking of an outside fact (a Stripe charge, an order): a
    redelivery asks to record the same id, and is answered with the first recording."""
    return uuid5(_NAMESPACE, f"txn|{event_source}|{reference}")


def reversal_id_for(txn_id: UUID) -> UUID:
    """The one id a reversal of `txn_id` can have: two racing reversals collide on it."""
    return uuid5(_NAMESPACE, f"reversal|{txn_id}")


def guard_id(account: str, currency: str) -> UUID:
    return uuid5(_NAMESPACE, f"{account}|{currency}")


# --- aggregates ---------------------------------------------------------------------------


class LedgerTransaction(Aggregate):
    """One balanced transaction. Immutable but for its two-phase status and reversal link."""

    @classmethod
    def open(cls, txn_id: UUID, given: Terms) -> LedgerTransaction:
        return cls(
            id=txn_id,
            currency=given.currency,
            legs=[leg.as_stored() for leg in given.legs],
            event_source=given.event_source,
            reference_id=given.reference_id,
            reason=given.reason,
            actor=given.actor,
            pending=given.pending,
            reverses=given.reverses,
        )

    @event("Recorded")
    def __init__(
        self,
        id: UUID,
        currency: str,
        legs: list[dict[str, Any]],
        event_source: str,
        reference_id: str | None,
        reason: str | None,
        actor: str | None,
        pending: bool,
        reverses: UUID | None,
    ) -> None:
        self.currency = currency
        self.stored_legs = legs
        self.event_source = event_source
        self.reference_id = reference_id
        self.reason = reason
        self.actor = actor
        self.recorded_pending = pending
        self.reverses = reverses
        self.status = TransactionStatus.PENDING if pending else TransactionStatus.POSTED
        self.reversed_by: UUID | None = None

    @property
    def legs(self) -> tuple[Leg, ...]:
        return tuple(Leg.from_stored(s) for s in self.stored_legs)

    @property
    def created_at(self) -> datetime:
        return self.created_on

    @property
    def terms(self) -> Terms:
        return Terms(
            currency=self.currency,
            legs=self.legs,
            event_source=self.event_source,
            reference_id=self.reference_id,
            reason=self.reason,
            actor=self.actor,
            pending=self.recorded_pending,
            reverses=self.reverses,
        )

    def reversal_terms(self, *, reason: str | None, actor: str | None) -> Terms:
        """Every leg swapped: the correction that undoes this transaction's postings."""
        return terms(
            currency=self.currency,
            legs=[leg.swapped() for leg in self.legs],
            event_source=REVERSAL,
            reference_id=self.reference_id,
            reason=reason,
            actor=actor,
            reverses=self.id,
        )

    def post(self) -> None:
        self._require_pending()
        self._posted()

    def void(self) -> None:
        self._require_pending()
        self._voided()

    def mark_reversed(self, by: UUID) -> None:
        if self.reversed_by is not None:
            raise TransactionAlreadyReversed(details={"reversedBy": str(self.reversed_by)})
        if self.status != TransactionStatus.POSTED:
            raise TransactionNotPosted(f"The transaction is {self.status}, not posted")
        self._reversed(by=by)

    def _require_pending(self) -> None:
        if self.status != TransactionStatus.PENDING:
            raise TransactionNotPending(f"The transaction is {self.status}, not pending")

    @event("Posted")
    def _posted(self) -> None:
        self.status = TransactionStatus.POSTED

    @event("Voided")
    def _voided(self) -> None:
        self.status = TransactionStatus.VOIDED

    @event("Reversed")
    def _reversed(self, by: UUID) -> None:
        self.reversed_by = by


class AccountGuard(Aggregate):
    """The balance of one flagged account in one currency, kept at write time.

    Every transaction touching the account appends one event here in the same save as the
    transaction, so two writers of this account conflict on the guard's version and the
    loser re-checks the limit against the winner's balance.
    """

    @event("Opened")
    def __init__(self, id: UUID, account: str, currency: str) -> None:
        self.account = account
        self.currency = currency
        self.debits_pending = 0
        self.debits_posted = 0
        self.credits_pending = 0
        self.credits_posted = 0

    @classmethod
    def open(cls, account: str, currency: str) -> AccountGuard:
        return cls(id=guard_id(account, currency), account=account, currency=currency)

    @property
    def balance(self) -> Balance:
        return Balance(
            self.debits_pending, self.debits_posted, self.credits_pending, self.credits_posted
        )

    def _set(self, balance: Balance) -> None:
        self.debits_pending = balance.debits_pending
        self.debits_posted = balance.debits_posted
        self.credits_pending = balance.credits_pending
        self.credits_posted = balance.credits_posted

    def refusal(self, debits: int, credits: int, *, pending: bool) -> InsufficientFunds | None:
        """The refusal booking these amounts would meet, if any (nothing changes)."""
        after = self.balance.booked(debits, credits, pending=pending)
        if not after.breaks(flags_for(self.account)):
            return None
        return InsufficientFunds(
            f"{self.account} cannot cover this transaction in {self.currency}",
            details={
                "account": self.account,
                "currency": self.currency,
                "available": self.balance.available,
            },
        )

    def book(self, txn_id: UUID, debits: int, credits: int, *, pending: bool) -> None:
        """Post the amounts, or hold them when the transaction is pending, within the limits."""
        refusal = self.refusal(debits, credits, pending=pending)
        if refusal is not None:
            raise refusal
        if pending:
            self._held(txn_id=txn_id, debits=debits, credits=credits)
        else:
            self._booked(txn_id=txn_id, debits=debits, credits=credits)

    # Settling or releasing a hold never needs a check: a held debit already counts against
    # the limit, and a held credit only starts counting once posted.
    def settle_hold(self, txn_id: UUID, debits: int, credits: int) -> None:
        self._hold_posted(txn_id=txn_id, debits=debits, credits=credits)

    def release_hold(self, txn_id: UUID, debits: int, credits: int) -> None:
        self._hold_voided(txn_id=txn_id, debits=debits, credits=credits)

    @event("Booked")
    def _booked(self, txn_id: UUID, debits: int, credits: int) -> None:
        self._set(self.balance.booked(debits, credits, pending=False))

    @event("Held")
    def _held(self, txn_id: UUID, debits: int, credits: int) -> None:
        self._set(self.balance.booked(debits, credits, pending=True))

    @event("HoldPosted")
    def _hold_posted(self, txn_id: UUID, debits: int, credits: int) -> None:
        self._set(self.balance.hold_posted(debits, credits))

    @event("HoldVoided")
    def _hold_voided(self, txn_id: UUID, debits: int, credits: int) -> None:
        self._set(self.balance.hold_voided(debits, credits))


# --- the three moves, on a transaction and the guards of its flagged accounts ---------------


def _guards_for(
    txn: LedgerTransaction, guards: Mapping[str, AccountGuard]
) -> list[tuple[AccountGuard, int, int]]:
    found = []
    for account, (debits, credits) in flagged_totals(txn.legs).items():
        guard = guards[account]
        if guard.account != account or guard.currency != txn.currency:
            raise ValueError(f"{guard.id} is not the guard of {account} in {txn.currency}")
        found.append((guard, debits, credits))
    return found


def book_transaction(txn: LedgerTransaction, guards: Mapping[str, AccountGuard]) -> None:
    """Apply a just-recorded transaction to its guards: every limit is checked before any
    guard changes, so a refusal leaves all of them as they were."""
    moves = _guards_for(txn, guards)
    pending = txn.status == TransactionStatus.PENDING
    for guard, debits, credits in moves:
        refusal = guard.refusal(debits, credits, pending=pending)
        if refusal is not None:
            raise refusal
    for guard, debits, credits in moves:
        guard.book(txn.id, debits, credits, pending=pending)


def post_transaction(txn: LedgerTransaction, guards: Mapping[str, AccountGuard]) -> None:
    """Post a pending transaction whole: its holds become postings."""
    moves = _guards_for(txn, guards)
    txn.post()
    for guard, debits, credits in moves:
        guard.settle_hold(txn.id, debits, credits)


def void_transaction(txn: LedgerTransaction, guards: Mapping[str, AccountGuard]) -> None:
    """Void a pending transaction: its holds are released, nothing is posted."""
    moves = _guards_for(txn, guards)
    txn.void()
    for guard, debits, credits in moves:
        guard.release_hold(txn.id, debits, credits)
