"""Coda projects' escrow in the ledger, as nft's project events tell it (`domain/escrow.py`).

Each command books what one event decided, under ids derived from the event's facts: a
redelivered or republished event finds its transactions recorded and books nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from audifi_payment.application.ledger import LedgerCommands
from audifi_payment.domain.escrow import (
    MILESTONE,
    PROJECT_PAYOUT,
    PROJECT_REFUND,
    PROJECT_REMAINDER,
    milestone_hold_id,
    milestone_hold_legs,
    payout_id,
    payout_legs,
    refund_id,
    refund_legs,
    remainder_id,
    remainder_legs,
)
from audifi_payment.domain.ledger import LedgerTransaction, TransactionStatus

MAX_MILESTONES = 20  # nft's limit: the holds a cancellation looks for


class EscrowCommands(LedgerCommands):
    def hold_milestones(
        self,
        project_id: str,
        *,
        artist_id: str,
        payouts: Iterable[int],
        currency: str,
        platform_fee_bps: int,
    ) -> list[UUID]:
        """The goal reached: each milestone's payout held for the artist, pending."""
        return [
            self.record(
                currency=currency,
                legs=milestone_hold_legs(
                    project_id=project_id,
                    artist_id=artist_id,
                    payout=payout,
                    platform_fee_bps=platform_fee_bps,
                ),
                event_source=MILESTONE,
                reference_id=f"{project_id}.{sequence}",
                txn_id=milestone_hold_id(project_id, sequence),
                pending=True,
            )
            for sequence, payout in enumerate(payouts, start=1)
        ]

    def release_milestone(self, project_id: str, sequence: int) -> UUID:
        """A milestone approved: its hold is posted to the artist (once)."""
        txn_id = milestone_hold_id(project_id, sequence)
        if self._status(txn_id) == TransactionStatus.POSTED:
            return txn_id
        return self.post(txn_id)

    def refund_project(
        self,
        project_id: str,
        *,
        refunds: Iterable[tuple[str, str, int]],
        remainder: int,
        currency: str,
    ) -> list[UUID]:
        """A project cancelled: the holds not posted are voided, then each investment's
        refund (investment id, funder, amount) and the rounding remainder leave the escrow."""
        for sequence in range(1, MAX_MILESTONES + 1):
            hold = milestone_hold_id(project_id, sequence)
            if self._status(hold) == TransactionStatus.PENDING:
                self.void(hold)
        booked = [
            self.record(
                currency=currency,
                legs=refund_legs(project_id=project_id, account_id=account_id, amount=amount),
                event_source=PROJECT_REFUND,
                reference_id=investment_id,
                txn_id=refund_id(project_id, investment_id),
            )
            for investment_id, account_id, amount in refunds
            if amount
        ]
        if remainder:
            booked.append(
                self.record(
                    currency=currency,
                    legs=remainder_legs(project_id=project_id, amount=remainder),
                    event_source=PROJECT_REMAINDER,
                    reference_id=project_id,
                    txn_id=remainder_id(project_id),
                )
            )
        return booked

    def pay_project_payout(
        self, *, investment_id: str, account_id: str, amount: int, claimed_total: int, currency: str
    ) -> UUID:
        """A funder's claim of a released project's revenue, into their balance."""
        return self.record(
            currency=currency,
            legs=payout_legs(account_id=account_id, amount=amount),
            event_source=PROJECT_PAYOUT,
            reference_id=investment_id,
            txn_id=payout_id(investment_id, claimed_total),
        )

    def _status(self, txn_id: UUID) -> TransactionStatus | None:
        try:
            found = self.repository.get(txn_id)
        except AggregateNotFoundError:
            return None
        return found.status if isinstance(found, LedgerTransaction) else None
