"""Money in: a paid charge booked with what it pays for, in one atomic save.

Each command here changes several aggregates that must agree (an order and the transaction
that books its payment; a late payment's refund and the order that owed it), so each decides
them together and saves them in one `save`: both or neither. A lost race on a guarded
account (a user's balance) decides again on fresh state, as the ledger's own commands do.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from uuid import UUID

from audifi_kit.eventstore import ConcurrencyConflict
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from audifi_payment.application.billing import BillingCommands
from audifi_payment.application.ledger import MAX_TRIES, LedgerCommands
from audifi_payment.application.orders import OrderCommands
from audifi_payment.application.splits import SplitRuleCommands
from audifi_payment.application.stripe_port import ChargeView, RefundView
from audifi_payment.domain.charges import (
    REFUND,
    STRIPE_CHARGE,
    charge_legs,
    late_payment_legs,
    refund_legs,
)
from audifi_payment.domain.escrow import FUNDING_KIND, funding_legs
from audifi_payment.domain.ledger import transaction_id_for
from audifi_payment.domain.order import PaymentOutcome, Product
from audifi_payment.domain.stripe_event import StripeEventReceipt, receipt_id

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Settled:
    outcome: PaymentOutcome
    ledger_transaction_id: UUID | None


class SettlementCommands(LedgerCommands, SplitRuleCommands, BillingCommands, OrderCommands):
    """Charges booked with the order or subscription they pay for; late payments refunded."""

    def settle_order_charge(
        self, order_id: UUID, charge: ChargeView, *, platform_fee_bps: int
    ) -> Settled:
        """A paid charge for an order: paid (booked and split), a duplicate (nothing), or a
        late payment (booked to refunds; the caller refunds it at Stripe, then
        `book_order_refund`)."""
        txn_id = transaction_id_for(STRIPE_CHARGE, charge.id)

        def decide() -> tuple[Settled, list[Aggregate]]:
            order = self.order(order_id)
            outcome = order.receive_payment(
                payment_intent_id=charge.payment_intent_id or charge.id,
                amount=charge.amount,
                currency=charge.currency,
                paid_at=charge.created,
                ledger_transaction_id=txn_id,
            )
            if outcome is PaymentOutcome.DUPLICATE:
                return Settled(outcome, txn_id), []
            if outcome is PaymentOutcome.PAID and _is_funding(order.product):
                # An investment in a Coda project: held in its escrow, not split.
                legs = funding_legs(
                    project_id=order.product.reference, gross=charge.amount, fee=charge.fee
                )
            elif outcome is PaymentOutcome.PAID:
                legs = charge_legs(
                    gross=charge.amount,
                    fee=charge.fee,
                    platform_fee_bps=platform_fee_bps,
                    shares=self.shares_for(order.seller_id),
                    seller=order.seller_id,
                )
            else:
                legs = late_payment_legs(gross=charge.amount, fee=charge.fee)
            booked = self.prepare_record(
                currency=charge.currency,
                legs=legs,
                event_source=STRIPE_CHARGE,
                reference_id=charge.id,
                txn_id=txn_id,
            )
            return Settled(outcome, txn_id), [order, *booked.aggregates]

        return self._save_decided(decide)

    def book_order_refund(
        self, order_id: UUID, payment_intent_id: str, refund: RefundView, *, at: datetime
    ) -> UUID:
        """The late payment's refund, issued at Stripe: booked, and the order's debt settled."""
        txn_id = transaction_id_for(REFUND, refund.id)

        def decide() -> tuple[UUID, list[Aggregate]]:
            order = self.order(order_id)
            if payment_intent_id not in order.refunds_due:
                return txn_id, []  # booked already (a redelivery of the same notice)
            order.record_refund(
                payment_intent_id=payment_intent_id,
                refund_id=refund.id,
                at=at,
                ledger_transaction_id=txn_id,
            )
            booked = self.prepare_record(
                currency=refund.currency,
                legs=refund_legs(amount=refund.amount),
                event_source=REFUND,
                reference_id=refund.id,
                txn_id=txn_id,
            )
            return txn_id, [order, *booked.aggregates]

        return self._save_decided(decide)

    def settle_subscription_charge(
        self, subscription_id: UUID, charge: ChargeView, *, platform_fee_bps: int
    ) -> UUID:
        """An invoice's charge for a subscription, split by the artist's rule; once per
        charge (its transaction id is the charge's)."""
        subscription = self.subscription(subscription_id)
        return self.record(
            currency=charge.currency,
            legs=charge_legs(
                gross=charge.amount,
                fee=charge.fee,
                platform_fee_bps=platform_fee_bps,
                shares=self.shares_for(subscription.artist_id),
                seller=subscription.artist_id,
            ),
            event_source=STRIPE_CHARGE,
            reference_id=charge.id,
            txn_id=transaction_id_for(STRIPE_CHARGE, charge.id),
        )

    # --- Stripe events ------------------------------------------------------------------

    def stripe_event_handled(self, event_id: str) -> bool:
        try:
            self.repository.get(receipt_id(event_id))
        except AggregateNotFoundError:
            return False
        return True

    def record_stripe_event(
        self, event_id: str, event_type: str, outcome: str, *, at: datetime
    ) -> bool:
        """The event's receipt; False when another delivery recorded it first."""
        receipt = StripeEventReceipt(
            event_id=event_id, event_type=event_type, outcome=outcome, handled_at=at
        )
        try:
            self.save(receipt)
        except IntegrityError:
            return False
        return True

    # --- internals ----------------------------------------------------------------------

    def _save_decided(self, decide: Callable[[], tuple[T, list[Aggregate]]]) -> T:
        for attempt in range(MAX_TRIES):
            result, aggregates = decide()
            if not aggregates:
                return result
            try:
                self.save(*aggregates)
            except IntegrityError:
                time.sleep(random.random() * 0.0005 * attempt)
                continue
            return result
        raise ConcurrencyConflict("the ledger's accounts kept changing; retry")


def _is_funding(product: Product) -> bool:
    return product.service == "nft" and product.kind == FUNDING_KIND
