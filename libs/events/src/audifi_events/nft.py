"""Events the nft service publishes: masters registered, IPOs launched and ended, shares sold
and minted, shares moved on chain, distributions a holder can claim.

A master's `chainId` is its MasterShares token id (the master's UUID read as an integer),
sent as a decimal string: it is above JSON's exact integers. Amounts are integer minor units
with an ISO 4217 currency; account ids are the ids auth issues.

Buying IPO shares by card goes through payment's orders (`payment.order.requested`, sent by
nft, see `audifi_events.payment`): the order id is the reservation's id, the product
`{"service": "nft", "kind": "ipo_shares", "reference": <ipo id>}`.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from audifi_events.registry import IntegrationEvent, integration_event


@integration_event("nft.master.registered")
class MasterRegistered(IntegrationEvent, kw_only=True):
    """An artist registered a master (a recording whose shares may be sold)."""

    master_id: str
    artist_id: str
    title: str
    isrc: str
    ipfs_hash: str  # the audio's IPFS CIDv1
    chain_id: str
    registered_at: datetime


@integration_event("nft.ipo.launched")
class IpoLaunched(IntegrationEvent, kw_only=True):
    """An IPO opened: its shares are on sale until `closesAt` or until sold out."""

    ipo_id: str
    master_id: str
    artist_id: str
    cap: int
    price_cents: int
    currency: str
    per_account_max: int
    opens_at: datetime
    closes_at: datetime
    launched_at: datetime


@integration_event("nft.ipo.closed")
class IpoClosed(IntegrationEvent, kw_only=True):
    """An IPO ended: `reason` sold_out or ended (its window closed)."""

    ipo_id: str
    master_id: str
    reason: str
    closed_at: datetime


@integration_event("nft.ipo.cancelled")
class IpoCancelled(IntegrationEvent, kw_only=True):
    """An IPO was cancelled before its first sale."""

    ipo_id: str
    master_id: str
    cancelled_at: datetime


@integration_event("nft.shares.sold")
class SharesSold(IntegrationEvent, kw_only=True):
    """A buyer paid for IPO shares: they are allocated (minted on chain next:
    `nft.share.minted`). Analytics counts sales from it."""

    ipo_id: str
    master_id: str
    reservation_id: str
    buyer_id: str
    artist_id: str
    quantity: int
    amount_cents: int
    currency: str
    payment: str  # payment's intent id, or the chain transaction's hash
    sold_at: datetime


@integration_event("nft.share.minted")
class SharesMinted(IntegrationEvent, kw_only=True):
    """Sold shares were minted on chain, to the buyer's wallet or to the platform's custody
    address held for the buyer (`custody`)."""

    ipo_id: str
    master_id: str
    chain_id: str
    reservation_id: str
    buyer_id: str
    quantity: int
    to: str
    custody: bool
    tx_hash: str
    title: str | None = None  # the master's (absent from events minted before it was added)


@integration_event("nft.distribution.claimable")
class DistributionClaimable(IntegrationEvent, kw_only=True):
    """A funded distribution owes `amount` to a holder that is an account: one event per
    account owed (its wallet's claim, or what custody holds for it). `amount` is in base
    units of the distribution's token (`decimals`, a USD stablecoin: `currency` USD), as a
    decimal string. `claim_path` is the API path of the holder's proof (wallet holders claim
    on chain with it); a custody holder is paid into their platform balance instead
    (`custody`). `month` (YYYY-MM) names a Revenue Pass or dividend period."""

    distribution_id: str
    account_id: str
    collection: str  # "master" (dividends of one master) or "revenue_pass"
    master_id: str
    title: str
    month: str
    amount: str
    decimals: int
    currency: str
    wallet_address: str | None  # None: held in custody for the account
    custody: bool
    claim_path: str
    expires_at: datetime


@integration_event("nft.shares.transferred")
class SharesTransferred(IntegrationEvent, kw_only=True):
    """Shares of a master moved on MasterShares, whoever moved them: a mint (`kind` mint, from
    the zero address), a burn (to it) or a transfer (the platform's, or wallet to wallet).
    `fromBalance` / `toBalance` are the two addresses' balances after it (null for the zero
    address) and `supply` the master's shares in existence: a reader sets them, it need not
    add. Recorded CHAIN_CONFIRMATIONS behind the chain's head; a transfer whose block a
    reorganisation orphaned is taken back by `nft.shares.transfer_reverted` (same
    `transferKey`). Addresses are checksummed; which account holds one is auth's wallet
    links' to say. vstudio weighs votes by holdings from it, analytics counts it."""

    master_id: str
    chain_id: str  # the MasterShares token id, decimal
    transfer_key: str  # "<block hash>:<log index>", "/<i>" for the i-th of a batch
    kind: str  # mint, burn, transfer
    from_address: str
    to_address: str
    amount: int
    from_balance: int | None
    to_balance: int | None
    supply: int
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    recorded_at: datetime


@integration_event("nft.shares.transfer_reverted")
class SharesTransferReverted(IntegrationEvent, kw_only=True):
    """A transfer announced by `nft.shares.transferred` left the chain (a reorganisation
    orphaned its block): its shares are back where they were. `fromAddress` / `toAddress`
    are the transfer's; the balances are theirs after the reversal."""

    master_id: str
    chain_id: str
    transfer_key: str
    from_address: str
    to_address: str
    amount: int
    from_balance: int | None
    to_balance: int | None
    supply: int
    block_number: int
    tx_hash: str
    reverted_at: datetime


# -- Coda Collective: projects funded by fans ----------------------------------------------
# Funding a project by card goes through payment's orders: the order id is the investment's
# id, the product `{"service": "nft", "kind": "project_funding", "reference": <project id>}`.
# Amounts are the project currency's minor units. `fundingMethod` "chain": the project is
# funded in the payment token through MilestoneEscrow (currency USDC, amounts in its base
# units); its money never passes through payment's ledger, so payment leaves it alone.


@integration_event("nft.project.created")
class ProjectCreated(IntegrationEvent, kw_only=True):
    """An artist opened a project for funding until `fundingDeadline`."""

    project_id: str
    artist_id: str
    title: str
    funding_goal: int
    currency: str
    funding_deadline: datetime
    revenue_share_bps: int
    milestones: int
    created_at: datetime
    funding_method: str = "card"  # card, chain


@integration_event("nft.project.funded")
class ProjectFunded(IntegrationEvent, kw_only=True):
    """A fan's investment was paid: the money is in the project's escrow."""

    project_id: str
    investment_id: str
    account_id: str
    artist_id: str
    amount: int
    currency: str
    payment: str
    funded_at: datetime
    funding_method: str = "card"  # card, chain


@integration_event("nft.project.goal_reached")
class ProjectGoalReached(IntegrationEvent, kw_only=True):
    """The goal was reached before the deadline: the project is in progress."""

    project_id: str
    artist_id: str
    title: str
    raised: int
    currency: str
    funders: list[str]  # account ids, each once
    milestone_payouts: list[int]  # in release order: what each milestone's approval releases
    reached_at: datetime
    funding_method: str = "card"  # card, chain


class InvestmentRefund(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One investment's refund when its project is cancelled."""

    investment_id: str
    account_id: str
    amount: int


@integration_event("nft.project.cancelled")
class ProjectCancelled(IntegrationEvent, kw_only=True):
    """The project ended short: `reason` "deadline" (the goal was not reached in time) or an
    admin's. Each refund is an investment's pro-rata part of what was not released (all of
    it after a missed deadline); `remainder` is what the rounding left, the platform's."""

    project_id: str
    artist_id: str
    title: str
    reason: str
    currency: str
    refunds: list[InvestmentRefund]
    remainder: int
    cancelled_at: datetime
    funding_method: str = "card"  # card, chain


@integration_event("nft.milestone.proof_submitted")
class MilestoneProofSubmitted(IntegrationEvent, kw_only=True):
    project_id: str
    milestone_id: str
    artist_id: str
    name: str
    submitted_at: datetime


@integration_event("nft.milestone.approved")
class MilestoneApproved(IntegrationEvent, kw_only=True):
    """An admin approved a milestone's proof: its payout leaves escrow for the artist."""

    project_id: str
    milestone_id: str
    sequence: int  # 1-based: the milestone's place in the release order
    artist_id: str
    title: str
    name: str
    amount: int
    currency: str
    funders: list[str]
    approved_at: datetime
    funding_method: str = "card"  # card, chain


@integration_event("nft.milestone.rejected")
class MilestoneRejected(IntegrationEvent, kw_only=True):
    """An admin rejected a milestone's proof; the artist may submit again."""

    project_id: str
    milestone_id: str
    artist_id: str
    title: str
    name: str
    reason: str
    rejected_at: datetime


@integration_event("nft.project.finalized")
class ProjectFinalized(IntegrationEvent, kw_only=True):
    """The release (Coda's Revelator hand-off): a distribution adapter may deliver it."""

    project_id: str
    artist_id: str
    title: str
    release_date: datetime | None
    finalized_at: datetime


@integration_event("nft.project.revenue_booked")
class ProjectRevenueBooked(IntegrationEvent, kw_only=True):
    """Revenue of a released project; `fundersShare` of it is claimable by its funders."""

    project_id: str
    booking_id: str
    amount: int
    funders_share: int
    currency: str
    booked_at: datetime


@integration_event("nft.project.payout_claimed")
class ProjectPayoutClaimed(IntegrationEvent, kw_only=True):
    """A funder claimed their share of a project's revenue into their balance."""

    project_id: str
    investment_id: str
    account_id: str
    amount: int
    claimed_total: int  # the investment's claims so far, this one included: names the claim
    currency: str
    claimed_at: datetime


# -- Bucket's lockers --------------------------------------------------------------------------


@integration_event("nft.content.unlocked")
class ContentUnlocked(IntegrationEvent, kw_only=True):
    """An item of an artist's locker reached its unlock date: `subscribers` are the fans whose
    active subscription opens it (every active subscriber of the artist when it needs no
    tier; those at its tier or above otherwise), as nft knew them then. Told once per item."""

    content_id: str
    artist_id: str
    artist_name: str
    title: str
    media_type: str  # audio, video or image
    subscribers: list[str]  # account ids
    unlocked_at: datetime
