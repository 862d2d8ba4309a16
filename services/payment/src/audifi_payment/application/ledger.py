"""The double-entry ledger: transactions, two-phase holds, reversals, flagged balances.

Each command loads the transaction and the guards of its flagged accounts, lets the domain
decide, and saves them all in ONE `save` (one database transaction). Two writers of the same
user balance race on that guard's version: the loser's save fails with the event store's
IntegrityError, and the command is decided again on the winner's balance, so a limit is never
checked against a stale figure. Writers that share only hot accounts never meet.

`prepare_*` decide without saving, for a caller that saves several commands in one unit of
work (the kit's `GroupCommit.submit(decide)`): each returns the aggregates to save.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple
from uuid import UUID, uuid4

from audifi_kit.eventstore import ConcurrencyConflict
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from audifi_payment.application.core import PaymentCore
from audifi_payment.domain.accounts import ZERO, Balance, flags_for, invalid
from audifi_payment.domain.ledger import (
    AccountGuard,
    LedgerTransaction,
    LedgerTransactionNotFound,
    Leg,
    TransactionIdTaken,
    book_transaction,
    flagged_totals,
    guard_id,
    post_transaction,
    reversal_id_for,
    terms,
    void_transaction,
)

# A writer that lost this many races in a row on one account gives up with a 409 the client
# may retry; each loss means another writer of that account succeeded meanwhile.
MAX_TRIES = 20


class Prepared(NamedTuple):
    """A decided command: the transaction it is about and the aggregates to save (none when
    the command was already applied: a repeated recording of the same id)."""

    txn_id: UUID
    aggregates: list[Aggregate]


class LedgerCommands(PaymentCore):
    """The double-entry ledger: transactions, two-phase holds, reversals, flagged balances."""

    # --- commands -----------------------------------------------------------------------

    def record(
        self,
        *,
        currency: str,
        legs: Iterable[Leg],
        event_source: str,
        reference_id: str | None = None,
        reason: str | None = None,
        actor: str | None = None,
        txn_id: UUID | None = None,
        pending: bool = False,
    ) -> UUID:
        """Record a balanced transaction, posted or pending (a hold); its id when accepted.

        Recording an id that exists returns it unchanged when the terms are the same (a
        redelivered webhook books once) and is refused (409) when they differ.
        """
        legs = list(legs)
        return self._until_saved(
            lambda: self.prepare_record(
                currency=currency,
                legs=legs,
                event_source=event_source,
                reference_id=reference_id,
                reason=reason,
                actor=actor,
                txn_id=txn_id,
                pending=pending,
            )
        )

    def post(self, txn_id: UUID) -> UUID:
        """Post a pending transaction whole (409 unless it is pending)."""
        return self._until_saved(lambda: self.prepare_post(txn_id))

    def void(self, txn_id: UUID) -> UUID:
        """Void a pending transaction: its holds are released (409 unless it is pending)."""
        return self._until_saved(lambda: self.prepare_void(txn_id))

    def reverse(self, txn_id: UUID, *, reason: str | None, actor: str | None) -> UUID:
        """Record the transaction that undoes a posted one; its id. Once per transaction, and
        refused (409 INSUFFICIENT_FUNDS) when it would take a user's balance below zero."""
        return self._until_saved(lambda: self.prepare_reverse(txn_id, reason=reason, actor=actor))

    # --- queries ------------------------------------------------------------------------

    def ledger_transaction(self, txn_id: UUID) -> LedgerTransaction:
        found = self._find(txn_id)
        if not isinstance(found, LedgerTransaction):
            raise LedgerTransactionNotFound()
        return found

    def guarded_balance(self, account: str, currency: str) -> Balance:
        """A flagged account's balance as its guard holds it (zero before its first posting).
        A hot account's balance is a projection of the postings, never read here."""
        if not flags_for(account).flagged:
            raise invalid("account", f"{account} has no balance kept at write time")
        guard = self._find(guard_id(account, currency))
        return guard.balance if isinstance(guard, AccountGuard) else ZERO

    # --- deciding without saving ---------------------------------------------------------

    @staticmethod
    def guards_of(currency: str, legs: Iterable[Leg]) -> list[UUID]:
        """The guards a transaction of these legs loads: what group commit may load for a
        whole batch at once (`GroupCommit.submit(..., loads=...)`)."""
        return [guard_id(a, currency.upper()) for a in flagged_totals(legs)]

    def prepare_record(
        self,
        *,
        currency: str,
        legs: Iterable[Leg],
        event_source: str,
        reference_id: str | None = None,
        reason: str | None = None,
        actor: str | None = None,
        txn_id: UUID | None = None,
        pending: bool = False,
    ) -> Prepared:
        given = terms(
            currency=currency,
            legs=legs,
            event_source=event_source,
            reference_id=reference_id,
            reason=reason,
            actor=actor,
            pending=pending,
        )
        if txn_id is None:
            txn_id = uuid4()  # new: nothing to look up (a clash would fail the save anyway)
        else:
            existing = self._find(txn_id)
            if existing is not None:
                if isinstance(existing, LedgerTransaction) and existing.terms == given:
                    return Prepared(txn_id, [])
                raise TransactionIdTaken()
        txn = LedgerTransaction.open(txn_id, given)
        guards = self._guards(txn, create=True)
        book_transaction(txn, guards)
        return Prepared(txn_id, [txn, *guards.values()])

    def prepare_post(self, txn_id: UUID) -> Prepared:
        txn = self.ledger_transaction(txn_id)
        guards = self._guards(txn, create=False)
        post_transaction(txn, guards)
        return Prepared(txn_id, [txn, *guards.values()])

    def prepare_void(self, txn_id: UUID) -> Prepared:
        txn = self.ledger_transaction(txn_id)
        guards = self._guards(txn, create=False)
        void_transaction(txn, guards)
        return Prepared(txn_id, [txn, *guards.values()])

    def prepare_reverse(self, txn_id: UUID, *, reason: str | None, actor: str | None) -> Prepared:
        original = self.ledger_transaction(txn_id)
        reversal_id = reversal_id_for(txn_id)
        original.mark_reversed(reversal_id)
        reversal = LedgerTransaction.open(
            reversal_id, original.reversal_terms(reason=reason, actor=actor)
        )
        guards = self._guards(reversal, create=True)
        book_transaction(reversal, guards)
        # The reversal first: a reader of the log meets it before the link that names it.
        return Prepared(reversal_id, [reversal, original, *guards.values()])

    # --- internals ----------------------------------------------------------------------

    def _find(self, aggregate_id: UUID) -> Aggregate | None:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def _guards(self, txn: LedgerTransaction, *, create: bool) -> dict[str, AccountGuard]:
        """The guards of the transaction's flagged accounts; opened when missing, for a new
        posting (a transaction that already touched an account always finds its guard)."""
        guards: dict[str, AccountGuard] = {}
        for account in flagged_totals(txn.legs):
            found = self._find(guard_id(account, txn.currency))
            if isinstance(found, AccountGuard):
                guards[account] = found
            elif found is None and create:
                guards[account] = AccountGuard.open(account, txn.currency)
            else:
                raise RuntimeError(f"no guard for {account} in {txn.currency}")
        return guards

    def _until_saved(self, decide: Callable[[], Prepared]) -> UUID:
        """Decide and save; decided again on fresh state each time a concurrent writer of the
        same aggregate saved first."""
        for attempt in range(MAX_TRIES):
            prepared = decide()
            if not prepared.aggregates:
                return prepared.txn_id
            try:
                self.save(*prepared.aggregates)
            except IntegrityError:
                # A little jitter, growing with the losses, lets the losers spread out
                # instead of colliding again in lockstep.
                time.sleep(random.random() * 0.0005 * attempt)
                continue
            return prepared.txn_id
        raise ConcurrencyConflict("the ledger's accounts kept changing; retry")
