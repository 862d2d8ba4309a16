"""Integration events out: which of nft's domain events are published, and as what.

Masters registered, IPOs launched and ended, shares sold and minted, shares moved on chain
(every MasterShares movement the indexer records, and its reversal when a reorganisation
orphans its block) (`audifi_events.nft`), and
the order requests a card purchase sends payment (`payment.order.requested`): a reservation
paid by card *is* its order request, published from the same save, so no purchase can be
reserved without its order being asked for, nor asked for twice under another id. The events
carry the facts the published ones need (`facts`), so nothing is loaded to publish them.
"""

from __future__ import annotations

from typing import Any

from audifi_events import nft as published
from audifi_events.payment import OrderRequest, Product
from audifi_kit.outbox import OutboxMapping

from audifi_nft.domain.chain_payment import TOKEN_DECIMALS
from audifi_nft.domain.holdings import ShareToken, movement_kind
from audifi_nft.domain.ipo import Ipo
from audifi_nft.domain.master import Master, chain_id
from audifi_nft.domain.revenue import Distribution

outbox = OutboxMapping("nft")
PRODUCT_KIND = "ipo_shares"
TITLE_LIMIT = 120


def order_title(quantity: int, title: str) -> str:
    """What the buyer reads on the checkout: '3 shares of “First Light”' (120 characters)."""
    head = f"{quantity} share{'s' if quantity != 1 else ''} of \u201c"
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
