"""The Stoned Rabbits lottery over HTTP (`/lottery/...`; the gateway adds `/api/v1`).

For fans (any signed-in caller), the seed's four routes (DOMAIN.md §5.1.2), re-mapped to the
platform's EVM chain (X5: `paymentMethod` is "USDC" or "ETH", the native coin; addresses and
transaction hashes are 0x hex):

* `POST /lottery/purchase`: tickets for a transfer to the treasury the caller made first
  (`payTo` of the current round says where, in base units); the service checks it on chain
  and has the Lottery contract issue the tickets, numbered by the contract from 1.
* `POST /lottery/burn-claim`: tickets for the round's master's shares the wallet burnt.
* `GET /lottery/tickets/{walletAddress}`: the wallet's tickets in the current round.
* `GET /lottery/rounds/current`; and, for past rounds and their winners (which the seed
  leaves open), `GET /lottery/rounds`, `GET /lottery/rounds/{roundId}` and
  `GET /lottery/rounds/{roundId}/proof`: everything needed to recompute a winner without
  trusting the service (`formula`).

For admins ("Lottery Management", SR L508-512; the paths are this service's): create a round
(`POST /lottery/rounds`), view its ticket sales (`GET /lottery/rounds/{roundId}/tickets`),
trigger the drawing (`POST /lottery/rounds/{roundId}/draw`), manage the prize pool (`POST
/lottery/rounds/{roundId}/pot`: the operator moves its payment token into the pot).

Decided here (D-X2, D-K9): a purchase or a claim that cannot be honoured is an error in the
platform's envelope with its own code and status, never a 200 with `success: false`; so a
200 always says `success: true, transactionVerified: true`. The refusals a client meets:
TX_HASH_USED 409 (the transaction issued tickets already), AMOUNT_MISMATCH 400 (`amountPaid`
is not `ticketCount` x the price), PAYMENT_NOT_FOUND 404 (not mined yet, or no such
transaction), PAYMENT_NOT_CONFIRMED 409 (not deep enough yet: ask again), PAYMENT_FAILED 400
(the transfer reverted), PAYMENT_MISMATCH 400 (another recipient, token or amount),
WALLET_MISMATCH 400, PAID_OUTSIDE_ROUND 400, TICKET_CAP_EXCEEDED 400, ROUND_NOT_ACTIVE 409,
BURN_MISMATCH / NO_BURN / BURN_NOT_YOURS 400, ROUND_NOT_FOUND 404. A refusal changes nothing.

Amounts in base units (USDC: 6 decimals; wei for the native coin) are answered as decimal
strings, since wei exceed JSON's exact integers; a request may give one as an integer or as a
string of digits (a float, a bool, a negative number or any other text is refused with 400).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

import msgspec
from audifi_kit.errors import BlockchainError, Conflict, Forbidden, NotFound, ValidationFailed
from audifi_kit.fields import EvmAddress, ListOf, TxHash, UuidText, check, text_type
from audifi_kit.http import Identity
from audifi_kit.http.idempotency import IDEMPOTENT_OPT
from audifi_kit.values import MAX_SAFE_INTEGER, invalid, whole_number
from eth_utils import to_checksum_address
from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from audifi_coin.api.amounts import BaseUnits, base_units
from audifi_coin.api.dependencies import CoinContext, is_admin, provide_coin
from audifi_coin.domain.lottery import (
    COMPLETED,
    MAX_TICKETS_PER_ROUND,
    RoundTerms,
    TicketClaim,
    TicketOrder,
    TicketRange,
)
from audifi_coin.domain.lottery import LotteryRound as Round
from audifi_coin.lottery import (
    MAX_BURN_TRANSACTIONS,
    MAX_TICKETS_PER_PURCHASE,
    PayTo,
    PurchaseOutcome,
    require_admin,
)

CURRENCY = "USDC"  # the payment token the pot holds
DECIMALS = 6
FORMULA = (
    "winningIndex = uint256(keccak256(seed ++ drawBlockHash)) mod ticketsSold; "
    "winningTicket = winningIndex + 1"
)
RESERVED_ROUND_IDS = frozenset({"current"})  # GET /lottery/rounds/current is the current round

# -- request fields ----------------------------------------------------------------------------

RoundId = text_type(
    "[A-Za-z0-9._-]{1,50}",
    min_length=1,
    max_length=50,
    description="A round's id: 1 to 50 letters, digits, '.', '_' or '-'",
    examples=["2026-w50"],
)
TxHashes = ListOf(TxHash, max_length=MAX_BURN_TRANSACTIONS)
MasterIds = ListOf(UuidText, max_length=MAX_BURN_TRANSACTIONS)
Instant = Annotated[
    datetime, msgspec.Meta(tz=True, description="An ISO 8601 date-time with a timezone")
]


class PurchaseRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """The seed's PurchaseTicketsRequest: the transfer the wallet made to the treasury
    (`transactionSignature`, its hash) for `ticketCount` tickets, `amountPaid` in base units
    (exactly `ticketCount` x the round's price in that currency)."""

    wallet_address: EvmAddress
    ticket_count: int
    payment_method: Literal["USDC", "ETH"]
    transaction_signature: TxHash
    amount_paid: BaseUnits


class BurnClaimRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """The seed's BurnClaimRequest: the transactions in which the wallet burnt the round's
    master's shares (`sharesPerTicket` per ticket). `nftsBurned`, when given, names that
    master (the round's `burnMasterId`) for each entry."""

    wallet_address: EvmAddress
    transaction_signatures: TxHashes
    tickets_claimed: int
    nfts_burned: MasterIds = []


class CreateRoundRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """A round's terms: prices in base units (0: not sold in that currency), a burn rule
    (`burnMasterId` and `sharesPerTicket`, or neither), a per-wallet cap (0: none) and the
    sales window. The same id with the same terms again answers the same round."""

    id: RoundId
    ticket_price: BaseUnits
    start_date: Instant
    end_date: Instant
    native_ticket_price: BaseUnits = 0
    burn_master_id: UuidText | None = None
    shares_per_ticket: int = 0
    max_tickets_per_wallet: int = 0


class PotRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """`amount` base units of the payment token moved from the treasury into the pot."""

    amount: BaseUnits


# -- answers -----------------------------------------------------------------------------------


class OrderRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """Tickets bought by card: `ticketCount` tickets to `walletAddress` in the current round,
    at the round's USDC price in US cents."""

    wallet_address: EvmAddress
    ticket_count: int


class OrderView(msgspec.Struct, rename="camel", kw_only=True):
    """A card order: pay it at `POST /api/v1/payments/checkout {"orderId": id}` before
    `expiresAt`. `status`: pending, paid, issued (`ticketsIssued`), lapsed (expired or
    failed: nothing charged), unfulfilled (paid when the round could no longer issue them:
    `reason`; the payment is refunded by payment)."""

    id: str
    round_id: str
    wallet_address: str
    ticket_count: int
    amount_cents: int
    currency: str
    status: str
    expires_at: datetime
    tickets_issued: list[int]
    reason: str | None = None


class TicketsIssuedView(msgspec.Struct, rename="camel", kw_only=True):
    """The seed's PurchaseTicketsResponse (a refusal is an error, so `success` is true)."""

    success: bool
    tickets_issued: list[int]
    total_tickets: int  # the wallet's tickets in this round
    transaction_verified: bool
    round_id: str


class BurnClaimView(TicketsIssuedView, kw_only=True):
    shares_burned: str


class TicketEntryView(msgspec.Struct, rename="camel", kw_only=True):
    round_id: str
    ticket_numbers: list[int]
    acquisition_method: str  # purchase or burn
    payment_method: str | None  # USDC, ETH, or null (a burn, or bought on the contract)
    transaction_signature: str  # the transaction that paid or burnt
    issued_in: str  # the transaction that issued them on chain
    pot_added: str


class UserTicketsView(msgspec.Struct, rename="camel", kw_only=True):
    """The seed's UserTicketsResponse, for the current round."""

    wallet_address: str
    round_id: str
    total_tickets: int
    ticket_numbers: list[int]
    entries: list[TicketEntryView]


class PayToView(msgspec.Struct, rename="camel", kw_only=True):
    """Where tickets are paid: the treasury on chain `chainId` (USDC is the ERC-20 `token`),
    counted once `confirmations` blocks deep; `lottery` is the contract that numbers them."""

    chain_id: int
    lottery: str
    treasury: str
    token: str
    confirmations: int


class WinnerView(msgspec.Struct, rename="camel", kw_only=True):
    wallet: str
    ticket_number: int
    prize: str


class RoundView(msgspec.Struct, rename="camel", kw_only=True):
    """The seed's CurrentRoundResponse and more. `prizePool` is the pot in base units of the
    payment token; once completed, what the winner was paid (0: nobody won, the pot carried
    over to the next round)."""

    id: str
    prize_pool: str
    start_date: datetime
    end_date: datetime
    total_tickets_sold: int
    status: str  # opening, active, drawing, completed
    drawing_date: datetime  # when it was drawn; before that, when it may be
    ticket_price: str
    native_ticket_price: str
    burn_master_id: str | None
    shares_per_ticket: int
    max_tickets_per_wallet: int
    seed_hash: str  # keccak256(seed), committed on chain when the round opened
    chain_round_id: int | None
    pay_to: PayToView
    currency: str
    decimals: int
    winner: WinnerView | None


class TicketSaleView(msgspec.Struct, rename="camel", kw_only=True):
    """Tickets `firstTicket` .. `firstTicket + count - 1`, issued together to `wallet`."""

    first_ticket: int
    count: int
    wallet: str
    acquisition_method: str
    payment_method: str | None
    transaction_signature: str
    issued_in: str
    pot_added: str


class ProofView(msgspec.Struct, rename="camel", kw_only=True):
    """A drawn round's proof: check keccak256(seed) == seedHash (committed when the round
    opened), then recompute `formula` (big-endian, as Solidity's abi.encodePacked reads it)."""

    round_id: str
    chain_id: int
    lottery: str
    chain_round_id: int | None
    seed_hash: str
    seed: str
    close_block: int
    draw_block: int
    draw_block_hash: str
    tickets_sold: int
    winning_index: int | None
    winning_ticket: int | None
    winner: str | None
    prize: str
    formula: str


# -- views -------------------------------------------------------------------------------------


def pay_to_view(pay_to: PayTo) -> PayToView:
    return PayToView(
        chain_id=pay_to.chain_id,
        lottery=pay_to.lottery,
        treasury=pay_to.treasury,
        token=pay_to.token,
        confirmations=pay_to.confirmations,
    )


def round_view(r: Round, pay_to: PayTo) -> RoundView:
    t = r.terms
    completed = r.status == COMPLETED
    winner = None
    if r.winner is not None and r.winning_index is not None:
        winner = WinnerView(
            wallet=to_checksum_address(r.winner),
            ticket_number=r.winning_index + 1,
            prize=str(r.prize),
        )
    return RoundView(
        id=r.round_id,
        prize_pool=str(r.prize if completed else r.pot),
        start_date=t.starts_at.astimezone(UTC),
        end_date=t.ends_at.astimezone(UTC),
        total_tickets_sold=r.tickets_sold,
        status=r.status,
        drawing_date=(r.drawn_at or t.ends_at).astimezone(UTC),
        ticket_price=str(t.ticket_price),
        native_ticket_price=str(t.native_ticket_price),
        burn_master_id=t.burn_master_id,
        shares_per_ticket=t.shares_per_ticket,
        max_tickets_per_wallet=t.max_per_wallet,
        seed_hash=r.seed_hash.lower(),
        chain_round_id=r.chain_round_id,
        pay_to=pay_to_view(pay_to),
        currency=CURRENCY,
        decimals=DECIMALS,
        winner=winner,
    )


def issued_view(outcome: PurchaseOutcome) -> dict[str, Any]:
    claim = outcome.claim
    return {
        "success": True,
        "tickets_issued": outcome.numbers,
        "total_tickets": outcome.round.held_by(claim.wallet),
        "transaction_verified": True,
        "round_id": claim.round_id,
    }


def entry_view(round_id: str, t: TicketRange) -> TicketEntryView:
    return TicketEntryView(
        round_id=round_id,
        ticket_numbers=t.numbers,
        acquisition_method=t.method,
        payment_method=t.payment_method,
        transaction_signature=t.ref,
        issued_in=t.tx_hash,
        pot_added=str(t.pot_added),
    )


def sale_view(t: TicketRange) -> TicketSaleView:
    return TicketSaleView(
        first_ticket=t.first + 1,
        count=t.count,
        wallet=to_checksum_address(t.wallet),
        acquisition_method=t.method,
        payment_method=t.payment_method,
        transaction_signature=t.ref,
        issued_in=t.tx_hash,
        pot_added=str(t.pot_added),
    )


# -- request values ----------------------------------------------------------------------------


def order_view(order: TicketOrder, claim: TicketClaim | None) -> OrderView:
    tickets = claim.tickets() if claim is not None else None
    return OrderView(
        id=str(order.id),
        round_id=order.round_id,
        wallet_address=order.wallet,
        ticket_count=order.count,
        amount_cents=order.count * order.unit_cents,
        currency=order.currency,
        status=order.status,
        expires_at=order.expires_at,
        tickets_issued=tickets.numbers if tickets else [],
        reason=order.reason,
    )


def checked_wallet(value: str) -> str:
    return to_checksum_address(check(EvmAddress, value, field="walletAddress"))


def round_terms(data: CreateRoundRequest) -> RoundTerms:
    """The request's terms, instants in UTC (a retry giving another offset is the same),
    checked as the round checks them."""
    burn_master = str(UUID(data.burn_master_id)) if data.burn_master_id is not None else None
    terms = RoundTerms(
        ticket_price=base_units(data.ticket_price, field="ticketPrice"),
        native_ticket_price=base_units(data.native_ticket_price, field="nativeTicketPrice"),
        burn_master_id=burn_master,
        shares_per_ticket=whole_number(
            data.shares_per_ticket, field="sharesPerTicket", minimum=0, maximum=MAX_SAFE_INTEGER
        ),
        max_per_wallet=whole_number(
            data.max_tickets_per_wallet,
            field="maxTicketsPerWallet",
            minimum=0,
            maximum=MAX_TICKETS_PER_ROUND,
        ),
        starts_at=data.start_date.astimezone(UTC),
        ends_at=data.end_date.astimezone(UTC),
    )
    terms.check()
    return terms


def ticket_count(value: int, field: str) -> int:
    return whole_number(value, field=field, minimum=1, maximum=MAX_TICKETS_PER_PURCHASE)


# -- controllers -------------------------------------------------------------------------------


class LotteryController(Controller):
    """What fans do and read, and the rounds' collection: `GET /lottery/rounds` for anyone
    signed in, `POST /lottery/rounds` for admins. Litestar 2 cannot serve one path from two
    controllers (each registration adds its own OPTIONS handler: "Handler already registered
    for path '/lottery/rounds' and http method OPTIONS"), so both methods of that path are
    here; the rest of the admin's routes are `LotteryAdminController`'s, under
    `/lottery/rounds/{roundId}/...`, paths no handler here uses."""

    path = "/lottery"
    tags = ["lottery"]
    dependencies = {"coin": Provide(provide_coin)}

    @post(
        "/purchase",
        status_code=200,
        opt={IDEMPOTENT_OPT: True},
        raises=(ValidationFailed, NotFound, Conflict, BlockchainError),
    )
    async def purchase(
        self,
        data: JSONBody[PurchaseRequest],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> TicketsIssuedView:
        """Tickets for a transfer already made to the treasury (`payTo` of the current round),
        checked on chain: `amountPaid` is exactly `ticketCount` x the round's price in
        `paymentMethod`, sent from `walletAddress` within the round's window. Each transaction
        issues tickets once, ever (again: 409 TX_HASH_USED naming the tickets it issued)."""
        count = ticket_count(data.ticket_count, "ticketCount")
        amount = base_units(data.amount_paid, field="amountPaid", minimum=1)
        outcome = await coin.lottery.purchase(
            wallet=data.wallet_address,
            count=count,
            payment_method=data.payment_method,
            tx_hash=data.transaction_signature,
            amount_paid=amount,
            account_id=identity.user_id,
        )
        return TicketsIssuedView(**issued_view(outcome))

    @post(
        "/burn-claim",
        status_code=200,
        opt={IDEMPOTENT_OPT: True},
        raises=(ValidationFailed, NotFound, Conflict, BlockchainError),
    )
    async def burn_claim(
        self,
        data: JSONBody[BurnClaimRequest],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> BurnClaimView:
        """Tickets for the current round's master's shares `walletAddress` burnt in
        `transactionSignatures` (1 to 20): exactly `ticketsClaimed` x `sharesPerTicket`."""
        count = ticket_count(data.tickets_claimed, "ticketsClaimed")
        lottery = coin.lottery
        if data.nfts_burned:
            master = (await lottery.current()).terms.burn_master_id
            for i, named in enumerate(data.nfts_burned):
                if master is None or str(UUID(named)) != master:
                    raise ValidationFailed(
                        "nftsBurned names a master whose shares this round does not take",
                        details={"field": f"nftsBurned[{i}]", "burnMasterId": master},
                    )
        outcome = await lottery.burn_claim(
            wallet=data.wallet_address,
            tx_hashes=list(data.transaction_signatures),
            tickets=count,
            account_id=identity.user_id,
        )
        return BurnClaimView(**issued_view(outcome), shares_burned=str(outcome.claim.amount))

    @post(
        "/orders",
        status_code=201,
        opt={IDEMPOTENT_OPT: True},
        raises=(ValidationFailed, NotFound, Conflict),
    )
    async def order(
        self,
        data: JSONBody[OrderRequest],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> OrderView:
        """Tickets by card: an order payment sells (pay it at `POST /payments/checkout`);
        the tickets are issued on chain to the wallet once it is paid. Send an
        `Idempotency-Key` to retry one safely."""
        count = ticket_count(data.ticket_count, "ticketCount")
        lottery = coin.lottery
        made = await lottery.order_tickets(
            order_id=uuid4(), wallet=data.wallet_address, count=count, account_id=identity.user_id
        )
        return order_view(made, None)

    @get("/orders/{order_id:uuid}", raises=(NotFound, Forbidden))
    async def order_status(
        self,
        order_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> OrderView:
        """A card order, its buyer's (or an admin's) to read."""
        order, claim = await coin.lottery.order(order_id)
        if order.account_id != identity.user_id and not is_admin(identity):
            raise NotFound("No such ticket order", code="ORDER_NOT_FOUND")
        return order_view(order, claim)

    @get("/tickets/{wallet_address:str}", raises=(ValidationFailed, NotFound))
    async def tickets(
        self,
        wallet_address: FromPath[str],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> UserTicketsView:
        """A wallet's tickets in the current round, by the ranges the chain issued them in."""
        address = checked_wallet(wallet_address)
        r = await coin.lottery.current()
        mine = [t for t in r.tickets() if t.wallet.lower() == address.lower()]
        numbers = sorted(n for t in mine for n in t.numbers)
        return UserTicketsView(
            wallet_address=address,
            round_id=r.round_id,
            total_tickets=len(numbers),
            ticket_numbers=numbers,
            entries=[entry_view(r.round_id, t) for t in mine],
        )

    @get("/rounds/current", raises=(NotFound,))
    async def current(
        self, identity: NamedDependency[Identity], coin: NamedDependency[CoinContext]
    ) -> RoundView:
        """The round selling now; else the newest not yet completed. 404 ROUND_NOT_FOUND when
        there is none."""
        lottery = coin.lottery
        return round_view(await lottery.current(), await lottery.chain.pay_to())

    @post(
        "/rounds",
        status_code=201,
        opt={IDEMPOTENT_OPT: True},
        raises=(Forbidden, ValidationFailed, Conflict, BlockchainError),
    )
    async def create_round(
        self,
        data: JSONBody[CreateRoundRequest],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> RoundView:
        """An admin's: a round, opened on chain with its seed's hash committed. The same id
        with the same terms again answers that round; with other terms, 409 ROUND_EXISTS.
        (Here rather than in `LotteryAdminController`: Litestar cannot split one path's
        methods over two controllers, and `GET /lottery/rounds` is every fan's.)"""
        require_admin(is_admin(identity))
        if data.id.lower() in RESERVED_ROUND_IDS:
            raise invalid("id", f"'{data.id}' is reserved: choose another round id")
        terms = round_terms(data)
        lottery = coin.lottery
        r = await lottery.create_round(data.id, terms, actor_id=identity.user_id)
        return round_view(r, await lottery.chain.pay_to())

    @get("/rounds")
    async def rounds(
        self, identity: NamedDependency[Identity], coin: NamedDependency[CoinContext]
    ) -> list[RoundView]:
        """Every round, newest first, past ones with their winners."""
        lottery = coin.lottery
        pay_to = await lottery.chain.pay_to()
        return [round_view(r, pay_to) for r in await lottery.rounds()]

    @get("/rounds/{round_id:str}", raises=(NotFound,))
    async def round(
        self,
        round_id: FromPath[str],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> RoundView:
        lottery = coin.lottery
        return round_view(await lottery.round(round_id), await lottery.chain.pay_to())

    @get("/rounds/{round_id:str}/proof", raises=(NotFound, Conflict))
    async def proof(
        self,
        round_id: FromPath[str],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> ProofView:
        """Everything needed to recompute a drawn round's winner (409 ROUND_NOT_DRAWN before)."""
        lottery = coin.lottery
        r, proof = await lottery.proof(round_id)
        pay_to = await lottery.chain.pay_to()
        index = proof.winning_ticket
        return ProofView(
            round_id=r.round_id,
            chain_id=pay_to.chain_id,
            lottery=pay_to.lottery,
            chain_round_id=r.chain_round_id,
            seed_hash="0x" + proof.seed_hash.hex(),
            seed="0x" + proof.seed.hex(),
            close_block=proof.close_block,
            draw_block=proof.close_block + 1,
            draw_block_hash="0x" + proof.draw_block_hash.hex(),
            tickets_sold=proof.tickets_sold,
            winning_index=index,
            winning_ticket=None if index is None else index + 1,
            winner=None if r.winner is None else to_checksum_address(r.winner),
            prize=str(r.prize),
            formula=FORMULA,
        )


class LotteryAdminController(Controller):
    """Lottery management, for admins only (403 FORBIDDEN for anyone else): a round's ticket
    sales, its draw and its pot. Creating a round is `LotteryController.create_round`."""

    path = "/lottery/rounds"
    tags = ["lottery"]
    dependencies = {"coin": Provide(provide_coin)}

    @get("/{round_id:str}/tickets", raises=(Forbidden, NotFound))
    async def sales(
        self,
        round_id: FromPath[str],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> list[TicketSaleView]:
        """The round's ticket sales, in ticket order: each range the chain issued."""
        require_admin(is_admin(identity))
        r = await coin.lottery.round(round_id)
        return [sale_view(t) for t in r.tickets()]

    @post(
        "/{round_id:str}/draw",
        status_code=200,
        raises=(Forbidden, NotFound, Conflict, BlockchainError),
    )
    async def draw(
        self,
        round_id: FromPath[str],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> RoundView:
        """Close the round on chain (after its end date: 409 ROUND_NOT_OVER before), wait for
        the draw block, reveal the seed: the contract names the winner and pays the pot (with
        no tickets it carries over). Safe to repeat: a drawn round is answered as it is."""
        require_admin(is_admin(identity))
        lottery = coin.lottery
        r = await lottery.draw(round_id)
        return round_view(r, await lottery.chain.pay_to())

    @post(
        "/{round_id:str}/pot",
        status_code=200,
        opt={IDEMPOTENT_OPT: True},
        raises=(Forbidden, ValidationFailed, NotFound, Conflict, BlockchainError),
    )
    async def add_to_pot(
        self,
        round_id: FromPath[str],
        data: JSONBody[PotRequest],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> RoundView:
        """The operator moves `amount` base units of its payment token into the round's pot
        (409 ROUND_COMPLETED once drawn). Each request moves money: send an `Idempotency-Key`
        to retry one safely."""
        require_admin(is_admin(identity))
        amount = base_units(data.amount, field="amount", minimum=1)
        lottery = coin.lottery
        r = await lottery.add_to_pot(round_id, amount)
        return round_view(r, await lottery.chain.pay_to())
