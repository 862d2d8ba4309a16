"""The Stoned Rabbits lottery: rounds, their tickets and their draw, as the service records them.

The Lottery contract is the source of truth for ticket numbers (X10 of DOMAIN.md): every ticket
is issued on chain, whichever way it was paid — bought from the contract in the payment token,
earned by burning a master's shares there, or issued by the operator (`issueTickets`) for a
payment the service verified (a transfer to the treasury in USDC or the native coin, a burn,
a card). A `LotteryRound` records what the chain says, as ranges of ticket numbers: the
purchase path from its own receipt, the indexer from the logs (both may say the same range:
recording it twice changes nothing), and a reorganisation drops a range again.

States, as the seed's table: `active` (on chain and selling between `starts_at` and
`ends_at`) -> `drawing` (closed on chain: the ticket count is final and the draw block is
fixed) -> `completed` (drawn: a winner, or none with no tickets, the pot then carried over to
the next round). Before its `openRound` transaction is mined a round is `opening`, which no
client sees as current.

Ticket numbers are the contract's, from 0 (`index`); people are shown them from 1
(`number = index + 1`): "ticket 1" is the round's first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from audifi_kit.errors import Conflict, NotFound, ValidationFailed
from eth_utils import keccak
from eventsourcing.domain import Aggregate, event

OPENING, ACTIVE, DRAWING, COMPLETED = "opening", "active", "drawing", "completed"

# How a ticket was acquired (SR's `acquisition_method`) and paid (`payment_method`).
PURCHASE, BURN = "purchase", "burn"
USDC, NATIVE, CARD = "USDC", "ETH", "CARD"
PAYMENT_METHODS = (USDC, NATIVE)

ROUND_NAMESPACE = uuid.UUID("5b0e4a8c-61d2-4f3b-9a77-c2e1d8f04b13")
CLAIM_NAMESPACE = uuid.UUID("a41f7c2e-93b8-4d06-8e5a-17f6b2c9d0e4")

MAX_TICKETS_PER_ROUND = 1_000_000


class RoundNotFound(NotFound):
    code = "ROUND_NOT_FOUND"
    default_message = "No such lottery round"


class NoCurrentRound(NotFound):
    code = "ROUND_NOT_FOUND"
    default_message = "No lottery round is running"


class RoundExists(Conflict):
    code = "ROUND_EXISTS"
    default_message = "A round with this id exists with other terms"


class RoundNotActive(Conflict):
    code = "ROUND_NOT_ACTIVE"
    default_message = "The round does not sell tickets now"


class RoundNotOver(Conflict):
    code = "ROUND_NOT_OVER"
    default_message = "The round still sells tickets: it is drawn after its end date"


class TicketCapExceeded(ValidationFailed):
    code = "TICKET_CAP_EXCEEDED"
    default_message = "That many tickets would put the wallet over the round's cap"


class TxHashUsed(Conflict):
    code = "TX_HASH_USED"
    default_message = "This transaction already issued tickets"


class OrderNotFound(NotFound):
    code = "ORDER_NOT_FOUND"
    default_message = "No such ticket order"


class TicketsMismatch(Conflict):
    """The chain numbered tickets otherwise than recorded: not a reorganisation the indexer
    announced. Nothing is recorded; an operator must look."""

    code = "TICKETS_MISMATCH"
    default_message = "The chain's tickets disagree with the recorded ones"


def round_uuid(round_id: str) -> UUID:
    return uuid.uuid5(ROUND_NAMESPACE, round_id)


def claim_uuid(tx_hash: str) -> UUID:
    """The claim on a transaction hash: one per hash, ever, whatever it paid or burnt."""
    return uuid.uuid5(CLAIM_NAMESPACE, tx_hash.lower())


@dataclass(frozen=True, slots=True)
class RoundTerms:
    """What an admin sets when creating a round (all amounts in base units)."""

    ticket_price: int  # payment token (USDC: 6 decimals) per ticket; 0: not sold for it
    native_ticket_price: int  # wei per ticket paid in the native coin; 0: not sold for it
    burn_master_id: str | None  # whose MasterShares can be burnt for tickets; None: no burns
    shares_per_ticket: int  # shares burnt per ticket (0 with no burns)
    max_per_wallet: int  # tickets one wallet may hold in the round; 0: no cap
    starts_at: datetime
    ends_at: datetime

    def check(self) -> None:
        problems = []
        if self.ticket_price < 0 or self.native_ticket_price < 0 or self.shares_per_ticket < 0:
            problems.append("prices and shares per ticket cannot be negative")
        if self.ends_at <= self.starts_at:
            problems.append("endDate must come after startDate")
        if (self.burn_master_id is None) != (self.shares_per_ticket == 0):
            problems.append("a burn rule needs both burnMasterId and sharesPerTicket")
        if not (self.ticket_price or self.native_ticket_price or self.shares_per_ticket):
            problems.append("a round must sell tickets for something (a price or a burn rule)")
        if not 0 <= self.max_per_wallet <= MAX_TICKETS_PER_ROUND:
            problems.append(f"maxTicketsPerWallet must be from 0 to {MAX_TICKETS_PER_ROUND}")
        if problems:
            raise ValidationFailed("; ".join(problems), details={"problems": problems})

    def price_of(self, method: str) -> int:
        return self.ticket_price if method == USDC else self.native_ticket_price


@dataclass(frozen=True, slots=True)
class TicketRange:
    """Tickets `first`..`first + count - 1` (indexes) of one wallet, from one chain log."""

    first: int
    count: int
    wallet: str
    method: str  # PURCHASE or BURN
    payment_method: str | None  # USDC, ETH, CARD, or None (burn, or bought from the contract)
    ref: str  # the transaction that paid or burnt (the claim's), else the issuing one
    pot_added: int
    tx_hash: str  # the transaction that issued them on chain

    @property
    def numbers(self) -> list[int]:
        return [i + 1 for i in range(self.first, self.first + self.count)]

    def to_json(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "count": self.count,
            "wallet": self.wallet,
            "method": self.method,
            "payment_method": self.payment_method,
            "ref": self.ref,
            "pot_added": self.pot_added,
            "tx_hash": self.tx_hash,
        }


class LotteryRound(Aggregate):
    """A round: its terms, the seed's commitment, its tickets (ranges, by first index), its pot
    and its draw. Amounts in the payment token's base units."""

    @event("Created")
    def __init__(
        self,
        *,
        round_id: str,
        terms: dict[str, Any],
        seed_hash: str,
        created_by: str,
        at: datetime,
    ) -> None:
        self.round_id = round_id
        self.terms_json = terms
        self.seed_hash = seed_hash
        self.created_by = created_by
        self.created_at = at
        self.chain_round_id: int | None = None
        self.open_tx: str | None = None
        self.pot = 0
        self.carried_in = 0
        self.pot_txs: list[str] = []
        self.confirmed: dict[int, int] = {}  # first ticket -> the block the indexer saw it in
        self.ranges: dict[int, dict[str, Any]] = {}
        self.close_block: int | None = None
        self.tickets_at_close: int | None = None
        self.closed_at: datetime | None = None
        self.seed: str | None = None
        self.draw_block_hash: str | None = None
        self.winning_index: int | None = None
        self.winner: str | None = None
        self.prize = 0
        self.draw_tx: str | None = None
        self.drawn_at: datetime | None = None

    # -- reading ------------------------------------------------------------------------------

    @property
    def terms(self) -> RoundTerms:
        t = self.terms_json
        return RoundTerms(
            ticket_price=t["ticket_price"],
            native_ticket_price=t["native_ticket_price"],
            burn_master_id=t["burn_master_id"],
            shares_per_ticket=t["shares_per_ticket"],
            max_per_wallet=t["max_per_wallet"],
            starts_at=datetime.fromisoformat(t["starts_at"]),
            ends_at=datetime.fromisoformat(t["ends_at"]),
        )

    @property
    def status(self) -> str:
        if self.chain_round_id is None:
            return OPENING
        if self.drawn_at is not None:
            return COMPLETED
        if self.close_block is not None:
            return DRAWING
        return ACTIVE

    @property
    def tickets_sold(self) -> int:
        return sum(r["count"] for r in self.ranges.values())

    def tickets(self) -> list[TicketRange]:
        return [TicketRange(**self.ranges[first]) for first in sorted(self.ranges)]

    def held_by(self, wallet: str) -> int:
        wallet = wallet.lower()
        return sum(r["count"] for r in self.ranges.values() if r["wallet"].lower() == wallet)

    def holder_of(self, index: int) -> str | None:
        for r in self.ranges.values():
            if r["first"] <= index < r["first"] + r["count"]:
                return str(r["wallet"])
        return None

    def selling(self, now: datetime) -> bool:
        t = self.terms
        return self.status == ACTIVE and t.starts_at <= now < t.ends_at

    def check_sale(self, wallet: str, count: int, *, now: datetime) -> None:
        """A sale of `count` tickets to `wallet` now: refused unless the round sells and the
        wallet stays within the cap (the contract refuses the same)."""
        if not self.selling(now):
            raise RoundNotActive(
                details={"roundId": self.round_id, "status": self.status, "now": now.isoformat()}
            )
        self.check_cap(wallet, count)

    def check_cap(self, wallet: str, count: int) -> None:
        cap = self.terms.max_per_wallet
        held = self.held_by(wallet)
        if cap and held + count > cap:
            raise TicketCapExceeded(
                details={"held": held, "requested": count, "cap": cap, "roundId": self.round_id}
            )

    # -- changing -----------------------------------------------------------------------------

    def open(self, *, chain_round_id: int, pot: int, tx_hash: str, at: datetime) -> bool:
        """The round's `openRound` was mined as chain round `chain_round_id` with `pot` carried
        into it. False: it was recorded already."""
        if self.chain_round_id is not None:
            if self.chain_round_id != chain_round_id:
                raise TicketsMismatch(
                    "The round was opened on chain twice",
                    details={"recorded": self.chain_round_id, "chain": chain_round_id},
                )
            return False
        self._opened(chain_round_id=chain_round_id, pot=pot, tx_hash=tx_hash, at=at)
        return True

    @event("Opened")
    def _opened(self, *, chain_round_id: int, pot: int, tx_hash: str, at: datetime) -> None:
        self.chain_round_id = chain_round_id
        self.pot = pot
        self.carried_in = pot
        self.open_tx = tx_hash

    def record_tickets(
        self, tickets: TicketRange, *, at: datetime, confirmed_block: int | None = None
    ) -> tuple[bool, list[TicketRange]]:
        """A range the chain issued: from the issuing receipt (unconfirmed) or from the
        indexer (`confirmed_block`: its log is that deep in the chain). Returns whether
        anything changed and the unconfirmed ranges it replaced: a receipt's range whose
        transaction a reorganisation dropped before the indexer saw it, which the chain now
        numbers otherwise. TicketsMismatch if it contradicts a confirmed range or the close."""
        if tickets.count < 1 or tickets.first < 0:
            raise ValidationFailed("A ticket range holds at least one ticket from index 0")
        end = tickets.first + tickets.count
        if self.tickets_at_close is not None and end > self.tickets_at_close:
            raise TicketsMismatch(
                details={"first": tickets.first, "ticketsAtClose": self.tickets_at_close}
            )
        known = self.ranges.get(tickets.first)
        if known is not None and known == tickets.to_json():
            if confirmed_block is None or self.confirmed.get(tickets.first) == confirmed_block:
                return False, []
            self._tickets_confirmed(first=tickets.first, block=confirmed_block, at=at)
            return True, []
        overlapping = [
            TicketRange(**r)
            for r in self.ranges.values()
            if tickets.first < r["first"] + r["count"] and r["first"] < end
        ]
        if any(r.first in self.confirmed for r in overlapping):
            raise TicketsMismatch(details={"first": tickets.first, "recorded": known})
        for r in overlapping:
            self._tickets_dropped(first=r.first, tx_hash=r.tx_hash, at=at)
        self._tickets_recorded(tickets=tickets.to_json(), at=at)
        if confirmed_block is not None:
            self._tickets_confirmed(first=tickets.first, block=confirmed_block, at=at)
        return True, overlapping

    @event("TicketsRecorded")
    def _tickets_recorded(self, *, tickets: dict[str, Any], at: datetime) -> None:
        self.ranges[tickets["first"]] = tickets
        self.pot += tickets["pot_added"]

    @event("TicketsConfirmed")
    def _tickets_confirmed(self, *, first: int, block: int, at: datetime) -> None:
        self.confirmed[first] = block

    def drop_tickets(self, first: int, *, tx_hash: str, at: datetime) -> bool:
        """The range issued at `first` by `tx_hash` left the chain (a reorganisation). False:
        not recorded (or already dropped)."""
        known = self.ranges.get(first)
        if known is None or known["tx_hash"] != tx_hash or self.drawn_at is not None:
            return False
        self._tickets_dropped(first=first, tx_hash=tx_hash, at=at)
        return True

    @event("TicketsDropped")
    def _tickets_dropped(self, *, first: int, tx_hash: str, at: datetime) -> None:
        self.pot -= self.ranges.pop(first)["pot_added"]
        self.confirmed.pop(first, None)

    def add_to_pot(self, amount: int, *, tx_hash: str, at: datetime) -> bool:
        """`amount` moved into the pot by `tx_hash`. False: recorded already."""
        if tx_hash in self.pot_txs:
            return False
        if self.drawn_at is not None:
            raise Conflict("The round is drawn: its pot is paid out", code="ROUND_COMPLETED")
        self._pot_added(amount=amount, tx_hash=tx_hash, at=at)
        return True

    @event("PotAdded")
    def _pot_added(self, *, amount: int, tx_hash: str, at: datetime) -> None:
        self.pot += amount
        self.pot_txs.append(tx_hash)

    def close(self, *, close_block: int, tickets: int, pot: int, at: datetime) -> bool:
        """Closed on chain in `close_block` with `tickets` sold: the draw block is the next.
        A close again (the first draw block's hash expired unread) moves it. False: known."""
        if self.drawn_at is not None or self.close_block == close_block:
            return False
        self._closed(close_block=close_block, tickets=tickets, pot=pot, at=at)
        return True

    @event("Closed")
    def _closed(self, *, close_block: int, tickets: int, pot: int, at: datetime) -> None:
        self.close_block = close_block
        self.tickets_at_close = tickets
        self.closed_at = at
        self.pot = pot

    def draw(
        self,
        *,
        seed: str,
        draw_block_hash: str,
        winning_index: int | None,
        winner: str | None,
        prize: int,
        tx_hash: str,
        at: datetime,
        winner_account_id: str | None = None,
    ) -> bool:
        """The contract's draw, as its `RoundDrawn` says. False: recorded already.
        `winner_account_id`: whose claim the winning ticket answered (published, for mail)."""
        if self.drawn_at is not None:
            return False
        if self.close_block is None:
            raise Conflict("The round was not closed", code="ROUND_NOT_CLOSED")
        self._drawn(
            seed=seed,
            draw_block_hash=draw_block_hash,
            winning_index=winning_index,
            winner=winner,
            prize=prize,
            tx_hash=tx_hash,
            at=at,
            facts={
                "round_id": self.round_id,
                "winner_account_id": winner_account_id,
                "tickets_sold": self.tickets_at_close or 0,
            },
        )
        return True

    @event("Drawn")
    def _drawn(
        self,
        *,
        seed: str,
        draw_block_hash: str,
        winning_index: int | None,
        winner: str | None,
        prize: int,
        tx_hash: str,
        at: datetime,
        facts: dict[str, Any],
    ) -> None:
        self.seed = seed
        self.draw_block_hash = draw_block_hash
        self.winning_index = winning_index
        self.winner = winner
        self.prize = prize
        self.draw_tx = tx_hash
        self.drawn_at = at
        self.pot = 0  # paid to the winner, or carried over to the next round


class TicketClaim(Aggregate):
    """Tickets asked for with a payment or a burn the service verified on chain: keyed by the
    (first) transaction hash, so a hash issues tickets once, ever. `verified` until the
    operator's `issueTickets` is mined, then `issued` with its range; a reorganisation that
    drops the issuing transaction puts it back to `verified` (asking again issues anew)."""

    @event("Verified")
    def __init__(
        self,
        *,
        tx_hash: str,
        tx_hashes: list[str],
        round_id: str,
        wallet: str,
        account_id: str | None,
        method: str,
        payment_method: str | None,
        count: int,
        amount: int,
        pot_added: int,
        at: datetime,
    ) -> None:
        self.tx_hash = tx_hash.lower()
        self.tx_hashes = [h.lower() for h in tx_hashes]
        self.round_id = round_id
        self.wallet = wallet
        self.account_id = account_id
        self.method = method
        self.payment_method = payment_method
        self.count = count
        self.amount = amount
        self.pot_added = pot_added
        self.verified_at = at
        self.first: int | None = None
        self.issue_tx: str | None = None

    @property
    def state(self) -> str:
        return "issued" if self.first is not None else "verified"

    def issued(
        self, *, first: int, tx_hash: str, at: datetime, drawing_date: datetime | None = None
    ) -> bool:
        """The operator's issue for this claim, mined with tickets from `first`. The event
        carries what `coin.lottery.tickets_issued` publishes (`drawing_date`: the round's end)."""
        if self.first == first and self.issue_tx == tx_hash:
            return False
        facts = {
            "round_id": self.round_id,
            "claim_tx_hash": self.tx_hash,
            "account_id": self.account_id,
            "wallet": self.wallet,
            "method": self.method,
            "payment_method": self.payment_method,
            "count": self.count,
            "drawing_date": (drawing_date or at).isoformat(),
        }
        self._issued(first=first, tx_hash=tx_hash, at=at, facts=facts)
        return True

    @event("Issued")
    def _issued(self, *, first: int, tx_hash: str, at: datetime, facts: dict[str, Any]) -> None:
        self.first = first
        self.issue_tx = tx_hash

    def unissued(self, *, tx_hash: str, at: datetime) -> bool:
        if self.issue_tx != tx_hash:
            return False
        self._unissued(tx_hash=tx_hash, at=at)
        return True

    @event("Unissued")
    def _unissued(self, *, tx_hash: str, at: datetime) -> None:
        self.first = None
        self.issue_tx = None

    def tickets(self) -> TicketRange | None:
        if self.first is None or self.issue_tx is None:
            return None
        return TicketRange(
            first=self.first,
            count=self.count,
            wallet=self.wallet,
            method=self.method,
            payment_method=self.payment_method,
            ref=self.tx_hash,
            pot_added=self.pot_added,
            tx_hash=self.issue_tx,
        )


class TxHashClaim(Aggregate):
    """A further transaction of a multi-transaction burn claim, pointing at its claim: with
    the claim's own id, every hash a claim used is taken, ever."""

    @event("Claimed")
    def __init__(self, *, tx_hash: str, claim_tx_hash: str, at: datetime) -> None:
        self.tx_hash = tx_hash.lower()
        self.claim_tx_hash = claim_tx_hash.lower()
        self.at = at


CARD_ORDER_MINUTES = 15
CENTS_TO_BASE_UNITS = 10_000  # a USD cent in USDC's 6 decimals
ORDER_PENDING, ORDER_PAID, ORDER_ISSUED, ORDER_LAPSED = "pending", "paid", "issued", "lapsed"
ORDER_UNFULFILLED = "unfulfilled"


def card_price_cents(ticket_price: int) -> int | None:
    """A ticket's price by card in US cents: the USDC price, when it is whole cents."""
    if ticket_price <= 0 or ticket_price % CENTS_TO_BASE_UNITS:
        return None
    return ticket_price // CENTS_TO_BASE_UNITS


def order_ref(order_id: str) -> str:
    """The ref a card order's tickets are issued under on chain (a bytes32, once ever)."""
    return "0x" + keccak(text=f"audifi lottery card order {order_id}").hex()


class TicketOrder(Aggregate):
    """Tickets bought by card: an order payment sells (`payment.order.requested`, from the
    same save), paid -> issued on chain to `wallet`; or lapsed (expired, failed); or, paid
    when the round could no longer issue them, `unfulfilled` (its refund is payment's)."""

    @event("Requested")
    def __init__(
        self,
        *,
        round_id: str,
        wallet: str,
        account_id: str,
        count: int,
        unit_cents: int,
        currency: str,
        expires_at: datetime,
        at: datetime,
    ) -> None:
        self.round_id = round_id
        self.wallet = wallet
        self.account_id = account_id
        self.count = count
        self.unit_cents = unit_cents
        self.currency = currency
        self.expires_at = expires_at
        self.requested_at = at
        self.status = ORDER_PENDING
        self.payment: str | None = None
        self.reason: str | None = None

    @property
    def ref(self) -> str:
        return order_ref(str(self.id))

    def paid(self, payment: str, at: datetime) -> bool:
        if self.status != ORDER_PENDING:
            return False
        self._paid(payment=payment, at=at)
        return True

    @event("Paid")
    def _paid(self, *, payment: str, at: datetime) -> None:
        self.status = ORDER_PAID
        self.payment = payment

    def issued(self, at: datetime) -> bool:
        if self.status == ORDER_ISSUED:
            return False
        self._issued(at=at)
        return True

    @event("Issued")
    def _issued(self, *, at: datetime) -> None:
        self.status = ORDER_ISSUED

    def lapse(self, reason: str, at: datetime) -> bool:
        if self.status != ORDER_PENDING:
            return False
        self._lapsed(reason=reason, at=at)
        return True

    @event("Lapsed")
    def _lapsed(self, *, reason: str, at: datetime) -> None:
        self.status = ORDER_LAPSED
        self.reason = reason

    def unfulfilled(self, reason: str, at: datetime) -> bool:
        if self.status != ORDER_PAID:
            return False
        self._unfulfilled(reason=reason, at=at)
        return True

    @event("Unfulfilled")
    def _unfulfilled(self, *, reason: str, at: datetime) -> None:
        self.status = ORDER_UNFULFILLED
        self.reason = reason
