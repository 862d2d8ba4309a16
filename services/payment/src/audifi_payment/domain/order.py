"""An Order: how nft, coin and payment itself sell through one contract.

The selling service asks for an order (product, quantity, unit price, currency, buyer, seller
whose split rule applies, expiry); payment opens a Stripe checkout for it and publishes
`payment.order.paid`, `expired` or `failed`; the seller fulfils only from `paid`.

An order is paid at most once. Every payment notice names its payment intent:
- the intent that paid it, again: a duplicate, nothing changes;
- a first payment of the right amount while the order is open and not past its expiry: paid;
- any other payment (after expiry, after a failure, after another intent paid, or of another
  amount or currency): recorded as `LatePaymentReceived` with the outcome `refund_required`;
  the service layer books and issues the refund, then records it (`Refunded`). Money taken is
  never dropped silently, and never refunded twice (a second notice of the same intent is a
  duplicate too).
A payment whose `paid_at` is after the expiry finds the order expired, even if the expiry was
not recorded yet: the seller may already have released what was reserved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from audifi_kit.errors import Conflict, NotFound
from audifi_kit.fields import SingleLineText, check, text_type
from eventsourcing.domain import Aggregate, event

from audifi_payment.domain.values import (
    MAX_SAFE_INTEGER,
    currency_code,
    invalid,
    moment,
    user_id,
    whole_number,
)

SELLERS = ("nft", "coin", "payment")
ProductKind = text_type(
    "[a-z][a-z0-9_]*",
    max_length=40,
    description="What is sold, in the seller's words: ipo_shares, funding, lottery_tickets...",
)
ProductReference = SingleLineText(200, min_length=1, description="The seller's product id")
OrderTitle = SingleLineText(120, min_length=1, description="What the buyer sees on the checkout")
StripeId = SingleLineText(255, min_length=1, description="A Stripe object's id")
FailureReason = SingleLineText(200, min_length=1, description="Why the order cannot be paid")

OPEN = "open"
CHECKOUT_STARTED = "checkout_started"
PAID = "paid"
EXPIRED = "expired"
FAILED = "failed"
PAYABLE = (OPEN, CHECKOUT_STARTED)


class PaymentOutcome(StrEnum):
    PAID = "paid"
    DUPLICATE = "duplicate"
    REFUND_REQUIRED = "refund_required"


class OrderNotFound(NotFound):
    code = "ORDER_NOT_FOUND"
    default_message = "No such order"


class OrderIdTaken(Conflict):
    default_message = "Another order has this id"


class OrderClosed(Conflict):
    default_message = "The order is paid, expired or failed"


class NothingToRefund(Conflict):
    default_message = "No payment of this order awaits a refund"


@dataclass(frozen=True, slots=True)
class Product:
    service: str  # the seller service: nft, coin, payment
    kind: str
    reference: str


@dataclass(frozen=True, slots=True)
class LatePayment:
    amount: int
    currency: str
    reason: str  # expired, failed, paid_already, amount_mismatch
    refund_id: str | None = None


class Order(Aggregate):
    @classmethod
    def open(
        cls,
        *,
        order_id: UUID,
        product: Product,
        title: Any,
        quantity: Any,
        unit_amount: Any,
        currency: Any,
        buyer_id: Any,
        seller_id: Any,
        expires_at: Any,
        at: datetime,
    ) -> Order:
        if product.service not in SELLERS:
            raise invalid("product.service", "Expected nft, coin or payment")
        quantity = whole_number(quantity, field="quantity", minimum=1, maximum=MAX_SAFE_INTEGER)
        unit_amount = whole_number(
            unit_amount, field="unitAmount", minimum=1, maximum=MAX_SAFE_INTEGER
        )
        if quantity * unit_amount > MAX_SAFE_INTEGER:
            raise invalid("quantity", "quantity * unitAmount exceeds 2**53 - 1")
        if moment(expires_at, field="expiresAt") <= at:
            raise invalid("expiresAt", "The expiry must be in the future")
        return cls(
            id=order_id,
            product_service=product.service,
            product_kind=str(check(ProductKind, product.kind, field="product.kind")),
            product_reference=str(
                check(ProductReference, product.reference, field="product.reference")
            ),
            title=str(check(OrderTitle, title, field="title")),
            quantity=quantity,
            unit_amount=unit_amount,
            currency=currency_code(currency),
            buyer_id=user_id(buyer_id, field="buyerId"),
            seller_id=user_id(seller_id, field="sellerId"),
            expires_at=expires_at,
            opened_at=at,
        )

    @event("Opened")
    def __init__(
        self,
        id: UUID,
        product_service: str,
        product_kind: str,
        product_reference: str,
        title: str,
        quantity: int,
        unit_amount: int,
        currency: str,
        buyer_id: str,
        seller_id: str,
        expires_at: datetime,
        opened_at: datetime,
    ) -> None:
        self.product = Product(product_service, product_kind, product_reference)
        self.title = title
        self.quantity = quantity
        self.unit_amount = unit_amount
        self.total = quantity * unit_amount
        self.currency = currency
        self.buyer_id = buyer_id
        self.seller_id = seller_id
        self.expires_at = expires_at
        self.opened_at = opened_at
        self.status = OPEN
        self.checkout_session_ids: list[str] = []
        self.payment_intent_id: str | None = None
        self.paid_at: datetime | None = None
        self.late_payments: dict[str, LatePayment] = {}

    @property
    def facts(self) -> dict[str, Any]:
        """What every outcome event carries, so the outbox can publish it without the order:
        the product, who buys, who sells, how many, at what unit price."""
        return {
            "product": {
                "service": self.product.service,
                "kind": self.product.kind,
                "reference": self.product.reference,
            },
            "buyer_id": self.buyer_id,
            "seller_id": self.seller_id,
            "quantity": self.quantity,
            "unit_amount": self.unit_amount,
        }

    def same_request(self, other: Order) -> bool:
        """Whether `other` (opened but not saved) asks for exactly this order: a redelivered
        request opens nothing new."""
        fields = (
            "product",
            "title",
            "quantity",
            "unit_amount",
            "currency",
            "buyer_id",
            "seller_id",
            "expires_at",
        )
        return all(getattr(self, f) == getattr(other, f) for f in fields)

    # --- commands -----------------------------------------------------------------------

    def start_checkout(self, session_id: Any, at: datetime) -> None:
        """A Stripe checkout session now collects the payment (a later one may replace it,
        e.g. the buyer came back after closing the page)."""
        session_id = str(check(StripeId, session_id, field="sessionId"))
        if self.status not in PAYABLE:
            raise OrderClosed(details={"orderId": str(self.id), "status": self.status})
        if session_id not in self.checkout_session_ids:
            self._checkout_started(session_id=session_id, started_at=at)

    def receive_payment(
        self,
        *,
        payment_intent_id: Any,
        amount: Any,
        currency: Any,
        paid_at: Any,
        ledger_transaction_id: UUID | None = None,
    ) -> PaymentOutcome:
        """Takes a payment notice (see the module's docstring for what each one does)."""
        payment_intent_id = str(check(StripeId, payment_intent_id, field="paymentIntentId"))
        amount = whole_number(amount, field="amount", minimum=1, maximum=MAX_SAFE_INTEGER)
        currency = currency_code(currency)
        paid_at = moment(paid_at, field="paidAt")
        if payment_intent_id == self.payment_intent_id or payment_intent_id in self.late_payments:
            return PaymentOutcome.DUPLICATE
        if self.status in PAYABLE and paid_at > self.expires_at:
            self._expired(expired_at=self.expires_at, facts=self.facts)
        if self.status in PAYABLE:
            if (amount, currency) == (self.total, self.currency):
                self._paid(
                    facts=self.facts,
                    payment_intent_id=payment_intent_id,
                    amount=amount,
                    currency=currency,
                    paid_at=paid_at,
                    ledger_transaction_id=ledger_transaction_id,
                )
                return PaymentOutcome.PAID
            reason = "amount_mismatch"
        else:
            reason = "paid_already" if self.status == PAID else self.status
        self._late_payment_received(
            facts=self.facts,
            payment_intent_id=payment_intent_id,
            amount=amount,
            currency=currency,
            reason=reason,
            received_at=paid_at,
        )
        return PaymentOutcome.REFUND_REQUIRED

    def expire(self, at: datetime) -> bool:
        """No longer payable; False when it is already paid, expired or failed."""
        if self.status not in PAYABLE:
            return False
        self._expired(expired_at=at, facts=self.facts)
        return True

    def fail(self, reason: Any, at: datetime) -> bool:
        """Cannot be paid (the checkout could not be opened, the seller withdrew it); False
        when it is already paid, expired or failed."""
        reason = str(check(FailureReason, reason, field="reason"))
        if self.status not in PAYABLE:
            return False
        self._failed(reason=reason, failed_at=at, facts=self.facts)
        return True

    def record_refund(
        self,
        *,
        payment_intent_id: str,
        refund_id: Any,
        at: datetime,
        ledger_transaction_id: UUID | None = None,
    ) -> bool:
        """The late payment `payment_intent_id` was refunded; False when recorded already."""
        refund_id = str(check(StripeId, refund_id, field="refundId"))
        late = self.late_payments.get(payment_intent_id)
        if late is None:
            raise NothingToRefund(details={"paymentIntentId": payment_intent_id})
        if late.refund_id is not None:
            if late.refund_id != refund_id:
                raise NothingToRefund("The payment was refunded already")
            return False
        self._refunded(
            facts={
                **self.facts,
                "late_payment": {
                    "amount": late.amount,
                    "currency": late.currency,
                    "reason": late.reason,
                },
            },
            payment_intent_id=payment_intent_id,
            refund_id=refund_id,
            refunded_at=at,
            ledger_transaction_id=ledger_transaction_id,
        )
        return True

    @property
    def refunds_due(self) -> list[str]:
        """The payment intents received but not (yet) refunded."""
        return [pi for pi, late in self.late_payments.items() if late.refund_id is None]

    # --- events -------------------------------------------------------------------------

    @event("CheckoutStarted")
    def _checkout_started(self, session_id: str, started_at: datetime) -> None:
        self.status = CHECKOUT_STARTED
        self.checkout_session_ids.append(session_id)

    @event("Paid")
    def _paid(
        self,
        facts: dict[str, Any],
        payment_intent_id: str,
        amount: int,
        currency: str,
        paid_at: datetime,
        ledger_transaction_id: UUID | None,
    ) -> None:
        self.status = PAID
        self.payment_intent_id = payment_intent_id
        self.paid_at = paid_at

    @event("Expired")
    def _expired(self, expired_at: datetime, facts: dict[str, Any]) -> None:
        self.status = EXPIRED

    @event("Failed")
    def _failed(self, reason: str, failed_at: datetime, facts: dict[str, Any]) -> None:
        self.status = FAILED

    @event("LatePaymentReceived")
    def _late_payment_received(
        self,
        facts: dict[str, Any],
        payment_intent_id: str,
        amount: int,
        currency: str,
        reason: str,
        received_at: datetime,
    ) -> None:
        self.late_payments[payment_intent_id] = LatePayment(amount, currency, reason)

    @event("Refunded")
    def _refunded(
        self,
        facts: dict[str, Any],
        payment_intent_id: str,
        refund_id: str,
        refunded_at: datetime,
        ledger_transaction_id: UUID | None,
    ) -> None:
        late = self.late_payments[payment_intent_id]
        self.late_payments[payment_intent_id] = LatePayment(
            late.amount, late.currency, late.reason, refund_id
        )
