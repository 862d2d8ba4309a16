"""Integration events out: the mapping of this service's public domain events to `coin.*`
events in the published language (audifi_events.coin). The domain events carry what the
published ones need (`facts`), so nothing is loaded to publish them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from audifi_events import coin as published
from audifi_kit.outbox import OutboxMapping

from audifi_coin.domain.lottery import LotteryRound, TicketClaim

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
