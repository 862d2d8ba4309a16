"""The lottery's service layer: what a request asks, free of the web.

`Lottery` checks a purchase or a burn against the chain (through the `LotteryChain` port:
the Lottery contract and the payment checks on the platform's chain, or its in-memory twin),
claims the transaction hashes in the event store (once, ever), has the operator issue the
tickets on chain (`issueTickets`, keyed by the claim's hash: the contract issues a ref once,
so a retry after a crash cannot issue twice) and records the range the receipt names. The
draw: the round is closed on chain (its ticket count final, the draw block the next one), and
once that block is mined the seed is revealed and the contract names the winner and pays the
pot (`domain/draw.py` recomputes it from the proof).

A round's seed is never stored: it is HMAC-SHA256(the service's lottery key, round id), so the
event store (and anyone replaying it) cannot learn it before the reveal; its hash is committed
on chain when the round opens.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from audifi_kit.errors import BlockchainError, Conflict, Forbidden, ValidationFailed
from audifi_kit.eventstore import EventStore
from eth_utils import is_hex_address, to_checksum_address

from audifi_coin.application import CoinApplication
from audifi_coin.domain.draw import DrawProof, commitment
from audifi_coin.domain.lottery import (
    ACTIVE,
    BURN,
    CARD,
    CARD_ORDER_MINUTES,
    COMPLETED,
    DRAWING,
    OPENING,
    ORDER_ISSUED,
    ORDER_PAID,
    PAYMENT_METHODS,
    PURCHASE,
    USDC,
    NoCurrentRound,
    RoundNotActive,
    RoundNotOver,
    RoundTerms,
    TicketClaim,
    TicketOrder,
    TicketRange,
    TxHashUsed,
    card_price_cents,
)
from audifi_coin.domain.lottery import LotteryRound as Round

TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
MAX_TICKETS_PER_PURCHASE = 10_000
MAX_BURN_TRANSACTIONS = 20
# How long a draw waits for the block after the close before answering DRAW_NOT_READY (ask
# again): within the gateway's 30 s for /lottery, a few blocks of a public chain.
DRAW_WAIT = 20.0
# The contract's refusals that mean a paid card order's tickets cannot be issued any more.
UNISSUABLE = frozenset({"AlreadyClosed", "TicketCapExceeded", "RoundNotOpen"})


@dataclass(frozen=True, slots=True)
class PayTo:
    """Where and how tickets are paid: the treasury (the Lottery's operator) receives."""

    chain_id: int
    lottery: str
    treasury: str
    token: str
    confirmations: int


@dataclass(frozen=True, slots=True)
class Payment:
    payer: str
    amount: int
    block_time: datetime


@dataclass(frozen=True, slots=True)
class Burns:
    """Shares of a master a wallet burnt in some transactions, and when (blocks' times)."""

    shares: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True, slots=True)
class Opened:
    chain_round_id: int
    pot: int
    tx_hash: str


@dataclass(frozen=True, slots=True)
class Issued:
    first: int
    count: int
    wallet: str
    pot_added: int
    tx_hash: str


@dataclass(frozen=True, slots=True)
class Closed:
    close_block: int
    tickets: int
    pot: int


@dataclass(frozen=True, slots=True)
class Drawn:
    seed: str
    draw_block_hash: str
    winning_index: int | None
    winner: str | None
    prize: int
    tx_hash: str


class DrawNotReady(Conflict):
    """The draw block (the first after the close) is not mined yet: ask again shortly."""

    code = "DRAW_NOT_READY"
    default_message = "The round is closed; the block its draw reads is not mined yet"


class AmountMismatch(ValidationFailed):
    code = "AMOUNT_MISMATCH"
    default_message = "amountPaid is not ticketCount times the round's price"


class WalletMismatch(ValidationFailed):
    code = "WALLET_MISMATCH"
    default_message = "The transaction was not sent from walletAddress"


class PaidOutsideRound(ValidationFailed):
    code = "PAID_OUTSIDE_ROUND"
    default_message = "The payment was mined outside the round's sales window"


class BurnMismatch(ValidationFailed):
    code = "BURN_MISMATCH"
    default_message = "The shares burnt do not make ticketsClaimed tickets"


class NoBurn(ValidationFailed):
    code = "NO_BURN"
    default_message = "The transaction burnt none of the round's shares"


class BurnNotYours(ValidationFailed):
    code = "BURN_NOT_YOURS"
    default_message = "The transaction burnt shares another wallet held"


class LotteryChain(Protocol):
    """The Lottery contract and the payment checks, as the service needs them."""

    async def pay_to(self) -> PayTo: ...

    async def open_round(self, seed_hash: bytes, terms: RoundTerms) -> Opened: ...

    async def find_round(self, seed_hash: bytes) -> Opened | None: ...

    async def check_payment(self, tx_hash: str, *, method: str, amount: int) -> Payment: ...

    async def check_burns(self, tx_hashes: list[str], *, wallet: str, master_id: str) -> Burns: ...

    async def issue(
        self, chain_round_id: int, wallet: str, count: int, pot_added: int, ref: str
    ) -> Issued: ...

    async def add_to_pot(self, chain_round_id: int, amount: int) -> str: ...

    async def close(self, chain_round_id: int) -> Closed: ...

    async def reveal(self, chain_round_id: int, seed: bytes) -> Drawn: ...


def seed_for(key: bytes, round_id: str) -> bytes:
    """A round's seed: HMAC-SHA256(key, round id). Nothing stores it; the key reveals it."""
    return hmac.new(key, f"audifi lottery seed\x00{round_id}".encode(), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class PurchaseOutcome:
    claim: TicketClaim
    round: Round

    @property
    def numbers(self) -> list[int]:
        tickets = self.claim.tickets()
        return tickets.numbers if tickets else []


class Lottery:
    def __init__(
        self,
        store: EventStore[CoinApplication] | Any,
        chain: LotteryChain,
        seed_key: bytes,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        draw_wait: float = DRAW_WAIT,
    ) -> None:
        self.store = store
        self.chain = chain
        self.seed_key = seed_key
        self.clock = clock
        self.draw_wait = draw_wait

    @property
    def app(self) -> CoinApplication:
        return self.store.app  # type: ignore[no-any-return]

    # -- rounds --------------------------------------------------------------------------------

    async def create_round(self, round_id: str, terms: RoundTerms, *, actor_id: str) -> Round:
        """A round created and opened on chain with its seed committed. A retry (or a round
        left `opening` by a crash) finds the chain round by its commitment before opening."""
        seed_hash = commitment(seed_for(self.seed_key, round_id))
        known = await self.store.call(self.app.claimed_round, round_id)
        if known is None and terms.ends_at <= self.clock():
            # Checked before it is saved: the contract would refuse it, leaving it `opening`.
            raise ValidationFailed(
                "endDate has passed: a round must end in the future",
                details={"field": "endDate"},
            )
        r: Round = await self.store.call(
            self.app.create_round,
            round_id=round_id,
            terms=terms,
            seed_hash="0x" + seed_hash.hex(),
            actor_id=actor_id,
            at=self.clock(),
        )
        if r.status != OPENING:
            return r
        opened = await self.chain.find_round(seed_hash) or await self.chain.open_round(
            seed_hash, terms
        )
        return await self.store.call(  # type: ignore[no-any-return]
            self.app.round_opened,
            round_id,
            chain_round_id=opened.chain_round_id,
            pot=opened.pot,
            tx_hash=opened.tx_hash,
            at=self.clock(),
        )

    async def round(self, round_id: str) -> Round:
        return await self.store.call(self.app.round, round_id)  # type: ignore[no-any-return]

    async def rounds(self) -> list[Round]:
        ids: list[str] = await self.store.call(self.app.round_ids)
        return [await self.round(i) for i in reversed(ids)]

    async def current(self) -> Round:
        """The round selling now, else the newest not yet completed (between rounds: the one
        being drawn, or the next to open)."""
        now = self.clock()
        waiting = None
        ids: list[str] = await self.store.call(self.app.round_ids)
        for round_id in reversed(ids):  # newest first, back to the newest completed one
            r = await self.round(round_id)
            if r.selling(now):
                return r
            if r.status == COMPLETED:
                break  # the rounds before it are drawn too (or were abandoned to it)
            if waiting is None and r.status in (ACTIVE, DRAWING):
                waiting = r
        if waiting is None:
            raise NoCurrentRound()
        return waiting

    # -- tickets -------------------------------------------------------------------------------

    async def purchase(
        self,
        *,
        wallet: str,
        count: int,
        payment_method: str,
        tx_hash: str,
        amount_paid: int,
        account_id: str | None,
    ) -> PurchaseOutcome:
        """Tickets for a payment to the treasury, verified on chain: exactly `count` times the
        round's price in that currency, from `wallet`, mined within the round's window."""
        wallet = _wallet(wallet)
        tx_hash = _tx_hash(tx_hash, "transactionSignature")
        if payment_method not in PAYMENT_METHODS:
            raise ValidationFailed(
                f"paymentMethod must be one of {', '.join(PAYMENT_METHODS)}",
                details={"field": "paymentMethod"},
            )
        r = await self.current()
        claim = await self.store.call(self.app.claim, tx_hash)
        if claim is not None:
            return await self._resume(claim, wallet)
        r.check_sale(wallet, count, now=self.clock())
        price = r.terms.price_of(payment_method)
        if price == 0:
            raise RoundNotActive(
                f"This round is not sold for {payment_method}",
                details={"roundId": r.round_id, "paymentMethod": payment_method},
            )
        if amount_paid != count * price:
            raise AmountMismatch(
                details={"expected": str(count * price), "actual": str(amount_paid)}
            )
        paid = await self.chain.check_payment(tx_hash, method=payment_method, amount=amount_paid)
        if paid.payer.lower() != wallet.lower():
            raise WalletMismatch(details={"payer": paid.payer, "walletAddress": wallet})
        if not r.terms.starts_at <= paid.block_time < r.terms.ends_at:
            raise PaidOutsideRound(details={"minedAt": paid.block_time.isoformat()})
        # The pot holds the payment token: a USDC payment goes in whole; a native-coin
        # payment stays with the treasury (an admin moves value into the pot: DECIDED).
        pot_added = amount_paid if payment_method == USDC else 0
        claim = await self.store.call(
            self.app.claim_tickets,
            tx_hashes=[tx_hash],
            round_id=r.round_id,
            wallet=wallet,
            account_id=account_id,
            method=PURCHASE,
            payment_method=payment_method,
            count=count,
            amount=amount_paid,
            pot_added=pot_added,
            at=self.clock(),
        )
        return await self._issue(claim)

    async def burn_claim(
        self, *, wallet: str, tx_hashes: list[str], tickets: int, account_id: str | None
    ) -> PurchaseOutcome:
        """Tickets for the round's master's shares that `wallet` burnt (in those transactions):
        exactly `tickets` x the round's shares per ticket."""
        wallet = _wallet(wallet)
        if not tx_hashes or len(tx_hashes) > MAX_BURN_TRANSACTIONS:
            raise ValidationFailed(
                f"transactionSignatures must name 1 to {MAX_BURN_TRANSACTIONS} transactions",
                details={"field": "transactionSignatures"},
            )
        hashes = [_tx_hash(h, "transactionSignatures").lower() for h in tx_hashes]
        if len(set(hashes)) != len(hashes):
            raise ValidationFailed(
                "transactionSignatures names a transaction twice",
                details={"field": "transactionSignatures"},
            )
        r = await self.current()
        for h in hashes:
            claim = await self.store.call(self.app.claim, h)
            if claim is not None:
                if claim.tx_hashes == hashes:
                    return await self._resume(claim, wallet)
                raise TxHashUsed(details={"txHash": h})
        r.check_sale(wallet, tickets, now=self.clock())
        per_ticket = r.terms.shares_per_ticket
        if not per_ticket or r.terms.burn_master_id is None:
            raise RoundNotActive(
                "This round gives no tickets for burnt shares", details={"roundId": r.round_id}
            )
        burns = await self.chain.check_burns(
            hashes, wallet=wallet, master_id=r.terms.burn_master_id
        )
        if burns.first_at < r.terms.starts_at or burns.last_at >= r.terms.ends_at:
            raise PaidOutsideRound(
                "The shares were burnt outside the round's window",
                details={"burntAt": burns.first_at.isoformat()},
            )
        burnt = burns.shares
        if burnt != tickets * per_ticket:
            raise BurnMismatch(
                details={
                    "sharesBurned": burnt,
                    "sharesPerTicket": per_ticket,
                    "ticketsClaimed": tickets,
                    "ticketsDue": burnt // per_ticket,
                }
            )
        claim = await self.store.call(
            self.app.claim_tickets,
            tx_hashes=hashes,
            round_id=r.round_id,
            wallet=wallet,
            account_id=account_id,
            method=BURN,
            payment_method=None,
            count=tickets,
            amount=burnt,
            pot_added=0,
            at=self.clock(),
        )
        return await self._issue(claim)

    async def _resume(self, claim: TicketClaim, wallet: str) -> PurchaseOutcome:
        """A hash claimed before: refused, unless it is this wallet's claim whose tickets were
        never issued (a crash, or a reorganisation dropped the issue), which is issued now."""
        if claim.state == "verified" and claim.wallet.lower() == wallet.lower():
            return await self._issue(claim)
        tickets = claim.tickets()
        raise TxHashUsed(
            details={
                "txHash": claim.tx_hash,
                "roundId": claim.round_id,
                "ticketsIssued": tickets.numbers if tickets else [],
            }
        )

    async def _issue(self, claim: TicketClaim) -> PurchaseOutcome:
        r = await self.round(claim.round_id)
        assert r.chain_round_id is not None
        issued = await self.chain.issue(
            r.chain_round_id, claim.wallet, claim.count, claim.pot_added, claim.tx_hash
        )
        tickets = TicketRange(
            first=issued.first,
            count=issued.count,
            wallet=issued.wallet,
            method=claim.method,
            payment_method=claim.payment_method,
            ref=claim.tx_hash,
            pot_added=issued.pot_added,
            tx_hash=issued.tx_hash,
        )
        r = await self.store.call(self.app.record_tickets, claim.round_id, tickets, at=self.clock())
        done: TicketClaim = await self.store.call(self.app.claim, claim.tx_hash)
        return PurchaseOutcome(done, r)

    # -- tickets by card (payment sells them) ---------------------------------------------------

    async def order_tickets(
        self, *, order_id: UUID, wallet: str, count: int, account_id: str
    ) -> TicketOrder:
        """A card order for `count` tickets to `wallet` in the current round: payment opens
        it (`payment.order.requested`) and the buyer pays at `POST /payments/checkout`; its
        tickets are issued when payment says it is paid."""
        wallet = _wallet(wallet)
        existing = await self.store.call(self.app.find_ticket_order, order_id)
        if existing is not None:
            return existing  # type: ignore[no-any-return]
        r = await self.current()
        r.check_sale(wallet, count, now=self.clock())
        cents = card_price_cents(r.terms.ticket_price)
        if cents is None:
            raise RoundNotActive("This round is not sold by card", details={"roundId": r.round_id})
        now = self.clock()
        return await self.store.call(  # type: ignore[no-any-return]
            self.app.request_ticket_order,
            order_id,
            round_id=r.round_id,
            wallet=wallet,
            account_id=account_id,
            count=count,
            unit_cents=cents,
            currency="USD",
            expires_at=min(now + timedelta(minutes=CARD_ORDER_MINUTES), r.terms.ends_at),
            at=now,
        )

    async def order(self, order_id: UUID) -> tuple[TicketOrder, TicketClaim | None]:
        order: TicketOrder = await self.store.call(self.app.ticket_order, order_id)
        claim = await self.store.call(self.app.claim, order.ref)
        return order, claim

    async def fulfil_order(self, order_id: UUID, payment: str) -> TicketOrder:
        """Payment says the order is paid: its tickets issued on chain (under the order's
        ref, once). A round that can no longer issue them (closed, or the wallet's cap
        reached meanwhile) leaves the order `unfulfilled`: paid, nothing issued."""
        order: TicketOrder = await self.store.call(
            self.app.change_order, order_id, "paid", payment, self.clock()
        )
        if order.status not in (ORDER_PAID, ORDER_ISSUED):
            return order
        claim = await self.store.call(self.app.claim, order.ref)
        if claim is None:
            claim = await self.store.call(
                self.app.claim_tickets,
                tx_hashes=[order.ref],
                round_id=order.round_id,
                wallet=order.wallet,
                account_id=order.account_id,
                method=PURCHASE,
                payment_method=CARD,
                count=order.count,
                amount=order.count * order.unit_cents,
                pot_added=0,
                at=self.clock(),
            )
        if claim.state != "issued":
            try:
                await self._issue(claim)
            except BlockchainError as exc:
                refused = exc.details.get("error")
                if refused not in UNISSUABLE:
                    raise
                return await self.store.call(  # type: ignore[no-any-return]
                    self.app.change_order, order_id, "unfulfilled", str(refused), self.clock()
                )
        return await self.store.call(  # type: ignore[no-any-return]
            self.app.change_order, order_id, "issued", self.clock()
        )

    async def lapse_order(self, order_id: UUID, reason: str) -> TicketOrder:
        return await self.store.call(  # type: ignore[no-any-return]
            self.app.change_order, order_id, "lapse", reason, self.clock()
        )

    # -- the pot and the draw ------------------------------------------------------------------

    async def add_to_pot(self, round_id: str, amount: int) -> Round:
        r = await self.round(round_id)
        if r.chain_round_id is None:
            raise RoundNotActive(details={"roundId": round_id, "status": r.status})
        if r.drawn_at is not None:
            raise Conflict(
                "The round is drawn: its pot is paid out",
                code="ROUND_COMPLETED",
                details={"roundId": round_id},
            )
        if amount < 1:
            raise ValidationFailed("amount must be at least 1", details={"field": "amount"})
        tx_hash = await self.chain.add_to_pot(r.chain_round_id, amount)
        return await self.store.call(  # type: ignore[no-any-return]
            self.app.add_to_pot, round_id, amount=amount, tx_hash=tx_hash, at=self.clock()
        )

    async def draw(self, round_id: str) -> Round:
        """Close the round on chain (after its end date), wait for the draw block, reveal.
        Safe to repeat: each step is skipped once done, on chain and here."""
        r = await self.round(round_id)
        if r.status == OPENING:
            raise RoundNotActive(details={"roundId": round_id, "status": r.status})
        if r.drawn_at is not None:
            return r
        if self.clock() < r.terms.ends_at:
            raise RoundNotOver(
                details={"roundId": round_id, "endDate": r.terms.ends_at.isoformat()}
            )
        assert r.chain_round_id is not None
        closed = await self.chain.close(r.chain_round_id)
        r = await self.store.call(
            self.app.close_round,
            round_id,
            close_block=closed.close_block,
            tickets=closed.tickets,
            pot=closed.pot,
            at=self.clock(),
        )
        seed = seed_for(self.seed_key, round_id)
        drawn = await self._reveal(r.chain_round_id, seed)
        return await self.store.call(  # type: ignore[no-any-return]
            self.app.draw_round,
            round_id,
            seed=drawn.seed,
            draw_block_hash=drawn.draw_block_hash,
            winning_index=drawn.winning_index,
            winner=drawn.winner,
            prize=drawn.prize,
            tx_hash=drawn.tx_hash,
            at=self.clock(),
        )

    async def _reveal(self, chain_round_id: int, seed: bytes) -> Drawn:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.draw_wait
        delay = 0.05
        while True:
            try:
                return await self.chain.reveal(chain_round_id, seed)
            except DrawNotReady:
                if loop.time() + delay > deadline:
                    raise
                await asyncio.sleep(delay)  # a block is mined every few seconds
                delay = min(delay * 2, 2.0)

    async def proof(self, round_id: str) -> tuple[Round, DrawProof]:
        r = await self.round(round_id)
        if r.drawn_at is None or r.seed is None or r.draw_block_hash is None:
            raise Conflict(
                "The round is not drawn yet", code="ROUND_NOT_DRAWN", details={"roundId": round_id}
            )
        assert r.close_block is not None and r.tickets_at_close is not None
        proof = DrawProof(
            round_id=round_id,
            seed_hash=bytes.fromhex(r.seed_hash[2:]),
            seed=bytes.fromhex(r.seed[2:]),
            close_block=r.close_block,
            draw_block_hash=bytes.fromhex(r.draw_block_hash[2:]),
            tickets_sold=r.tickets_at_close,
            winning_ticket=r.winning_index,
        )
        return r, proof


def require_admin(is_admin: bool) -> None:
    if not is_admin:
        raise Forbidden("Only an admin runs the lottery")


def _wallet(value: str) -> str:
    if not isinstance(value, str) or not is_hex_address(value):
        raise ValidationFailed(
            "walletAddress must be a 0x-prefixed 20-byte address",
            details={"field": "walletAddress"},
        )
    return to_checksum_address(value)


def _tx_hash(value: str, field: str) -> str:
    if not isinstance(value, str) or not TX_HASH.match(value):
        raise ValidationFailed(
            f"{field} must be a 0x-prefixed 32-byte transaction hash", details={"field": field}
        )
    return value.lower()
