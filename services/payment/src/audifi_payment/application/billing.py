"""Subscription tiers and subscriptions, driven by Stripe's objects.

A fan opens a subscription to a tier (status `incomplete`, awaiting Stripe); the service layer
opens a Checkout for it and, from then on, hands every Stripe subscription it reads to
`sync_subscription`, which follows Stripe's state whatever order the webhooks came in.

`by` is the caller's user id and `admin` whether the caller is an admin.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError

from audifi_payment.application.core import PaymentCore
from audifi_payment.domain.subscription import (
    INCOMPLETE,
    AlreadySubscribed,
    StripeSubscriptionState,
    Subscription,
    SubscriptionBook,
    SubscriptionNotFound,
    subscription_book_id,
)
from audifi_payment.domain.tier import Tier, TierNotFound, TierNotYours
from audifi_payment.domain.values import invalid


class BillingCommands(PaymentCore):
    """Subscription tiers and subscriptions, driven by Stripe's objects."""

    # --- tiers --------------------------------------------------------------------------

    def define_tier(
        self,
        artist_id: str,
        name: Any,
        price_cents: Any,
        currency: Any,
        interval: Any,
        *,
        at: datetime,
        by: str,
        admin: bool = False,
    ) -> Tier:
        if not admin and by != artist_id:
            raise TierNotYours("Tiers are defined by their artist or an admin")
        tier = Tier.define(
            tier_id=uuid4(),
            artist_id=artist_id,
            name=name,
            price_cents=price_cents,
            currency=currency,
            interval=interval,
            at=at,
            by=by,
        )
        self.save(tier)
        return tier

    def archive_tier(self, tier_id: UUID, *, at: datetime, by: str, admin: bool = False) -> Tier:
        """Nobody new may subscribe; existing subscriptions go on."""
        tier = self.tier(tier_id)
        tier.may_be_changed_by(by, admin=admin)
        tier.archive(at=at, by=by)
        self.save(tier)
        return tier

    def tier(self, tier_id: UUID) -> Tier:
        try:
            tier = self.repository.get(tier_id)
        except AggregateNotFoundError:
            tier = None
        if not isinstance(tier, Tier):
            raise TierNotFound(details={"tierId": str(tier_id)})
        return tier

    # --- subscriptions ------------------------------------------------------------------

    def open_subscription(self, fan_id: str, tier_id: UUID, *, at: datetime) -> Subscription:
        """A subscription of `fan_id` to the tier, awaiting its first payment through Stripe.

        A fan who comes back to the same tier before paying gets the same subscription again
        (the service layer opens a new checkout for it); any other live subscription to the
        artist is a 409.
        """
        tier = self.tier(tier_id)
        tier.require_open()
        book = self._subscription_book(fan_id) or SubscriptionBook(fan_id=fan_id)
        current_id = book.current.get(tier.artist_id)
        if current_id is not None:
            current = self.subscription(current_id)
            if not current.closed:
                awaiting_payment = (
                    current.status == INCOMPLETE and current.stripe_subscription_id is None
                )
                if awaiting_payment and current.tier_id == tier.id:
                    return current
                raise AlreadySubscribed(details={"subscriptionId": str(current.id)})
        subscription = Subscription(
            id=uuid4(),
            fan_id=fan_id,
            artist_id=tier.artist_id,
            tier_id=tier.id,
            price_cents=tier.price_cents,
            currency=tier.currency,
            interval=tier.interval,
            opened_at=at,
            tier_name=tier.name,
        )
        book.enter(subscription.id, tier.artist_id)
        self.save(book, subscription)
        return subscription

    def attach_stripe_ids(
        self, subscription_id: UUID, stripe_subscription_id: str, stripe_customer_id: str | None
    ) -> Subscription:
        subscription = self.subscription(subscription_id)
        subscription.attach(stripe_subscription_id, stripe_customer_id)
        self.save(subscription)
        return subscription

    def sync_subscription(
        self, subscription_id: UUID, state: StripeSubscriptionState, *, at: datetime
    ) -> Subscription:
        """Moves the subscription to the Stripe subscription's state as read at `at`."""
        subscription = self.subscription(subscription_id)
        subscription.sync(state, at)
        self.save(subscription)
        return subscription

    def abandon_subscription(self, subscription_id: UUID, *, at: datetime) -> Subscription:
        """The checkout (the subscription's order) expired or failed before Stripe created a
        subscription: it expires, and the fan may subscribe to the artist again."""
        subscription = self.subscription(subscription_id)
        subscription.abandon(at)
        self.save(subscription)
        return subscription

    def request_cancel(
        self,
        fan_id: str,
        subscription_id: UUID | None = None,
        *,
        at: datetime,
        admin: bool = False,
    ) -> Subscription:
        """Cancels at the end of the paid period. Without an id, the fan's one live
        subscription; with none or several, a 400 asking which."""
        if subscription_id is None:
            live = [s for s in self.subscriptions_of(fan_id) if s.live]
            if len(live) != 1:
                raise invalid(
                    "subscriptionId",
                    f"The fan has {len(live)} active subscriptions: name the one to cancel",
                )
            subscription = live[0]
        else:
            subscription = self.subscription(subscription_id)
            subscription.may_be_seen_by(fan_id, admin=admin)
        subscription.request_cancel(at)
        self.save(subscription)
        return subscription

    def subscription(self, subscription_id: UUID) -> Subscription:
        try:
            subscription = self.repository.get(subscription_id)
        except AggregateNotFoundError:
            subscription = None
        if not isinstance(subscription, Subscription):
            raise SubscriptionNotFound(details={"subscriptionId": str(subscription_id)})
        return subscription

    def subscriptions_of(self, fan_id: str) -> list[Subscription]:
        """Every subscription the fan ever opened, oldest first."""
        book = self._subscription_book(fan_id)
        return [self.subscription(i) for i in book.subscription_ids] if book else []

    def _subscription_book(self, fan_id: str) -> SubscriptionBook | None:
        try:
            book = self.repository.get(subscription_book_id(fan_id))
        except AggregateNotFoundError:
            return None
        return book if isinstance(book, SubscriptionBook) else None
