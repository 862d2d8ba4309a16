"""Payments: the orchestration between the application and Stripe (through the `Stripe` port).

Checkouts for orders and subscriptions, the webhook's events, the customer portal and Connect
onboarding. The event-sourced application decides and records; this layer only reads and asks
Stripe, and it is where Stripe's at-least-once, out-of-order delivery is absorbed:

- every Stripe event is handled once (a receipt per event id, after its effects) and its
  effects are idempotent anyway (ledger ids derived from the charge, an order paid once);
- a handler never trusts the event's copy of an object: it reads the object back from Stripe,
  so an `invoice.paid` arriving before `customer.subscription.created` finds the subscription
  as it is now, and a late, stale event changes nothing a newer state already decided;
- a late payment (an order paid twice, expired or failed) is refunded at Stripe and booked; a
  refund that failed at Stripe is tried again by the next delivery of any event of that order.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar
from uuid import UUID

from audifi_kit.errors import Forbidden, PaymentProviderError

from audifi_payment.application import PaymentApplication
from audifi_payment.application.stripe_port import (
    ChargeView,
    CheckoutRequest,
    CheckoutSessionView,
    LineItem,
    Stripe,
    SubscriptionView,
)
from audifi_payment.domain.order import (
    PAYABLE,
    Order,
    OrderClosed,
    OrderNotFound,
)
from audifi_payment.domain.stripe_links import ConnectAccount
from audifi_payment.domain.subscription import (
    StripeSubscriptionState,
    Subscription,
    SubscriptionNotFound,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

ORDER_KEY = "order_id"
SUBSCRIPTION_KEY = "subscription_id"
# Stripe accepts a checkout's expiry from 30 minutes to 24 hours after it creates the
# session, by its own clock, in whole seconds. Asked at the edges, the request is refused
# when it reaches Stripe a second later than our clock read (CI saw it: 30 minutes asked
# at x.9 s arrived at x+1 s): a minute's margin on both sides.
CHECKOUT_MIN = timedelta(minutes=31)
CHECKOUT_MAX = timedelta(hours=23, minutes=59)


class EventStoreCalls(Protocol):
    """The kit's EventStore as this layer uses it (`DirectCalls` in memory)."""

    app: PaymentApplication

    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T: ...


@dataclass(frozen=True)
class PaymentConfig:
    platform_fee_bps: int = 500  # PLATFORM_FEE_BPS: 5 % of every paid charge
    public_url: str = "http://127.0.0.1:8080"  # where checkout returns the buyer by default


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Payments:
    store: EventStoreCalls
    stripe: Stripe
    config: PaymentConfig = field(default_factory=PaymentConfig)
    clock: Callable[[], datetime] = _now

    @property
    def app(self) -> PaymentApplication:
        return self.store.app

    # --- checkout -----------------------------------------------------------------------

    async def checkout_order(
        self,
        buyer_id: str,
        order_id: UUID,
        *,
        success_url: str | None = None,
        cancel_url: str | None = None,
        email: str | None = None,
    ) -> CheckoutSessionView:
        """A Stripe checkout for an order the buyer owns and can still pay."""
        order: Order = await self.store.call(self.app.order, order_id)
        if order.buyer_id != buyer_id:
            raise Forbidden("This order is another buyer's")
        now = self.clock()
        if order.status not in PAYABLE or order.expires_at <= now:
            raise OrderClosed(details={"orderId": str(order_id), "status": order.status})
        session = await self.stripe.create_checkout_session(
            CheckoutRequest(
                mode="payment",
                line=LineItem(order.title, order.unit_amount, order.currency, order.quantity),
                success_url=success_url or self._page("paid"),
                cancel_url=cancel_url or self._page("canceled"),
                client_reference_id=str(order.id),
                metadata={ORDER_KEY: str(order.id)},
                expires_at=min(max(order.expires_at, now + CHECKOUT_MIN), now + CHECKOUT_MAX),
                customer_id=await self._customer(buyer_id, email),
            )
        )
        await self.store.call(self.app.start_checkout, order.id, session.id, at=now)
        return session

    async def expire_overdue_order(self, order_id: UUID) -> str:
        """An order nobody paid before its expiry: its open checkouts are expired at Stripe
        first (so no payment can complete there any more), then the order, which publishes
        `payment.order.expired` and lets the seller release what it reserved. A checkout
        found paid meanwhile settles the order instead (paid in time, or refunded if late).

        A checkout outlives its order (Stripe's sessions last 30 minutes at least), and an
        order whose buyer never opened one has no checkout to expire: without this the
        seller's reservation would be held until Stripe's session expired, or forever."""
        order: Order = await self.store.call(self.app.order, order_id)
        now = self.clock()
        if order.status not in PAYABLE or order.expires_at > now:
            return f"order {order.status}"
        for session_id in order.checkout_session_ids:
            session = await self.stripe.checkout_session(session_id)
            if session.status == "open":
                try:
                    session = await self.stripe.expire_checkout_session(session_id)
                except PaymentProviderError:  # completed meanwhile: read what it became
                    session = await self.stripe.checkout_session(session_id)
            if session.payment_status == "paid" and session.payment_intent_id:
                return await self._settle_intent(order_id, session.payment_intent_id)
        expired = await self.store.call(self.app.expire_order, order_id, at=now)
        return f"order {expired.status}"

    async def subscribe(
        self,
        fan_id: str,
        tier_id: UUID,
        *,
        success_url: str | None = None,
        cancel_url: str | None = None,
        email: str | None = None,
    ) -> tuple[Subscription, CheckoutSessionView]:
        """The fan's subscription to the tier, incomplete until Stripe says it is paid, and
        the checkout that pays its first period."""
        now = self.clock()
        subscription: Subscription = await self.store.call(
            self.app.open_subscription, fan_id, tier_id, at=now
        )
        tier = await self.store.call(self.app.tier, tier_id)
        session = await self.stripe.create_checkout_session(
            CheckoutRequest(
                mode="subscription",
                line=LineItem(
                    tier.name,
                    subscription.price_cents,
                    subscription.currency,
                    1,
                    interval=subscription.interval,  # type: ignore[arg-type]
                ),
                success_url=success_url or self._page("subscribed"),
                cancel_url=cancel_url or self._page("canceled"),
                client_reference_id=str(subscription.id),
                metadata={SUBSCRIPTION_KEY: str(subscription.id)},
                expires_at=now + CHECKOUT_MAX,
                customer_id=await self._customer(fan_id, email),
            )
        )
        return subscription, session

    async def portal(self, user_id: str, *, return_url: str | None = None) -> str:
        """A customer portal session's URL (change the card, cancel)."""
        customer = await self.store.call(self.app.stripe_customer_of, user_id)
        if customer is None:
            raise Forbidden("No payment on record yet: nothing to manage")
        return await self.stripe.portal_session(
            customer_id=customer, return_url=return_url or self._page("account")
        )

    async def cancel_subscription(
        self, fan_id: str, subscription_id: UUID | None, *, admin: bool = False
    ) -> Subscription:
        """At the end of the paid period, at Stripe first: Stripe's answer is then synced."""
        subscription: Subscription = await self.store.call(
            self.app.request_cancel, fan_id, subscription_id, at=self.clock(), admin=admin
        )
        if subscription.stripe_subscription_id:
            view = await self.stripe.cancel_subscription_at_period_end(
                subscription.stripe_subscription_id
            )
            subscription = await self._sync(subscription.id, view)
        return subscription

    # --- Connect ------------------------------------------------------------------------

    async def onboard(
        self,
        user_id: str,
        *,
        email: str | None,
        refresh_url: str | None = None,
        return_url: str | None = None,
    ) -> tuple[ConnectAccount, str]:
        """The user's Express account (created once) and a fresh onboarding link."""
        account = await self.store.call(self.app.find_connect_account, user_id)
        if account is None:
            stripe_id = await self.stripe.create_connect_account(email=email, account_id=user_id)
            account = await self.store.call(
                self.app.create_connect_account, user_id, stripe_id, at=self.clock()
            )
        link = await self.stripe.onboarding_link(
            connect_account_id=account.stripe_account_id,
            refresh_url=refresh_url or self._page("onboarding"),
            return_url=return_url or self._page("onboarded"),
        )
        return account, link

    # --- Stripe's events ----------------------------------------------------------------

    async def handle_event(self, event: Mapping[str, Any]) -> str:
        """One verified Stripe event; what it did (for the log and the tests)."""
        event_id, kind = str(event["id"]), str(event["type"])
        if await self.store.call(self.app.stripe_event_handled, event_id):
            return "duplicate"
        obj = event.get("data", {}).get("object", {}) or {}
        handler = self._handlers().get(kind)
        try:
            outcome = "ignored" if handler is None else await handler(obj)
        except (OrderNotFound, SubscriptionNotFound) as exc:
            # Metadata naming an order or subscription this service never had: not ours to
            # book, and no retry by Stripe would change that.
            log.warning("stripe event %s (%s) names %s: ignored", event_id, kind, exc.details)
            outcome = f"ignored: {exc.code}"
        await self.store.call(
            self.app.record_stripe_event, event_id, kind, outcome, at=self.clock()
        )
        log.info("stripe event %s (%s): %s", event_id, kind, outcome)
        return outcome

    def _handlers(self) -> dict[str, Callable[[Mapping[str, Any]], Awaitable[str]]]:
        return {
            "checkout.session.completed": self._on_session,
            "checkout.session.async_payment_succeeded": self._on_session,
            "checkout.session.expired": self._on_session,
            "payment_intent.succeeded": self._on_intent,
            "charge.succeeded": self._on_charge,
            "payment_intent.payment_failed": self._on_failed_intent,
            "invoice.paid": self._on_invoice,
            "invoice.payment_succeeded": self._on_invoice,
            "invoice.payment_failed": self._on_invoice,
            "invoice.created": self._on_invoice,
            "customer.subscription.created": self._on_subscription,
            "customer.subscription.updated": self._on_subscription,
            "customer.subscription.deleted": self._on_subscription,
            "account.updated": self._on_account,
        }

    async def _on_session(self, obj: Mapping[str, Any]) -> str:
        session = await self.stripe.checkout_session(str(obj["id"]))
        if ORDER_KEY in session.metadata:
            order_id = UUID(session.metadata[ORDER_KEY])
            if session.payment_status == "paid" and session.payment_intent_id:
                return await self._settle_intent(order_id, session.payment_intent_id)
            if session.status == "expired":
                expired = await self.store.call(self.app.expire_order, order_id, at=self.clock())
                return f"order {expired.status}"
            return "order awaiting payment"
        if SUBSCRIPTION_KEY in session.metadata:
            subscription_id = UUID(session.metadata[SUBSCRIPTION_KEY])
            if session.subscription_id:
                view = await self.stripe.subscription(session.subscription_id)
                return f"subscription {(await self._sync(subscription_id, view)).status}"
            if session.status == "expired":
                await self.store.call(
                    self.app.abandon_subscription, subscription_id, at=self.clock()
                )
                return "subscription abandoned"
            return "subscription awaiting payment"
        return "ignored: not ours"

    async def _on_intent(self, obj: Mapping[str, Any]) -> str:
        metadata = obj.get("metadata") or {}
        if ORDER_KEY not in metadata:
            return "ignored: settled through its checkout or invoice"
        return await self._settle_intent(UUID(metadata[ORDER_KEY]), str(obj["id"]))

    async def _on_charge(self, obj: Mapping[str, Any]) -> str:
        metadata = obj.get("metadata") or {}
        intent = obj.get("payment_intent")
        if ORDER_KEY not in metadata or not intent:
            return "ignored: settled through its checkout or invoice"
        return await self._settle_intent(UUID(metadata[ORDER_KEY]), str(intent))

    async def _on_failed_intent(self, obj: Mapping[str, Any]) -> str:
        # A declined card books nothing and closes nothing: the buyer may try another card
        # on the same checkout until it expires.
        return "payment failed: nothing booked"

    async def _on_invoice(self, obj: Mapping[str, Any]) -> str:
        invoice = await self.stripe.invoice(str(obj["id"]))
        if not invoice.subscription_id:
            return "ignored: not a subscription's invoice"
        view = await self.stripe.subscription(invoice.subscription_id)
        if SUBSCRIPTION_KEY not in view.metadata:
            return "ignored: not ours"
        subscription_id = UUID(view.metadata[SUBSCRIPTION_KEY])
        subscription = await self._sync(subscription_id, view)
        outcome = f"subscription {subscription.status}"
        if invoice.status == "paid" and invoice.charge_id:
            charge = await self.stripe.charge(invoice.charge_id)
            if charge.paid:
                await self.store.call(
                    self.app.settle_subscription_charge,
                    subscription_id,
                    charge,
                    platform_fee_bps=self.config.platform_fee_bps,
                )
                outcome += f", charge {charge.id} booked"
        return outcome

    async def _on_subscription(self, obj: Mapping[str, Any]) -> str:
        view = await self.stripe.subscription(str(obj["id"]))
        if SUBSCRIPTION_KEY not in view.metadata:
            return "ignored: not ours"
        subscription = await self._sync(UUID(view.metadata[SUBSCRIPTION_KEY]), view)
        return f"subscription {subscription.status}"

    async def _on_account(self, obj: Mapping[str, Any]) -> str:
        view = await self.stripe.connect_account(str(obj["id"]))
        user_id = view.metadata.get("account_id")
        if not user_id:
            return "ignored: not ours"
        account = await self.store.call(
            self.app.observe_connect_account,
            user_id,
            details_submitted=view.details_submitted,
            charges_enabled=view.charges_enabled,
            disabled_reason=view.disabled_reason,
            at=self.clock(),
        )
        return f"connect account {account.status}"

    # --- settling -----------------------------------------------------------------------

    async def _settle_intent(self, order_id: UUID, payment_intent_id: str) -> str:
        charge = await self.stripe.charge_of_payment_intent(payment_intent_id)
        if charge is None or not charge.paid:
            return "order awaiting payment"
        settled = await self.store.call(
            self.app.settle_order_charge,
            order_id,
            charge,
            platform_fee_bps=self.config.platform_fee_bps,
        )
        outcome = f"order {settled.outcome}"
        order: Order = await self.store.call(self.app.order, order_id)
        if payment_intent_id in order.refunds_due:
            await self._refund_late_payment(order, charge)
            outcome += ", refunded"
        return outcome

    async def _refund_late_payment(self, order: Order, charge: ChargeView) -> None:
        late = order.late_payments[charge.payment_intent_id or charge.id]
        refund = await self.stripe.refund(
            payment_intent_id=charge.payment_intent_id or charge.id,
            amount=charge.amount,
            idempotency_key=f"late-payment-{order.id}-{charge.id}",
            reason="duplicate" if late.reason == "paid_already" else "requested_by_customer",
        )
        await self.store.call(
            self.app.book_order_refund,
            order.id,
            charge.payment_intent_id or charge.id,
            refund,
            at=self.clock(),
        )

    async def _sync(self, subscription_id: UUID, view: SubscriptionView) -> Subscription:
        subscription: Subscription = await self.store.call(self.app.subscription, subscription_id)
        if subscription.stripe_subscription_id is None:
            subscription = await self.store.call(
                self.app.attach_stripe_ids, subscription_id, view.id, view.customer_id
            )
        return await self.store.call(
            self.app.sync_subscription,
            subscription_id,
            StripeSubscriptionState(
                stripe_subscription_id=view.id,
                stripe_customer_id=view.customer_id,
                status=view.status,
                current_period_end=view.current_period_end,
                cancel_at_period_end=view.cancel_at_period_end,
                latest_invoice_id=view.latest_invoice_id,
                latest_invoice_paid=view.latest_invoice_paid,
            ),
            at=self.clock(),
        )

    async def _customer(self, user_id: str, email: str | None) -> str:
        customer = await self.store.call(self.app.stripe_customer_of, user_id)
        if customer is None:
            created = await self.stripe.create_customer(email=email, account_id=user_id)
            customer = await self.store.call(
                self.app.link_stripe_customer, user_id, created, at=self.clock()
            )
        return customer

    def _page(self, name: str) -> str:
        return f"{self.config.public_url.rstrip('/')}/checkout/{name}"
