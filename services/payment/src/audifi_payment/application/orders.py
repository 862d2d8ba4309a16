"""Orders: how nft, coin and payment itself sell through one contract.

The seller gives the order's id (derived from its own request, so a redelivered request opens
one order); the service layer starts a Stripe checkout for it and reports every payment
notice to `mark_paid`, whose outcome says what to do: `paid` (book it and publish
`payment.order.paid`), `duplicate` (nothing), `refund_required` (book and issue the refund,
then `record_order_refund`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from audifi_payment.application.core import PaymentCore
from audifi_payment.domain.order import Order, OrderIdTaken, OrderNotFound, PaymentOutcome, Product


class OrderCommands(PaymentCore):
    """Orders: how nft, coin and payment itself sell through one contract."""

    def open_order(
        self,
        order_id: UUID,
        product: Product,
        *,
        title: Any,
        quantity: Any,
        unit_amount: Any,
        currency: Any,
        buyer_id: Any,
        seller_id: Any,
        expires_at: Any,
        at: datetime,
    ) -> Order:
        """Opens the order; the same request again returns it unchanged, another request
        under its id is a 409."""
        existing = self._order(order_id)
        order = Order.open(
            order_id=order_id,
            product=product,
            title=title,
            quantity=quantity,
            unit_amount=unit_amount,
            currency=currency,
            buyer_id=buyer_id,
            seller_id=seller_id,
            expires_at=expires_at,
            # A redelivered request is judged as when it was first accepted, not as now.
            at=existing.opened_at if existing is not None else at,
        )
        if existing is not None:
            if not existing.same_request(order):
                raise OrderIdTaken(details={"orderId": str(order_id)})
            return existing
        self.save(order)
        return order

    def start_checkout(self, order_id: UUID, session_id: str, *, at: datetime) -> Order:
        order = self.order(order_id)
        order.start_checkout(session_id, at)
        self.save(order)
        return order

    def mark_paid(
        self,
        order_id: UUID,
        payment_intent_id: str,
        amount: Any,
        currency: Any,
        paid_at: Any,
        *,
        ledger_transaction_id: UUID | None = None,
    ) -> PaymentOutcome:
        """A payment notice for the order: paid, a duplicate, or a payment to refund."""
        order = self.order(order_id)
        outcome = order.receive_payment(
            payment_intent_id=payment_intent_id,
            amount=amount,
            currency=currency,
            paid_at=paid_at,
            ledger_transaction_id=ledger_transaction_id,
        )
        self.save(order)
        return outcome

    def expire_order(self, order_id: UUID, *, at: datetime) -> Order:
        """No longer payable (its checkout expired); a paid order stays paid."""
        order = self.order(order_id)
        order.expire(at)
        self.save(order)
        return order

    def fail_order(self, order_id: UUID, reason: str, *, at: datetime) -> Order:
        order = self.order(order_id)
        order.fail(reason, at)
        self.save(order)
        return order

    def record_order_refund(
        self,
        order_id: UUID,
        payment_intent_id: str,
        refund_id: str,
        *,
        at: datetime,
        ledger_transaction_id: UUID | None = None,
    ) -> Order:
        """The late payment was refunded (published as `payment.order.refunded`)."""
        order = self.order(order_id)
        order.record_refund(
            payment_intent_id=payment_intent_id,
            refund_id=refund_id,
            at=at,
            ledger_transaction_id=ledger_transaction_id,
        )
        self.save(order)
        return order

    def order(self, order_id: UUID) -> Order:
        order = self._order(order_id)
        if order is None:
            raise OrderNotFound(details={"orderId": str(order_id)})
        return order

    def _order(self, order_id: UUID) -> Order | None:
        try:
            order = self.repository.get(order_id)
        except AggregateNotFoundError:
            return None
        return order if isinstance(order, Order) else None
