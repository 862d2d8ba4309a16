"""Events the payment service publishes, and the order request sellers send it.

Selling through payment (nft's IPO shares and Coda funding, coin's lottery tickets, payment's
own subscriptions) is one contract:

1. The seller publishes an `OrderRequest` (routing key `payment.order.requested`) with an
   `orderId` it derives from its own request (e.g. uuid5 of its command id), so a redelivered
   request opens one order; the same id with other content is refused.
2. Payment opens a Stripe checkout for it. The buyer pays there before `expiresAt`.
3. Payment publishes `payment.order.paid`, `payment.order.expired` or `payment.order.failed`.
   **The seller fulfils only from `payment.order.paid`**, and releases what it reserved on
   `expired` or `failed`.
4. An order is paid at most once. A payment arriving after the order expired, failed or was
   paid by another payment (or for another amount) is refunded automatically, booked in the
   ledger, and published as `payment.order.refunded`; the seller has nothing to do for it.

Tiers are published as they are defined and archived (`payment.tier.*`), so a consumer can
rank the tier a subscription names (see `TierDefined`).

Money is integer minor units (`amountCents`, `priceCents`) with an ISO 4217 currency; user ids
are the account ids auth issues. No event here carries card data or a customer portal link
(a portal session is made on demand for the signed-in fan).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from audifi_events.registry import IntegrationEvent, integration_event

# Patterns end with "no character follows", not `$` (which lets a final newline through).
END = r"(?![\s\S])"
Cents = Annotated[int, msgspec.Meta(gt=0, le=2**53 - 1)]  # exact in JSON (RFC 8259 §6)
CurrencyCode = Annotated[str, msgspec.Meta(pattern=f"^[A-Z]{{3}}{END}")]
ProductKind = Annotated[
    str,
    msgspec.Meta(
        pattern=f"^[a-z][a-z0-9_]{{0,39}}{END}",
        description="ipo_shares, funding, lottery_tickets, subscription...",
    ),
]


class Product(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """What is sold: the selling service, the kind of thing, and the seller's own id of it."""

    service: Literal["nft", "coin", "payment"]
    kind: ProductKind
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


# --- the request sellers send -------------------------------------------------------------


@integration_event("payment.order.requested", senders=("nft", "coin"))
class OrderRequest(IntegrationEvent, kw_only=True):
    """Published by a SELLING service (nft, coin) to payment: sell this to the buyer.

    Payment consumes it and opens one order per `orderId`. `sellerId` is whose split rule
    applies to the money; `unitAmountCents * quantity` is what the buyer pays; `title` is what
    the buyer reads on the checkout page. Answered by `payment.order.paid`, `expired` or
    `failed` (see the module's contract).
    """

    order_id: str
    product: Product
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=2**53 - 1)]
    unit_amount_cents: Cents
    currency: CurrencyCode
    buyer_id: str
    seller_id: str
    expires_at: datetime


# --- orders -------------------------------------------------------------------------------


@integration_event("payment.order.paid")
class OrderPaid(IntegrationEvent, kw_only=True):
    """The buyer paid the order: the seller fulfils it now. Published once per order (an
    order is paid at most once; consumers still deduplicate by message id)."""

    order_id: str
    product: Product
    buyer_id: str
    seller_id: str
    quantity: int
    amount_cents: int  # the total: quantity * unit amount
    currency: str
    payment_intent_id: str
    paid_at: datetime
    ledger_transaction_id: str | None


@integration_event("payment.order.expired")
class OrderExpired(IntegrationEvent, kw_only=True):
    """The order was not paid before its expiry: the seller releases what it reserved. A
    payment arriving later is refunded (`payment.order.refunded`), never fulfilled."""

    order_id: str
    product: Product
    buyer_id: str
    seller_id: str
    expired_at: datetime


@integration_event("payment.order.failed")
class OrderFailed(IntegrationEvent, kw_only=True):
    """The order cannot be paid (`reason`): the seller releases what it reserved."""

    order_id: str
    product: Product
    buyer_id: str
    seller_id: str
    reason: str
    failed_at: datetime


@integration_event("payment.order.refunded")
class OrderRefunded(IntegrationEvent, kw_only=True):
    """A payment the order could not take was refunded in full to the buyer. `reason`:
    expired, failed, paid_already (another payment paid it) or amount_mismatch. Nothing was
    fulfilled for it."""

    order_id: str
    product: Product
    buyer_id: str
    payment_intent_id: str
    refund_id: str
    amount_cents: int
    currency: str
    reason: str
    refunded_at: datetime
    ledger_transaction_id: str | None


# --- tiers --------------------------------------------------------------------------------


@integration_event("payment.tier.defined")
class TierDefined(IntegrationEvent, kw_only=True):
    """An artist defined a subscription tier: `priceCents` in `currency` per `interval`.

    A tier's rank for access is its price per year: `priceCents` for a yearly tier,
    `priceCents * 12` for a monthly one. nft compares ranks within one artist and currency
    only ("a fan subscribed at this tier or above"). A tier's facts never change after it is
    defined; it can only be archived (`payment.tier.archived`).
    """

    tier_id: str
    artist_id: str
    name: str
    price_cents: int
    currency: str
    interval: Literal["month", "year"]
    defined_at: datetime


@integration_event("payment.tier.archived")
class TierArchived(IntegrationEvent, kw_only=True):
    """The artist (or an admin) archived the tier: nobody new may subscribe to it. Existing
    subscriptions to it go on and keep their access; its rank is unchanged."""

    tier_id: str
    artist_id: str
    archived_at: datetime


# --- subscriptions ------------------------------------------------------------------------


class SubscriptionFacts(IntegrationEvent, kw_only=True):
    """What every subscription event says: whose subscription to which artist's tier, at what
    price, and until when the current period runs (None when Stripe gave none)."""

    subscription_id: str
    fan_id: str
    artist_id: str
    tier_id: str
    price_cents: int
    currency: str
    interval: Literal["month", "year"]
    current_period_end: datetime | None
    tier_name: str | None = None  # what the artist called the tier (absent from older events)


@integration_event("payment.subscription.started")
class SubscriptionStarted(SubscriptionFacts, kw_only=True):
    """The fan's first payment went through: the subscription is active (locked content of
    the artist opens to the fan)."""

    started_at: datetime


@integration_event("payment.subscription.renewed")
class SubscriptionRenewed(SubscriptionFacts, kw_only=True):
    """Another period was paid (also after a past-due period was finally paid): active until
    `currentPeriodEnd`."""

    renewed_at: datetime


@integration_event("payment.subscription.past_due")
class SubscriptionPastDue(SubscriptionFacts, kw_only=True):
    """A renewal's payment failed; Stripe retries. The fan can fix the card in the customer
    portal (notify asks them to)."""

    fell_past_due_at: datetime


@integration_event("payment.subscription.canceled")
class SubscriptionCanceled(SubscriptionFacts, kw_only=True):
    """The subscription ended (at period end after a cancellation, or after the last failed
    retry): access ends."""

    canceled_at: datetime


# --- the ledger ---------------------------------------------------------------------------


class LedgerLeg(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One posting: `account` (e.g. `user:{id}:available`, `platform:fees`, `stripe:clearing`)
    debited or credited `amountCents`."""

    account: str
    direction: Literal["debit", "credit"]
    amount_cents: int
    event_source: str  # stripe_charge, stripe_fee, platform_fee, split, refund, reversal...


@integration_event("payment.ledger.transaction_recorded")
class LedgerTransactionRecorded(IntegrationEvent, kw_only=True):
    """A balanced ledger transaction was recorded (for analytics and anomaly detection): its
    debits equal its credits, in one currency. `reverses` names the transaction a reversal
    corrects; `referenceId` an external id (e.g. a Stripe charge)."""

    txn_id: str
    currency: str
    legs: list[LedgerLeg]
    event_source: str
    reference_id: str | None
    reverses: str | None
    created_at: datetime
