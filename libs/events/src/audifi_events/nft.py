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
