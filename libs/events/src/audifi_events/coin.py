"""Events the coin service publishes: the Stoned Rabbits lottery's tickets and draws.

Amounts are base units of the round's payment token (USDC: 6 decimals) as decimal text (they
can exceed JSON's exact integers); ticket numbers are shown from 1 (`ticketNumbers`), as the
buyer is told them; `winningTicket` likewise.
"""

from __future__ import annotations

from datetime import datetime

from audifi_events.registry import IntegrationEvent, integration_event


@integration_event("coin.lottery.tickets_issued")
class TicketsIssued(IntegrationEvent, kw_only=True):
    """Tickets issued on chain for a purchase or a burn the service verified (one message per
    claim). `account_id`: the signed-in account that asked (None: nobody to mail)."""

    round_id: str
    account_id: str | None
    wallet: str
    method: str  # purchase, burn
    payment_method: str | None  # USDC, ETH, or None (a burn)
    ticket_numbers: list[int]
    count: int
    claim_tx_hash: str
    issue_tx_hash: str
    drawing_date: datetime  # the round's end date: the draw comes after it
    issued_at: datetime


@integration_event("coin.lottery.round_drawn")
class RoundDrawn(IntegrationEvent, kw_only=True):
    """A round's draw, paid on chain. No tickets: `winner_wallet` and `winning_ticket` are
    None and the pot carried over. `winner_account_id`: the account whose claim the winning
    ticket answered, when the service issued it (None: bought on the contract itself)."""

    round_id: str
    tickets_sold: int
    winning_ticket: int | None
    winner_wallet: str | None
    winner_account_id: str | None
    prize: str
    tx_hash: str
    drawn_at: datetime
