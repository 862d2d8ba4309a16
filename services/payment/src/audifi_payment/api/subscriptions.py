"""Tiers and subscriptions (AudiFi + Bucket).

`GET/POST /tiers`, `POST /tiers/{tierId}/archive`; `POST /subscriptions` (subscribe through
Checkout), `GET /subscriptions` (mine), `GET /subscriptions/{fanId}` (self or admin),
`POST /subscriptions/cancel` (at period end; without an id, the one active subscription).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from uuid import UUID

import asyncpg
import msgspec
from audifi_kit.errors import Conflict, Forbidden, NotFound, PaymentProviderError
from audifi_kit.fields import UuidText
from audifi_kit.http import Identity
from audifi_kit.http.fields import query_parameter
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from audifi_payment import queries
from audifi_payment.api.checkout import CheckoutRequest, CheckoutSession, Url, checkout
from audifi_payment.api.dependencies import (
    IDEMPOTENT,
    PaymentContext,
    is_admin,
    pool,
    provide_payment,
)
from audifi_payment.domain.subscription import Subscription
from audifi_payment.domain.tier import Tier, TierName
from audifi_payment.domain.values import Currency
from audifi_payment.queries import SubscriptionView, TierView


class NotAnArtist(Forbidden):
    default_message = "Only an artist (or an admin) may define tiers"


class NotYourSubscriptions(Forbidden):
    default_message = "Only the fan (or an admin) may read these subscriptions"


class TierList(msgspec.Struct, rename="camel", kw_only=True):
    items: list[TierView]
    next_cursor: str | None = None


class TierDefinition(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    name: TierName
    price_cents: Annotated[int, msgspec.Meta(ge=1, le=100_000_000)]
    currency: Currency
    interval: Literal["month", "year"]
    artist_id: UuidText | None = None  # an admin defining a tier for an artist


class SubscriptionList(msgspec.Struct, rename="camel", kw_only=True):
    items: list[SubscriptionView]
    next_cursor: str | None = None


class SubscribeRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    tier_id: UUID
    success_url: Url | None = None
    cancel_url: Url | None = None


class CancelRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    subscription_id: UUID | None = None


def tier_view(t: Tier) -> TierView:
    """The tier as the `tiers` view shows it, from the aggregate a command just changed."""
    return TierView(
        id=t.id,
        artist_id=t.artist_id,
        name=t.name,
        price_cents=t.price_cents,
        currency=t.currency,
        interval=t.interval,
        archived=t.archived,
        created_at=t.defined_at,
        archived_at=t.archived_at,
    )


def subscription_view(s: Subscription) -> SubscriptionView:
    return SubscriptionView(
        id=s.id,
        fan_id=s.fan_id,
        artist_id=s.artist_id,
        tier_id=s.tier_id,
        price_cents=s.price_cents,
        currency=s.currency,
        interval=s.interval,
        status=s.status,
        current_period_end=s.current_period_end,
        cancel_at_period_end=s.cancel_at_period_end,
        opened_at=s.opened_at,
        started_at=s.started_at,
        canceled_at=s.canceled_at,
        stripe_subscription_id=s.stripe_subscription_id,
        stripe_customer_id=s.stripe_customer_id,
    )


class TierController(Controller):
    path = "/tiers"
    dependencies = {"payment": Provide(provide_payment)}

    @get("/")
    async def list_tiers(
        self,
        state: State,
        artistId: Annotated[
            str | None, query_parameter(UuidText, description="Only this artist's tiers")
        ] = None,
    ) -> TierList:
        """The tiers fans can subscribe to (archived ones included, marked)."""
        return TierList(items=await queries.tiers(pool(state), artistId))

    @post("/", status_code=201, raises=(NotAnArtist,))
    async def define(
        self,
        data: JSONBody[TierDefinition],
        identity: NamedDependency[Identity],
        payment: NamedDependency[PaymentContext],
    ) -> TierView:
        """An artist's tier: name, price per interval, currency."""
        admin = is_admin(identity)
        if not admin and not identity.has_any("artist"):
            raise NotAnArtist()
        artist_id = data.artist_id if admin and data.artist_id else identity.user_id
        tier = await payment.store.call(
            payment.app.define_tier,
            artist_id=artist_id,
            name=data.name,
            price_cents=data.price_cents,
            currency=data.currency,
            interval=data.interval,
            at=datetime.now(UTC),
            by=identity.user_id,
            admin=admin,
        )
        return tier_view(tier)

    @post("/{tier_id:uuid}/archive", status_code=200, raises=(NotFound, Forbidden))
    async def archive(
        self,
        tier_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        payment: NamedDependency[PaymentContext],
    ) -> TierView:
        """No new subscriber; existing subscriptions go on."""
        tier = await payment.store.call(
            payment.app.archive_tier,
            tier_id,
            at=datetime.now(UTC),
            by=identity.user_id,
            admin=is_admin(identity),
        )
        return tier_view(tier)


class SubscriptionController(Controller):
    path = "/subscriptions"
    dependencies = {"payment": Provide(provide_payment)}

    @post(
        "/",
        status_code=201,
        opt=IDEMPOTENT,
        raises=(NotFound, Conflict, Forbidden, PaymentProviderError),
    )
    async def subscribe(
        self,
        data: JSONBody[SubscribeRequest],
        identity: NamedDependency[Identity],
        payment: NamedDependency[PaymentContext],
    ) -> CheckoutSession:
        """Subscribe to an artist's tier: a Stripe Checkout session to pay the first period."""
        return await checkout(
            payment,
            identity,
            CheckoutRequest(
                tier_id=data.tier_id, success_url=data.success_url, cancel_url=data.cancel_url
            ),
        )

    @get("/")
    async def mine(self, state: State, identity: NamedDependency[Identity]) -> SubscriptionList:
        """The caller's subscriptions, newest first."""
        return await _subscriptions_of(pool(state), identity.user_id)

    @get("/{fan_id:uuid}", raises=(NotYourSubscriptions,))
    async def of_fan(
        self, state: State, fan_id: FromPath[UUID], identity: NamedDependency[Identity]
    ) -> SubscriptionList:
        """A fan's subscriptions: the fan themself or an admin only."""
        fan = str(fan_id)
        if fan != identity.user_id and not is_admin(identity):
            raise NotYourSubscriptions()
        return await _subscriptions_of(pool(state), fan)

    @post("/cancel", status_code=200, raises=(NotFound, Forbidden, Conflict, PaymentProviderError))
    async def cancel(
        self,
        data: JSONBody[CancelRequest],
        identity: NamedDependency[Identity],
        payment: NamedDependency[PaymentContext],
    ) -> SubscriptionView:
        """Cancel at the end of the paid period; without an id, the one active subscription."""
        subscription = await payment.service.cancel_subscription(
            identity.user_id, data.subscription_id, admin=is_admin(identity)
        )
        return subscription_view(subscription)


async def _subscriptions_of(db: asyncpg.Pool, fan_id: str) -> SubscriptionList:
    return SubscriptionList(items=await queries.subscriptions_of(db, fan_id))
