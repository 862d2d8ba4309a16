"""The ledger's invariant check (`audifi ledger verify`): replays the log and proves it sound.

Independent of the write path on purpose: it trusts no balance the application kept, folds
the legs itself in log order (two-phase aware) and proves that every transaction balanced in
one currency, that no flagged account was beyond its limit at ANY point of the log, and that
every reversal undid exactly one posted, not yet reversed transaction. The same fold gives the
balances per (account, currency) that the projections show; `verify_application` also holds
them against the guards the application kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from audifi_kit.errors import ValidationFailed

from audifi_payment.domain.accounts import ZERO, AccountFlags, Balance, flags_for
from audifi_payment.domain.ledger import (
    MAX_AMOUNT,
    AccountGuard,
    Direction,
    LedgerTransaction,
    Leg,
    TransactionStatus,
    totals_by_account,
)

PAGE = 500


# --- the facts: a transaction's life as the log tells it -----------------------------------


@dataclass(frozen=True, slots=True)
class Recorded:
    txn_id: UUID
    currency: str
    legs: tuple[Leg, ...]
    pending: bool = False
    reverses: UUID | None = None
    position: int | None = None


@dataclass(frozen=True, slots=True)
class Posted:
    txn_id: UUID
    position: int | None = None


@dataclass(frozen=True, slots=True)
class Voided:
    txn_id: UUID
    position: int | None = None


@dataclass(frozen=True, slots=True)
class ReversalLinked:
    """The reversed transaction's side of a reversal: `txn_id` was reversed `by`."""

    txn_id: UUID
    by: UUID
    position: int | None = None


TransactionFacts = Recorded | Posted | Voided | ReversalLinked


@dataclass(frozen=True, slots=True)
class Problem:
    txn_id: UUID | None
    position: int | None
    message: str

    def __str__(self) -> str:
        at = f"#{self.position} " if self.position is not None else ""
        return f"{at}{self.txn_id}: {self.message}"


@dataclass(slots=True)
class VerifyReport:
    transactions: int
    problems: list[Problem]
    balances: dict[tuple[str, str], Balance]

    @property
    def ok(self) -> bool:
        return not self.problems


# --- the fold ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Txn:
    currency: str
    totals: dict[str, tuple[int, int]]
    status: TransactionStatus


@dataclass(slots=True)
class LedgerFold:
    """Balances per (account, currency) from the facts in log order, and what broke a rule.

    `apply` takes one fact and returns the problems it shows; the balances move as the legs
    say even then, so one broken transaction does not hide what follows it.
    """

    balances: dict[tuple[str, str], Balance] = field(default_factory=dict)
    transactions: dict[UUID, _Txn] = field(default_factory=dict)
    reversed_by: dict[UUID, UUID] = field(default_factory=dict)  # from reversals recorded
    linked: dict[UUID, UUID] = field(default_factory=dict)  # from the reversed side's link

    def apply(self, fact: TransactionFacts) -> list[Problem]:
        if isinstance(fact, Recorded):
            messages = self._recorded(fact)
        elif isinstance(fact, Posted | Voided):
            messages = self._settled(fact)
        else:
            messages = self._linked(fact)
        return [Problem(fact.txn_id, fact.position, m) for m in messages]

    def finish(self) -> list[Problem]:
        """What only the whole log can show: both sides of every reversal are there."""
        problems = []
        for original, reversal in self.reversed_by.items():
            if self.linked.get(original) != reversal:
                problems.append(Problem(original, None, f"reversed by {reversal} but not linked"))
        for original, reversal in self.linked.items():
            if self.reversed_by.get(original) != reversal:
                problems.append(Problem(original, None, f"linked to {reversal}, no such reversal"))
        return problems

    def balance(self, account: str, currency: str) -> Balance:
        return self.balances.get((account, currency), ZERO)

    def _recorded(self, fact: Recorded) -> list[str]:
        if fact.txn_id in self.transactions:
            return ["recorded twice"]
        problems = _shape_problems(fact)
        well_formed = [
            leg
            for leg in fact.legs
            if type(leg.amount) is int and leg.direction in (Direction.DEBIT, Direction.CREDIT)
        ]
        totals = totals_by_account(well_formed)
        status = TransactionStatus.PENDING if fact.pending else TransactionStatus.POSTED
        self.transactions[fact.txn_id] = _Txn(fact.currency, totals, status)
        if fact.reverses is not None:
            problems += self._reversal_problems(fact, totals)
        for account, (debits, credits) in totals.items():
            key = (account, fact.currency)
            self.balances[key] = self.balance(*key).booked(debits, credits, pending=fact.pending)
        return problems + self._limits(fact.currency, totals)

    def _reversal_problems(self, fact: Recorded, totals: dict[str, tuple[int, int]]) -> list[str]:
        assert fact.reverses is not None
        original = self.transactions.get(fact.reverses)
        if original is None:
            return [f"reverses {fact.reverses}, which was never recorded"]
        problems = []
        if original.status != TransactionStatus.POSTED:
            problems.append(f"reverses {fact.reverses}, which is {original.status}")
        earlier = self.reversed_by.get(fact.reverses)
        if earlier is not None and earlier != fact.txn_id:
            problems.append(f"reverses {fact.reverses}, already reversed by {earlier}")
        self.reversed_by.setdefault(fact.reverses, fact.txn_id)
        mirrored = {a: (c, d) for a, (d, c) in original.totals.items()}
        if original.currency != fact.currency or mirrored != totals:
            problems.append(f"does not undo {fact.reverses} leg for leg")
        return problems

    def _settled(self, fact: Posted | Voided) -> list[str]:
        txn = self.transactions.get(fact.txn_id)
        verb = "posted" if isinstance(fact, Posted) else "voided"
        if txn is None:
            return [f"{verb} but never recorded"]
        if txn.status != TransactionStatus.PENDING:
            return [f"{verb} while {txn.status}"]
        txn.status = TransactionStatus.POSTED if verb == "posted" else TransactionStatus.VOIDED
        for account, (debits, credits) in txn.totals.items():
            key = (account, txn.currency)
            before = self.balance(*key)
            if verb == "posted":
                self.balances[key] = before.hold_posted(debits, credits)
            else:
                self.balances[key] = before.hold_voided(debits, credits)
        return self._limits(txn.currency, txn.totals)

    def _linked(self, fact: ReversalLinked) -> list[str]:
        txn = self.transactions.get(fact.txn_id)
        if txn is None:
            return ["reversal link on a transaction never recorded"]
        if txn.status != TransactionStatus.POSTED:
            return [f"reversal link while {txn.status}"]
        earlier = self.linked.get(fact.txn_id)
        if earlier is not None:
            return [f"reversed twice: by {earlier}, then by {fact.by}"]
        self.linked[fact.txn_id] = fact.by
        return []

    def _limits(self, currency: str, totals: dict[str, tuple[int, int]]) -> list[str]:
        problems = []
        for account in totals:
            flags = _flags(account)
            if flags is not None and self.balance(account, currency).breaks(flags):
                problems.append(f"{account} beyond its limit in {currency}")
        return problems


def _flags(account: str) -> AccountFlags | None:
    try:
        return flags_for(account)
    except ValidationFailed:
        return None


def _shape_problems(fact: Recorded) -> list[str]:
    problems = []
    currency = fact.currency
    if not (
        isinstance(currency, str) and len(currency) == 3 and all("A" <= c <= "Z" for c in currency)
    ):
        problems.append(f"currency {currency!r} is not an ISO code")
    if len(fact.legs) < 2:
        problems.append(f"has {len(fact.legs)} leg(s)")
    debits = credits = 0
    for i, leg in enumerate(fact.legs):
        if _flags(leg.account) is None:
            problems.append(f"leg {i}: unknown account {leg.account!r}")
        if leg.currency is not None and leg.currency != currency:
            problems.append(f"leg {i} is in {leg.currency}, the transaction in {currency}")
        if type(leg.amount) is not int or not 0 < leg.amount < MAX_AMOUNT:
            problems.append(f"leg {i}: amount {leg.amount!r} is not a positive integer")
            continue
        if leg.direction == Direction.DEBIT:
            debits += leg.amount
        elif leg.direction == Direction.CREDIT:
            credits += leg.amount
        else:
            problems.append(f"leg {i}: direction {leg.direction!r}")
    if debits != credits:
        problems.append(f"unbalanced: debits {debits}, credits {credits}")
    return problems


def verify(transactions: Iterable[TransactionFacts]) -> VerifyReport:
    """Replay the ledger's facts in log order; every broken rule is reported, none raised."""
    fold = LedgerFold()
    problems: list[Problem] = []
    for fact in transactions:
        problems += fold.apply(fact)
    problems += fold.finish()
    return VerifyReport(len(fold.transactions), problems, fold.balances)


# --- on an application's log ---------------------------------------------------------------


_GUARD_EVENTS = frozenset(
    {
        AccountGuard.Opened,  # type: ignore[attr-defined]
        AccountGuard.Booked,  # type: ignore[attr-defined]
        AccountGuard.Held,  # type: ignore[attr-defined]
        AccountGuard.HoldPosted,  # type: ignore[attr-defined]
        AccountGuard.HoldVoided,  # type: ignore[attr-defined]
    }
)


def fact_of(event: Any, at: int) -> TransactionFacts | None:
    """The ledger fact a domain event of the log at position `at` states, if any (what a
    projection folding the log one event at a time feeds `LedgerFold.apply`)."""
    # Dispatch on the exact class: isinstance against eventsourcing's event classes goes
    # through typing's Protocol check, which costs more than the rest of the fold.
    kind = type(event)
    if kind is LedgerTransaction.Recorded:  # type: ignore[attr-defined]
        legs = tuple(Leg.from_stored(s) for s in event.legs)
        return Recorded(
            event.originator_id,
            event.currency,
            legs,
            pending=event.pending,
            reverses=event.reverses,
            position=at,
        )
    if kind is LedgerTransaction.Posted:  # type: ignore[attr-defined]
        return Posted(event.originator_id, at)
    if kind is LedgerTransaction.Voided:  # type: ignore[attr-defined]
        return Voided(event.originator_id, at)
    if kind is LedgerTransaction.Reversed:  # type: ignore[attr-defined]
        return ReversalLinked(event.originator_id, event.by, at)
    return None


def facts_of(app: Any, guards: set[UUID] | None = None) -> Iterator[TransactionFacts]:
    """The ledger's facts in the application's log order; other aggregates' events are
    skipped. `guards`, when given, receives the id of every guard met on the way."""
    position = 1
    while True:
        page = app.recorder.select_notifications(start=position, limit=PAGE)
        for notification in page:
            event = app.mapper.to_domain_event(notification)
            fact = fact_of(event, notification.id)
            if fact is not None:
                yield fact
            elif guards is not None and type(event) in _GUARD_EVENTS:
                guards.add(event.originator_id)
        if len(page) < PAGE:
            return
        position = page[-1].id + 1


def verify_application(app: Any) -> VerifyReport:
    """Verify the ledger in an application's log, and hold the fold's balance of every flagged
    account against the guard the application kept for it: they must be equal."""
    guard_ids: set[UUID] = set()
    report = verify(facts_of(app, guard_ids))
    guarded: set[tuple[str, str]] = set()
    for guard_id in guard_ids:
        guard = app.repository.get(guard_id)
        key = (guard.account, guard.currency)
        guarded.add(key)
        folded = report.balances.get(key, ZERO)
        if guard.balance != folded:
            report.problems.append(
                Problem(None, None, f"guard of {key} holds {guard.balance}, postings say {folded}")
            )
    for key, balance in report.balances.items():
        flags = _flags(key[0])
        if flags is not None and flags.flagged and key not in guarded and balance != ZERO:
            report.problems.append(Problem(None, None, f"{key} is flagged but has no guard"))
    return report
