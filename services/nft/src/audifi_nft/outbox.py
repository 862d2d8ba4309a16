"""Integration events out: which of nft's domain events are published, and as what.

Masters registered, IPOs launched and ended, shares sold and minted, shares moved on chain
(every MasterShares movement the indexer records, and its reversal when a reorganisation
orphans its block), Coda projects' lives (funded, started, cancelled with their refunds,
milestones approved or rejected, finalized, revenue booked and claimed), lockers' items
reaching their unlock date (`audifi_events.nft`), and the order requests a card purchase or
investment sends payment (`payment.order.requested`): a reservation paid by card *is* its
order request, published from the same save, so no purchase can be reserved without its
order being asked for, nor asked for twice under another id. The events carry the facts the
published ones need (`facts`), so nothing is loaded to publish them.
"""

from __future__ import annotations

from typing import Any

from audifi_events import nft as published
from audifi_events.payment import OrderRequest, Product
from audifi_kit.outbox import OutboxMapping

from audifi_nft.domain.chain_payment import TOKEN_DECIMALS
from audifi_nft.domain.holdings import ShareToken, movement_kind
from audifi_nft.domain.ipo import Ipo
from audifi_nft.domain.locker import ContentItem
from audifi_nft.domain.master import Master, chain_id
from audifi_nft.domain.project import Project, milestone_id_of
from audifi_nft.domain.revenue import Distribution

outbox = OutboxMapping("nft")
PRODUCT_KIND = "ipo_shares"
FUNDING_KIND = "project_funding"
TITLE_LIMIT = 120


def order_title(quantity: int, title: str) -> str:
    """What the buyer reads on the checkout: '3 shares of “First Light”' (120 characters)."""
    head = f"{quantity} share{'s' if quantity != 1 else ''} of \u201c"
    room = TITLE_LIMIT - len(head) - 1
    name = title if len(title) <= room else title[: room - 1] + "\u2026"
    return f"{head}{name}\u201d"


def funding_title(title: str) -> str:
    """What the funder reads on the checkout: 'Funding “Debut Album”' (120 characters)."""
    head = "Funding \u201c"
    room = TITLE_LIMIT - len(head) - 1
    name = title if len(title) <= room else title[: room - 1] + "\u2026"
    return f"{head}{name}\u201d"


@outbox.maps(Master.Registered)
def _registered(e: Any) -> published.MasterRegistered:
    return published.MasterRegistered(
        master_id=str(e.originator_id),
        artist_id=e.artist_id,
        title=e.title,
        isrc=e.isrc,
        ipfs_hash=e.audio["cid"],
        chain_id=str(chain_id(e.originator_id)),
        registered_at=e.timestamp,
    )


@outbox.maps(Ipo.Launched)
def _launched(e: Any) -> published.IpoLaunched:
    f = e.facts
    return published.IpoLaunched(
        ipo_id=str(e.originator_id),
        master_id=f["master_id"],
        artist_id=f["artist_id"],
        cap=f["cap"],
        price_cents=f["price_cents"],
        currency=f["currency"],
        per_account_max=f["per_account_max"],
        opens_at=f["opens_at"],
        closes_at=f["closes_at"],
        launched_at=e.at,
    )


@outbox.maps(Ipo.Closed)
def _closed(e: Any) -> published.IpoClosed:
    return published.IpoClosed(
        ipo_id=str(e.originator_id), master_id=e.master_id, reason=e.reason, closed_at=e.at
    )


@outbox.maps(Ipo.Cancelled)
def _cancelled(e: Any) -> published.IpoCancelled:
    return published.IpoCancelled(
        ipo_id=str(e.originator_id), master_id=e.master_id, cancelled_at=e.at
    )


@outbox.maps(Ipo.SharesReserved)
def _reserved(e: Any) -> OrderRequest | None:
    if e.method != "card":  # paid on chain: no order at payment
        return None
    f = e.facts
    return OrderRequest(
        order_id=e.reservation_id,
        product=Product(service="nft", kind=PRODUCT_KIND, reference=str(e.originator_id)),
        title=order_title(e.quantity, f["title"]),
        quantity=e.quantity,
        unit_amount_cents=f["price_cents"],
        currency=f["currency"],
        buyer_id=e.account_id,
        seller_id=f["artist_id"],
        expires_at=e.expires_at,
    )


@outbox.maps(Ipo.SharesAllocated)
def _sold(e: Any) -> published.SharesSold:
    f = e.facts
    return published.SharesSold(
        ipo_id=str(e.originator_id),
        master_id=f["master_id"],
        reservation_id=e.reservation_id,
        buyer_id=f["buyer_id"],
        artist_id=f["artist_id"],
        quantity=f["quantity"],
        amount_cents=f["amount_cents"],
        currency=f["currency"],
        payment=e.payment,
        sold_at=e.at,
    )


@outbox.maps(Ipo.SharesMinted)
def _minted(e: Any) -> published.SharesMinted:
    f = e.facts
    return published.SharesMinted(
        ipo_id=str(e.originator_id),
        master_id=f["master_id"],
        chain_id=str(int(f["master_id"].replace("-", ""), 16)),
        reservation_id=e.reservation_id,
        buyer_id=f["buyer_id"],
        quantity=f["quantity"],
        to=e.to,
        custody=e.custody,
        tx_hash=e.tx_hash,
        title=f.get("title"),
    )


@outbox.maps(ShareToken.SharesTransferred)
def _transferred(e: Any) -> published.SharesTransferred:
    return published.SharesTransferred(
        master_id=e.master_id,
        chain_id=e.token_id,
        transfer_key=e.log_key,
        kind=movement_kind(e.from_address, e.to_address),
        from_address=e.from_address,
        to_address=e.to_address,
        amount=e.amount,
        from_balance=e.from_balance,
        to_balance=e.to_balance,
        supply=e.supply,
        block_number=e.block_number,
        block_hash=e.block_hash,
        tx_hash=e.tx_hash,
        log_index=e.log_index,
        recorded_at=e.timestamp,
    )


@outbox.maps(ShareToken.TransferReverted)
def _transfer_reverted(e: Any) -> published.SharesTransferReverted:
    return published.SharesTransferReverted(
        master_id=e.master_id,
        chain_id=e.token_id,
        transfer_key=e.log_key,
        from_address=e.from_address,
        to_address=e.to_address,
        amount=e.amount,
        from_balance=e.from_balance,
        to_balance=e.to_balance,
        supply=e.supply,
        block_number=e.block_number,
        tx_hash=e.tx_hash,
        reverted_at=e.timestamp,
    )


@outbox.maps(Distribution.Owed)
def _owed(e: Any) -> published.DistributionClaimable:
    """Needs the distribution's facts: the event carries what the Funded one fixed."""
    return published.DistributionClaimable(
        distribution_id=str(e.originator_id),
        account_id=e.account_id,
        collection=e.collection,
        master_id=e.master_id,
        title=e.title,
        month=e.month,
        amount=str(e.amount),
        decimals=TOKEN_DECIMALS,
        currency="USD",
        wallet_address=e.wallet,
        custody=e.wallet is None,
        claim_path=(
            f"/api/v1/distributions/{e.originator_id}"
            if e.wallet is None
            else f"/api/v1/distributions/{e.originator_id}/proof"
        ),
        expires_at=e.expires_at,
    )


# -- Coda Collective projects ----------------------------------------------------------------


@outbox.maps(Project.Created)
def _project_created(e: Any) -> published.ProjectCreated:
    return published.ProjectCreated(
        project_id=str(e.originator_id),
        artist_id=e.artist_id,
        title=e.title,
        funding_goal=e.funding_goal,
        currency=e.currency,
        funding_deadline=e.funding_deadline,
        revenue_share_bps=e.share_bps,
        milestones=len(e.milestones),
        created_at=e.at,
        funding_method=getattr(e, "funding_method", "card"),
    )


@outbox.maps(Project.InvestmentReserved)
def _investment_reserved(e: Any) -> OrderRequest:
    f = e.facts
    return OrderRequest(
        order_id=e.investment_id,
        product=Product(service="nft", kind=FUNDING_KIND, reference=str(e.originator_id)),
        title=funding_title(f["title"]),
        quantity=1,
        unit_amount_cents=e.amount,
        currency=f["currency"],
        buyer_id=e.account_id,
        seller_id=f["artist_id"],
        expires_at=e.expires_at,
    )


@outbox.maps(Project.Invested)
def _invested(e: Any) -> published.ProjectFunded:
    f = e.facts
    return published.ProjectFunded(
        project_id=str(e.originator_id),
        investment_id=e.investment_id,
        account_id=f["account_id"],
        artist_id=f["artist_id"],
        amount=f["amount"],
        currency=f["currency"],
        payment=e.payment,
        funded_at=e.at,
    )


@outbox.maps(Project.ChainInvested)
def _invested_on_chain(e: Any) -> published.ProjectFunded:
    f = e.facts
    return published.ProjectFunded(
        project_id=str(e.originator_id),
        investment_id=e.investment_id,
        account_id=e.account_id,
        artist_id=f["artist_id"],
        amount=e.amount,
        currency=f["currency"],
        payment=e.tx_hash,
        funded_at=e.at,
        funding_method="chain",
    )


@outbox.maps(Project.GoalReached)
def _goal_reached(e: Any) -> published.ProjectGoalReached:
    f = e.facts
    return published.ProjectGoalReached(
        project_id=str(e.originator_id),
        artist_id=f["artist_id"],
        title=f["title"],
        raised=e.raised,
        currency=f["currency"],
        funders=f["funders"],
        milestone_payouts=f["milestone_payouts"],
        reached_at=e.at,
        funding_method=f.get("funding_method", "card"),
    )


@outbox.maps(Project.Cancelled)
def _project_cancelled(e: Any) -> published.ProjectCancelled:
    f = e.facts
    return published.ProjectCancelled(
        project_id=str(e.originator_id),
        artist_id=f["artist_id"],
        title=f["title"],
        reason=e.reason,
        currency=f["currency"],
        refunds=[
            published.InvestmentRefund(
                investment_id=iid, account_id=r["account_id"], amount=r["amount"]
            )
            # On chain: what each funder may take back from the escrow.
            for iid, r in (e.refunds or getattr(e, "chain_refunds", None) or {}).items()
        ],
        remainder=e.remainder,
        cancelled_at=e.at,
        funding_method=f.get("funding_method", "card"),
    )


@outbox.maps(Project.MilestoneProofSubmitted)
def _proof_submitted(e: Any) -> published.MilestoneProofSubmitted:
    return published.MilestoneProofSubmitted(
        project_id=str(e.originator_id),
        milestone_id=milestone_id_of(e.originator_id, e.index),
        artist_id=e.facts["artist_id"],
        name=e.facts["milestone_name"],
        submitted_at=e.at,
    )


@outbox.maps(Project.MilestoneApproved)
def _milestone_approved(e: Any) -> published.MilestoneApproved:
    f = e.facts
    return published.MilestoneApproved(
        project_id=str(e.originator_id),
        milestone_id=milestone_id_of(e.originator_id, e.index),
        sequence=e.index + 1,
        artist_id=f["artist_id"],
        title=f["title"],
        name=f["milestone_name"],
        amount=e.amount,
        currency=f["currency"],
        funders=f["funders"],
        approved_at=e.at,
        funding_method=f.get("funding_method", "card"),
    )


@outbox.maps(Project.MilestoneRejected)
def _milestone_rejected(e: Any) -> published.MilestoneRejected:
    f = e.facts
    return published.MilestoneRejected(
        project_id=str(e.originator_id),
        milestone_id=milestone_id_of(e.originator_id, e.index),
        artist_id=f["artist_id"],
        title=f["title"],
        name=f["milestone_name"],
        reason=e.reason,
        rejected_at=e.at,
    )


@outbox.maps(Project.Finalized)
def _finalized(e: Any) -> published.ProjectFinalized:
    f = e.facts
    return published.ProjectFinalized(
        project_id=str(e.originator_id),
        artist_id=f["artist_id"],
        title=f["title"],
        release_date=f["release_date"],
        finalized_at=e.at,
    )


@outbox.maps(Project.RevenueBooked)
def _revenue_booked(e: Any) -> published.ProjectRevenueBooked:
    return published.ProjectRevenueBooked(
        project_id=str(e.originator_id),
        booking_id=e.booking_id,
        amount=e.amount,
        funders_share=e.funders_share,
        currency=e.facts["currency"],
        booked_at=e.at,
    )


@outbox.maps(Project.PayoutClaimed)
def _payout_claimed(e: Any) -> published.ProjectPayoutClaimed:
    return published.ProjectPayoutClaimed(
        project_id=str(e.originator_id),
        investment_id=e.investment_id,
        account_id=e.account_id,
        amount=e.amount,
        claimed_total=e.claimed_total,
        currency=e.facts["currency"],
        claimed_at=e.at,
    )


# -- Bucket's lockers ----------------------------------------------------------------------


@outbox.maps(ContentItem.Unlocked)
def _content_unlocked(e: Any) -> published.ContentUnlocked:
    f = e.facts
    return published.ContentUnlocked(
        content_id=str(e.originator_id),
        artist_id=f["artist_id"],
        artist_name=f["artist_name"],
        title=f["title"],
        media_type=f["media_type"],
        subscribers=e.subscribers,
        unlocked_at=e.at,
    )
