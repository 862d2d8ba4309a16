"""Integration events in: the orders other services ask payment to sell, and the shares of
revenue distributions owed to custody holders.

`payment.order.requested` (nft: IPO shares, Coda funding; coin: lottery tickets in fiat) opens
one order per `orderId`: the seller derives the id from its own request, so a redelivered or
republished request finds the order it opened (`open_order` answers the same order for the
same request, and refuses another request under that id — parked for an operator). The buyer
then pays it with `POST /payments/checkout`.

`nft.distribution.claimable` (one per account a funded distribution owes) pays a custody
holder's share into their balance: one ledger transaction per distribution and account, its
id derived from both, so a redelivered or republished notice books nothing twice
(`domain/distributions.py`). A wallet holder claims on chain: nothing to do here. A share
that payment cannot pay (not USD, fewer than 2 decimals) raises: retried, then parked.

Coda projects' events book their escrow (`domain/escrow.py`): the goal reached holds each
milestone's payout for the artist, an approval posts its hold, a cancellation voids the rest
and refunds the funders into their balances, a claim pays a funder's share of the revenue.
Each booking's id comes from the event's facts: booked once, however often it arrives.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from audifi_events.nft import (
    DistributionClaimable,
    MilestoneApproved,
    ProjectCancelled,
    ProjectGoalReached,
    ProjectPayoutClaimed,
)
from audifi_events.payment import OrderRequest
from audifi_kit.inbox import Consumer, HandlerContext

from audifi_payment.config import PaymentSettings
from audifi_payment.domain.distributions import DISTRIBUTION, CustodyPayout, cents_of
from audifi_payment.domain.order import Product

QUEUE_PURPOSE = "orders"
DISTRIBUTIONS_PURPOSE = "distributions"
PROJECTS_PURPOSE = "projects"


def orders_consumer(purpose: str = QUEUE_PURPOSE) -> Consumer:
    consumer = Consumer("payment", purpose)

    @consumer.handler("payment.order.requested")
    async def requested(e: OrderRequest, ctx: HandlerContext) -> None:
        assert ctx.store is not None
        await ctx.store.call(
            ctx.store.app.open_order,
            UUID(e.order_id),
            Product(e.product.service, e.product.kind, e.product.reference),
            title=e.title,
            quantity=e.quantity,
            unit_amount=e.unit_amount_cents,
            currency=e.currency,
            buyer_id=e.buyer_id,
            seller_id=e.seller_id,
            expires_at=e.expires_at,
            at=datetime.now(UTC),
        )

    return consumer


def purpose_beside(orders_purpose: str, purpose: str) -> str:
    """Another queue of a test that named its own orders queue (`orders-<x>` -> `<purpose>-<x>`),
    so that it never takes notices from the service's shared queue."""
    if orders_purpose == QUEUE_PURPOSE:
        return purpose
    suffix = orders_purpose.removeprefix(QUEUE_PURPOSE)
    return purpose + (suffix if suffix != orders_purpose else f"-{orders_purpose}")


def distributions_purpose_beside(orders_purpose: str) -> str:
    return purpose_beside(orders_purpose, DISTRIBUTIONS_PURPOSE)


def distributions_consumer(purpose: str = DISTRIBUTIONS_PURPOSE) -> Consumer:
    consumer = Consumer("payment", purpose)

    @consumer.handler("nft.distribution.claimable")
    async def claimable(e: DistributionClaimable, ctx: HandlerContext) -> None:
        if not e.custody:
            return  # the holder's wallet claims it on chain
        payout = CustodyPayout(
            distribution_id=e.distribution_id,
            account_id=e.account_id,
            cents=cents_of(e.amount, e.decimals, e.currency),
            month=e.month,
            master_id=e.master_id,
            collection=e.collection,
        )
        if not payout.cents:
            return  # less than a cent: it stays in the treasury, as every sub-cent rest
        assert ctx.store is not None
        await ctx.store.call(
            ctx.store.app.record,
            currency=e.currency,
            legs=payout.legs,
            event_source=DISTRIBUTION,
            reference_id=e.distribution_id,
            reason=payout.reason,
            txn_id=payout.txn_id,
        )

    return consumer


# A Coda project funded on chain: MilestoneEscrow holds, releases and refunds its money, so its
# funding, releases and cancellation book nothing here (its revenue claims still do).
ON_CHAIN = "chain"


def projects_consumer(purpose: str = PROJECTS_PURPOSE) -> Consumer:
    """Coda projects' escrow, as nft's project events decide it (`application/escrow.py`)."""
    consumer = Consumer("payment", purpose)

    @consumer.handler("nft.project.goal_reached")
    async def goal_reached(e: ProjectGoalReached, ctx: HandlerContext) -> None:
        assert ctx.store is not None
        if e.funding_method == ON_CHAIN:
            return
        await ctx.store.call(
            ctx.store.app.hold_milestones,
            e.project_id,
            artist_id=e.artist_id,
            payouts=e.milestone_payouts,
            currency=e.currency,
            platform_fee_bps=PaymentSettings.from_env().platform_fee_bps,
        )

    @consumer.handler("nft.milestone.approved")
    async def approved(e: MilestoneApproved, ctx: HandlerContext) -> None:
        assert ctx.store is not None
        if e.funding_method == ON_CHAIN:
            return
        await ctx.store.call(ctx.store.app.release_milestone, e.project_id, e.sequence)

    @consumer.handler("nft.project.cancelled")
    async def cancelled(e: ProjectCancelled, ctx: HandlerContext) -> None:
        assert ctx.store is not None
        if e.funding_method == ON_CHAIN:
            return
        await ctx.store.call(
            ctx.store.app.refund_project,
            e.project_id,
            refunds=[(r.investment_id, r.account_id, r.amount) for r in e.refunds],
            remainder=e.remainder,
            currency=e.currency,
        )

    @consumer.handler("nft.project.payout_claimed")
    async def payout_claimed(e: ProjectPayoutClaimed, ctx: HandlerContext) -> None:
        assert ctx.store is not None
        await ctx.store.call(
            ctx.store.app.pay_project_payout,
            investment_id=e.investment_id,
            account_id=e.account_id,
            amount=e.amount,
            claimed_total=e.claimed_total,
            currency=e.currency,
        )

    return consumer


def payment_consumers(purpose: str = QUEUE_PURPOSE) -> tuple[Consumer, ...]:
    """Every consumer payment runs; `purpose` names the orders queue (a test's own), the
    distributions and projects queues are named beside it."""
    return (
        orders_consumer(purpose),
        distributions_consumer(distributions_purpose_beside(purpose)),
        projects_consumer(purpose_beside(purpose, PROJECTS_PURPOSE)),
    )
