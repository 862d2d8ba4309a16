"""Checkout, the customer portal and Stripe's webhook (at the three paths the seeds name).

`POST /payments/checkout` pays an order (one-time) or a tier (recurring: a subscription);
`POST /payments/portal` opens Stripe's customer portal; `POST /payments/webhook`,
`/webhooks/stripe` and `/stripe/webhook` are one handler: the signature is verified over the
raw body (Stripe's scheme, 300 s tolerance) before anything is read, then the event is handled
once (`Payments.handle_event`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec
from audifi_kit.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PaymentProviderError,
    Unavailable,
    ValidationFailed,
)
from audifi_kit.http import Identity
from litestar import Controller, Request, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from audifi_payment.adapters.stripe_sdk import verify_webhook
from audifi_payment.api.dependencies import (
    IDEMPOTENT,
    PUBLIC,
    PaymentContext,
    provide_payment,
)

Url = Annotated[
    str,
    msgspec.Meta(
        max_length=2000,
        pattern=r"^https?://[^\s\x00-\x1f\x7f]+$",
        description="An http(s) URL the buyer is sent to",
    ),
]

CHECKOUT_REFUSALS = (Forbidden, NotFound, Conflict, PaymentProviderError)
WEBHOOK_REFUSALS = (ValidationFailed, Unavailable)


class CheckoutRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """Exactly one of `orderId` (pay an order a seller opened for you, once) or `tierId`
    (subscribe to an artist's tier, paid every interval)."""

    order_id: UUID | None = None
    tier_id: UUID | None = None
    success_url: Url | None = None
    cancel_url: Url | None = None


class CheckoutSession(msgspec.Struct, rename="camel", kw_only=True):
    session_id: str
    url: str | None
    mode: str
    order_id: UUID | None = None
    subscription_id: UUID | None = None
    expires_at: datetime | None = None


class PortalRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    return_url: Url | None = None


class PortalSession(msgspec.Struct, rename="camel", kw_only=True):
    url: str


class WebhookReceipt(msgspec.Struct, rename="camel", kw_only=True):
    received: bool
    outcome: str


async def checkout(
    payment: PaymentContext, identity: Identity, data: CheckoutRequest
) -> CheckoutSession:
    if (data.order_id is None) == (data.tier_id is None):
        raise ValidationFailed(
            "Name exactly one of orderId (one-time) or tierId (recurring)",
            details={"fields": [{"field": "orderId", "message": "orderId or tierId"}]},
        )
    if data.order_id is not None:
        session = await payment.service.checkout_order(
            identity.user_id,
            data.order_id,
            success_url=data.success_url,
            cancel_url=data.cancel_url,
        )
        return CheckoutSession(
            session_id=session.id,
            url=session.url,
            mode=session.mode,
            order_id=data.order_id,
            expires_at=session.expires_at,
        )
    assert data.tier_id is not None
    subscription, session = await payment.service.subscribe(
        identity.user_id, data.tier_id, success_url=data.success_url, cancel_url=data.cancel_url
    )
    return CheckoutSession(
        session_id=session.id,
        url=session.url,
        mode=session.mode,
        subscription_id=subscription.id,
        expires_at=session.expires_at,
    )


class CheckoutController(Controller):
    path = "/payments"
    dependencies = {"payment": Provide(provide_payment)}

    @post("/checkout", status_code=201, opt=IDEMPOTENT, raises=CHECKOUT_REFUSALS)
    async def checkout(
        self,
        data: JSONBody[CheckoutRequest],
        identity: NamedDependency[Identity],
        payment: NamedDependency[PaymentContext],
    ) -> CheckoutSession:
        """A Stripe Checkout session: its id and the URL where the buyer pays."""
        return await checkout(payment, identity, data)

    @post("/portal", status_code=201, raises=(Forbidden, PaymentProviderError))
    async def portal(
        self,
        data: JSONBody[PortalRequest],
        identity: NamedDependency[Identity],
        payment: NamedDependency[PaymentContext],
    ) -> PortalSession:
        """A customer portal session (change the card, cancel a subscription)."""
        url = await payment.service.portal(identity.user_id, return_url=data.return_url)
        return PortalSession(url=url)


async def _webhook(request: Request, payment: PaymentContext) -> WebhookReceipt:
    secret = payment.settings.stripe_webhook_secret
    if not secret:
        raise Unavailable("Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET)")
    payload = await request.body()
    event = verify_webhook(
        payload,
        request.headers.get("stripe-signature", ""),
        secret,
        tolerance=payment.settings.webhook_tolerance,
    )
    outcome = await payment.service.handle_event(event)
    return WebhookReceipt(received=True, outcome=outcome)


class WebhookController(Controller):
    """Stripe's events, signed with STRIPE_WEBHOOK_SECRET; no user token."""

    dependencies = {"payment": Provide(provide_payment)}

    @post("/payments/webhook", opt=PUBLIC, status_code=200, raises=WEBHOOK_REFUSALS)
    async def audifi(
        self, request: Request, payment: NamedDependency[PaymentContext]
    ) -> WebhookReceipt:
        """Stripe webhook handler (AudiFi's path)."""
        return await _webhook(request, payment)

    @post("/webhooks/stripe", opt=PUBLIC, status_code=200, raises=WEBHOOK_REFUSALS)
    async def bucket(
        self, request: Request, payment: NamedDependency[PaymentContext]
    ) -> WebhookReceipt:
        """Stripe webhook handler (Bucket's path)."""
        return await _webhook(request, payment)

    @post("/stripe/webhook", opt=PUBLIC, status_code=200, raises=WEBHOOK_REFUSALS)
    async def treasury(
        self, request: Request, payment: NamedDependency[PaymentContext]
    ) -> WebhookReceipt:
        """Stripe webhook handler (the treasury's path)."""
        return await _webhook(request, payment)
