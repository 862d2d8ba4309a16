"""Integration events out: the mapping of this service's public domain events to `coin.*`
events in the published language (audifi_events.coin). The domain events carry what the
published ones need (`facts`), so nothing is loaded to publish them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from audifi_events import coin as published
from audifi_events.payment import OrderRequest, Product
from audifi_kit.outbox import OutboxMapping

from audifi_coin.domain.lottery import LotteryRound, TicketClaim, TicketOrder

LOTTERY_SELLER = "lottery"  # whose money card tickets are in payment's ledger: the lottery's

outbox = OutboxMapping("coin")


@outbox.maps(TicketClaim.Issued)
def _tickets_issued(e: Any) -> published.TicketsIssued:
    f = e.facts
    return published.TicketsIssued(
        round_id=f["round_id"],
        account_id=f["account_id"],
        wallet=f["wallet"],
        method=f["method"],
        payment_method=f["payment_method"],
        ticket_numbers=[i + 1 for i in range(e.first, e.first + f["count"])],
        count=f["count"],
        claim_tx_hash=f["claim_tx_hash"],
        issue_tx_hash=e.tx_hash,
        drawing_date=datetime.fromisoformat(f["drawing_date"]),
        issued_at=e.at,
    )


@outbox.maps(LotteryRound.Drawn)
def _round_drawn(e: Any) -> published.RoundDrawn:
    return published.RoundDrawn(
        round_id=e.facts["round_id"],
        tickets_sold=e.facts["tickets_sold"],
        winning_ticket=None if e.winning_index is None else e.winning_index + 1,
        winner_wallet=e.winner,
        winner_account_id=e.facts["winner_account_id"],
        prize=str(e.prize),
        tx_hash=e.tx_hash,
        drawn_at=e.at,
    )


@outbox.maps(TicketOrder.Requested)
def _order_requested(e: Any) -> OrderRequest:
    """A card order for tickets: payment sells it (the same save that made the order)."""
    return OrderRequest(
        order_id=str(e.originator_id),
        product=Product(service="coin", kind="lottery_tickets", reference=e.round_id),
        title=f"{e.count} lottery ticket{'s' if e.count != 1 else ''} - round {e.round_id}"[:120],
        quantity=e.count,
        unit_amount_cents=e.unit_cents,
        currency=e.currency,
        buyer_id=e.account_id,
        seller_id=LOTTERY_SELLER,
        expires_at=e.expires_at,
    )
