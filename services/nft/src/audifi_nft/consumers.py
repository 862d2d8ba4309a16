"""Integration events in: payment's verdicts on the orders nft asked for, auth's word on
buyers' wallets (`wallets_consumer`), and payment's word on fans' subscriptions for Bucket's
lockers (`subscriptions_consumer`, at the end).

An IPO purchase by card is an order whose id is the reservation's and whose product names
the IPO (`outbox.py`). `payment.order.paid` allocates the reserved shares (the same payment
again is a duplicate; a payment for a reservation already released is recorded as needing a
refund, never allocated); `expired` and `failed` release them. A Coda investment by card is
the same with a project: paid, it is invested (in escrow); expired or failed, it lapses.
Each verdict is saved with the message's inbox row (`store=True`): applied exactly once. A
hot IPO or project changes under a handler (buyers reserving): a lost race is decided again
at once, a few times, before the kit's delayed retries. Orders of other products (coin's
lottery tickets) are not this consumer's: acknowledged, nothing done.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from audifi_events.auth import AccountRegistered, WalletLinked
from audifi_events.payment import (
    OrderExpired,
    OrderFailed,
    OrderPaid,
    SubscriptionCanceled,
    SubscriptionFacts,
    SubscriptionPastDue,
    SubscriptionRenewed,
    SubscriptionStarted,
    TierArchived,
    TierDefined,
)
from audifi_events.vstudio import SessionLocked
from audifi_kit.inbox import Consumer, HandlerContext
from eventsourcing.persistence import IntegrityError

from audifi_nft.domain.locker import ACTIVE, CANCELED, PAST_DUE
from audifi_nft.outbox import FUNDING_KIND, PRODUCT_KIND

QUEUE_PURPOSE = "orders"
RACES = 5  # decided again at once after a lost race, before the kit's delayed retries


def _ipo_of(product: Any) -> UUID | None:
    if product.service != "nft" or product.kind != PRODUCT_KIND:
        return None
    return UUID(product.reference)


def _project_of(product: Any) -> UUID | None:
    if product.service != "nft" or product.kind != FUNDING_KIND:
        return None
    return UUID(product.reference)


async def _decide_and_save(ctx: HandlerContext, decide: Callable[[], tuple[Any, Any]]) -> None:
    assert ctx.store is not None
    for attempt in range(RACES):
        changed, _ = await ctx.store.call(decide)
        if not changed.pending_events:  # nothing to record (a duplicate, already released)
            return
        try:
            await ctx.save(changed)
            return
        except IntegrityError:
            if attempt == RACES - 1:
                raise


def orders_consumer(purpose: str = QUEUE_PURPOSE) -> Consumer:
    consumer = Consumer("nft", purpose)

    @consumer.handler("payment.order.paid", store=True)
    async def paid(e: OrderPaid, ctx: HandlerContext) -> None:
        assert ctx.store is not None
        app = ctx.store.app
        project_id = _project_of(e.product)
        if project_id is not None:
            await _decide_and_save(
                ctx,
                lambda: app.decide_investment_payment(
                    project_id,
                    investment_id=e.order_id,
                    payment=e.payment_intent_id,
                    paid_at=e.paid_at,
                ),
            )
            return
        ipo_id = _ipo_of(e.product)
        if ipo_id is None:
            return
        await _decide_and_save(
            ctx,
            lambda: app.decide_payment(
                ipo_id, reservation_id=e.order_id, payment=e.payment_intent_id, paid_at=e.paid_at
            ),
        )

    @consumer.handler("payment.order.expired", store=True)
    async def expired(e: OrderExpired, ctx: HandlerContext) -> None:
        await _release(e.product, e.order_id, "expired", ctx)

    @consumer.handler("payment.order.failed", store=True)
    async def failed(e: OrderFailed, ctx: HandlerContext) -> None:
        await _release(e.product, e.order_id, "failed", ctx)

    return consumer


async def _release(product: Any, order_id: str, reason: str, ctx: HandlerContext) -> None:
    assert ctx.store is not None
    app = ctx.store.app
    project_id = _project_of(product)
    if project_id is not None:
        await _decide_and_save(
            ctx,
            lambda: app.decide_lapse(
                project_id, investment_id=order_id, reason=reason, now=datetime.now(UTC)
            ),
        )
        return
    ipo_id = _ipo_of(product)
    if ipo_id is None:
        return
    await _decide_and_save(
        ctx,
        lambda: app.decide_release(
            ipo_id, reservation_id=order_id, reason=reason, now=datetime.now(UTC)
        ),
    )


WALLETS_PURPOSE = "wallets"


def wallets_consumer(purpose: str = WALLETS_PURPOSE) -> Consumer:
    """auth's word on which EVM wallets an account controls: where its shares are minted.

    Two wallets linked at once by one account race on its record: decided again, as above."""
    consumer = Consumer("nft", purpose)

    async def link(account_id: str, address: str, at: datetime, ctx: HandlerContext) -> None:
        assert ctx.store is not None
        app = ctx.store.app
        for attempt in range(RACES):
            wallets = await ctx.store.call(app.decide_link_wallet, account_id, address, at=at)
            if not wallets.pending_events:
                return
            try:
                await ctx.save(wallets)
                return
            except IntegrityError:
                if attempt == RACES - 1:
                    raise

    @consumer.handler("auth.account.registered", store=True)
    async def registered(e: AccountRegistered, ctx: HandlerContext) -> None:
        if e.wallet_address:
            await link(e.account_id, e.wallet_address, e.registered_at, ctx)

    @consumer.handler("auth.wallet.linked", store=True)
    async def linked(e: WalletLinked, ctx: HandlerContext) -> None:
        if e.chain == "evm":
            await link(e.account_id, e.wallet_address, e.linked_at, ctx)

    return consumer


SUBSCRIPTIONS_PURPOSE = "subscriptions"


def subscriptions_consumer(purpose: str = SUBSCRIPTIONS_PURPOSE) -> Consumer:
    """payment's word on artists' tiers and fans' subscriptions to them, for Bucket's lockers:
    recorded as nft's own facts, a newer one changing an older one, never the reverse (a late
    redelivery never reopens access). The tier a subscription names is recorded from its facts
    when nft does not know it yet."""
    consumer = Consumer("nft", purpose)

    async def told(e: SubscriptionFacts, status: str, as_of: datetime, ctx: HandlerContext) -> None:
        assert ctx.store is not None
        app = ctx.store.app

        def decide() -> list[Any]:
            tier = app.decide_tier(
                tier_id=e.tier_id,
                artist_id=e.artist_id,
                name=e.tier_name or "",
                currency=e.currency,
                price_cents=e.price_cents,
                interval=e.interval,
                at=as_of,
            )
            seen = app.decide_subscription(
                subscription_id=e.subscription_id,
                fan_id=e.fan_id,
                artist_id=e.artist_id,
                tier_id=e.tier_id,
                status=status,
                as_of=as_of,
            )
            return [a for a in (tier, seen) if a.pending_events]

        for attempt in range(RACES):
            changed = await ctx.store.call(decide)
            if not changed:
                return
            try:
                await ctx.save(*changed)
                return
            except IntegrityError:
                if attempt == RACES - 1:
                    raise

    @consumer.handler("payment.tier.defined", store=True)
    async def tier_defined(e: TierDefined, ctx: HandlerContext) -> None:
        assert ctx.store is not None
        tier = await ctx.store.call(
            ctx.store.app.decide_tier,
            tier_id=e.tier_id,
            artist_id=e.artist_id,
            name=e.name,
            currency=e.currency,
            price_cents=e.price_cents,
            interval=e.interval,
            at=e.defined_at,
        )
        if tier.pending_events:
            await ctx.save(tier)

    @consumer.handler("payment.tier.archived", store=True)
    async def tier_archived(e: TierArchived, ctx: HandlerContext) -> None:
        assert ctx.store is not None
        tier = await ctx.store.call(
            ctx.store.app.decide_tier_archived, tier_id=e.tier_id, at=e.archived_at
        )
        if tier is not None and tier.pending_events:
            await ctx.save(tier)

    @consumer.handler("payment.subscription.started", store=True)
    async def started(e: SubscriptionStarted, ctx: HandlerContext) -> None:
        await told(e, ACTIVE, e.started_at, ctx)

    @consumer.handler("payment.subscription.renewed", store=True)
    async def renewed(e: SubscriptionRenewed, ctx: HandlerContext) -> None:
        await told(e, ACTIVE, e.renewed_at, ctx)

    @consumer.handler("payment.subscription.past_due", store=True)
    async def past_due(e: SubscriptionPastDue, ctx: HandlerContext) -> None:
        await told(e, PAST_DUE, e.fell_past_due_at, ctx)

    @consumer.handler("payment.subscription.canceled", store=True)
    async def canceled(e: SubscriptionCanceled, ctx: HandlerContext) -> None:
        await told(e, CANCELED, e.canceled_at, ctx)

    return consumer


STUDIO_PURPOSE = "studio"


def studio_consumer(purpose: str = STUDIO_PURPOSE) -> Consumer:
    """vstudio's lock of a session: the master's creative state is final (once; a lock of a
    master nft does not know is acknowledged and left)."""
    consumer = Consumer("nft", purpose)

    @consumer.handler("vstudio.session.locked", store=True)
    async def locked(e: SessionLocked, ctx: HandlerContext) -> None:
        assert ctx.store is not None
        master = await ctx.store.call(
            ctx.store.app.decide_lock_creative_state,
            UUID(e.master_id),
            session_id=e.session_id,
            at=e.locked_at,
        )
        if master is not None and master.pending_events:
            await ctx.save(master)

    return consumer
