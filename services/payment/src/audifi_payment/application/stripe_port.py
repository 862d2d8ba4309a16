"""What the payment application needs from Stripe, in its own words: the port.

The application never sees the SDK. `adapters/stripe_sdk.py` implements this over the official
`stripe` SDK (real Stripe, or the local Stripe of `make run` and the tests: the same calls);
`adapters/stripe_memory.py` is its in-memory twin for application tests.

Every view is a snapshot of Stripe's object *now*: webhook handlers read the object again
instead of trusting the event's copy, so events arriving late or out of order change nothing
that a newer state already decided (ARCHITECTURE.md §5; issue 12).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

# The reasons Stripe accepts on a refund; anything else is refused before Stripe is asked.
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


@dataclass(frozen=True, slots=True)
class LineItem:
    """One line of a checkout: a price made on the fly (the catalogue lives in our events)."""

    name: str
    unit_amount: int  # minor units
    currency: str  # ISO 4217, upper case here; the adapter sends it as Stripe wants
    quantity: int = 1
    interval: Literal["month", "year"] | None = None  # recurring when set


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    mode: Literal["payment", "subscription"]
    line: LineItem
    success_url: str
    cancel_url: str
    client_reference_id: str  # our order or subscription id
    metadata: Mapping[str, str]
    expires_at: datetime | None = None
    customer_id: str | None = None  # reuse the buyer's Stripe customer (portal, saved card)
    customer_email: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class CheckoutSessionView:
    id: str
    url: str | None
    mode: str
    status: str  # open | complete | expired
    payment_status: str  # unpaid | paid | no_payment_required
    client_reference_id: str | None
    metadata: Mapping[str, str]
    payment_intent_id: str | None
    subscription_id: str | None
    customer_id: str | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class ChargeView:
    """A charge with its balance transaction: gross, Stripe's fee and net, in minor units."""

    id: str
    payment_intent_id: str | None
    status: str  # succeeded | pending | failed
    paid: bool
    amount: int
    currency: str  # upper case
    fee: int
    net: int
    amount_refunded: int
    created: datetime
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    id: str
    status: str  # Stripe's: incomplete, active, past_due, canceled, ...
    customer_id: str | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    latest_invoice_id: str | None
    latest_invoice_paid: bool
    metadata: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class InvoiceView:
    id: str
    status: str  # draft | open | paid | uncollectible | void
    subscription_id: str | None
    charge_id: str | None
    payment_intent_id: str | None
    amount_paid: int
    currency: str
    billing_reason: str | None
    hosted_invoice_url: str | None = None


@dataclass(frozen=True, slots=True)
class RefundView:
    id: str
    status: str  # pending | succeeded | failed | canceled
    amount: int
    currency: str
    charge_id: str | None
    payment_intent_id: str | None


@dataclass(frozen=True, slots=True)
class ConnectAccountView:
    id: str
    details_submitted: bool
    charges_enabled: bool
    payouts_enabled: bool
    disabled_reason: str | None
    metadata: Mapping[str, str]


class Stripe(Protocol):
    """The calls payment makes to Stripe. Each raises `PaymentProviderError` (502) when Stripe
    refuses or cannot be reached, never the SDK's own exceptions."""

    async def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSessionView: ...

    async def checkout_session(self, session_id: str) -> CheckoutSessionView: ...

    async def expire_checkout_session(self, session_id: str) -> CheckoutSessionView: ...

    async def charge_of_payment_intent(self, payment_intent_id: str) -> ChargeView | None:
        """The intent's latest charge with its balance transaction; None while none exists."""
        ...

    async def charge(self, charge_id: str) -> ChargeView: ...

    async def subscription(self, subscription_id: str) -> SubscriptionView: ...

    async def cancel_subscription_at_period_end(self, subscription_id: str) -> SubscriptionView: ...

    async def invoice(self, invoice_id: str) -> InvoiceView: ...

    async def refund(
        self, *, payment_intent_id: str, amount: int | None, idempotency_key: str, reason: str
    ) -> RefundView:
        """Refunds `amount` (None: what is left) of the intent's charge, once per key; `reason`
        outside `REFUND_REASONS` -> `ValidationFailed` (400)."""
        ...

    async def create_customer(self, *, email: str | None, account_id: str) -> str: ...

    async def portal_session(self, *, customer_id: str, return_url: str) -> str:
        """The URL of a customer portal session (change the card, cancel)."""
        ...

    async def create_connect_account(self, *, email: str | None, account_id: str) -> str: ...

    async def connect_account(self, connect_account_id: str) -> ConnectAccountView: ...

    async def onboarding_link(
        self, *, connect_account_id: str, refresh_url: str, return_url: str
    ) -> str: ...
