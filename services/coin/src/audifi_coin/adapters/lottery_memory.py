"""The `LotteryChain` port's in-memory twin: the Lottery contract's rules (Lottery.sol) and the
payments and burns a wallet makes, with balances, so tests can hold the service to what the
chain would do (tickets numbered by the contract, a ref issued once, the pot paid or carried).

Every transaction is a block of its own, as on the embedded chain; `mine()` adds an empty one.
Block hashes are keccak256 of the block number and a salt (`reorg()` changes the salt above a
block: the blocks are replaced, the transactions mined there are gone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from audifi_kit.chain.payments import (
    PaymentFailed,
    PaymentNotConfirmed,
    PaymentNotFound,
    PaymentWrongAmount,
    PaymentWrongRecipient,
)
from audifi_kit.errors import BlockchainError
from eth_utils import keccak

from audifi_coin.domain.draw import commitment, winning_ticket
from audifi_coin.domain.lottery import USDC, RoundTerms
from audifi_coin.lottery import (
    BurnNotYours,
    Burns,
    Closed,
    Drawn,
    DrawNotReady,
    Issued,
    NoBurn,
    Opened,
    Payment,
    PayTo,
)

TREASURY = "0x" + "7e" * 20
LOTTERY = "0x" + "10" * 20
TOKEN = "0x" + "d5" * 20
ZERO = "0x" + "00" * 20


class ContractReverted(BlockchainError):
    """What the contract would revert with: its error's name, as the adapter decodes it
    (`details["error"]`)."""

    def __init__(self, name: str) -> None:
        super().__init__(name, details={"error": name})


@dataclass
class _Round:
    seed_hash: bytes
    terms: RoundTerms
    pot: int
    tickets: list[tuple[str, int]] = field(default_factory=list)  # (holder, end)
    held: dict[str, int] = field(default_factory=dict)
    close_block: int = 0
    drawn: bool = False

    @property
    def count(self) -> int:
        return self.tickets[-1][1] if self.tickets else 0

    def holder(self, index: int) -> str:
        for holder, end in self.tickets:
            if index < end:
                return holder
        raise IndexError(index)


@dataclass
class _Tx:
    kind: str  # "payment" or "burn"
    sender: str
    block: int
    ok: bool = True
    to: str = ""
    method: str = USDC
    amount: int = 0
    burns: list[tuple[str, str, int]] = field(default_factory=list)  # (from, master, shares)
    at: datetime | None = None


class InMemoryLotteryChain:
    def __init__(
        self,
        *,
        confirmations: int = 1,
        treasury_balance: int = 10**15,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`clock`: the chain's time (blocks' timestamps), shared with the service in tests."""
        self.clock = clock
        self.confirmations = confirmations
        self.head = 1
        self.salt: dict[int, int] = {}
        self.rounds: list[_Round] = []
        self.refs: dict[str, Issued] = {}
        self.carried_over = 0
        self.txs: dict[str, _Tx] = {}
        self.token: dict[str, int] = {TREASURY: treasury_balance}
        self.native: dict[str, int] = {}
        self.shares: dict[tuple[str, str], int] = {}
        self.fail_next_issue_after_mining = False
        self._n = 0

    # -- the chain -----------------------------------------------------------------------------

    def block_hash(self, number: int) -> bytes:
        return keccak(number.to_bytes(32, "big") + self.salt.get(number, 0).to_bytes(8, "big"))

    def mine(self, blocks: int = 1) -> None:
        self.head += blocks

    def _tx_hash(self) -> str:
        self._n += 1
        return "0x" + keccak(f"twin tx {self._n}".encode()).hex()

    def _block(self) -> int:
        self.head += 1
        return self.head

    def reorg(self, above: int) -> list[str]:
        """Blocks above `above` replaced by empty ones: their transactions are gone."""
        gone = [h for h, tx in self.txs.items() if tx.block > above]
        for h in gone:
            tx = self.txs.pop(h)
            if tx.kind == "payment" and tx.ok:
                book = self.token if tx.method == USDC else self.native
                book[tx.to] -= tx.amount
                book[tx.sender] = book.get(tx.sender, 0) + tx.amount
        for n in range(above + 1, self.head + 1):
            self.salt[n] = self.salt.get(n, 0) + 1
        return gone

    # -- what wallets do -----------------------------------------------------------------------

    def fund(self, wallet: str, *, usdc: int = 0, native: int = 0) -> None:
        self.token[wallet] = self.token.get(wallet, 0) + usdc
        self.native[wallet] = self.native.get(wallet, 0) + native

    def grant_shares(self, wallet: str, master_id: str, shares: int) -> None:
        key = (wallet, master_id)
        self.shares[key] = self.shares.get(key, 0) + shares

    def pay(
        self,
        payer: str,
        amount: int,
        *,
        method: str = USDC,
        to: str = TREASURY,
        ok: bool = True,
        at: datetime | None = None,
    ) -> str:
        """A wallet's transfer (USDC or the native coin); `ok=False`: mined, reverted."""
        book = self.token if method == USDC else self.native
        if ok:
            if book.get(payer, 0) < amount:
                raise ValueError("insufficient balance")
            book[payer] -= amount
            book[to] = book.get(to, 0) + amount
        h = self._tx_hash()
        self.txs[h] = _Tx(
            "payment", payer, self._block(), ok, to, method, amount, at=at or self.clock()
        )
        return h

    def burn(self, sender: str, master_id: str, shares: int, *, holder: str | None = None) -> str:
        """`sender` burns `shares` of `holder`'s (its own by default: an approved operator may
        burn another's) MasterShares of `master_id`."""
        holder = holder or sender
        key = (holder, master_id)
        if self.shares.get(key, 0) < shares:
            raise ValueError("insufficient shares")
        self.shares[key] -= shares
        h = self._tx_hash()
        self.txs[h] = _Tx(
            "burn", sender, self._block(), burns=[(holder, master_id, shares)], at=self.clock()
        )
        return h

    def buy_on_contract(self, wallet: str, chain_round_id: int, count: int) -> tuple[int, str]:
        """The contract's own `buyTickets` (the wallet pays the contract)."""
        r = self.rounds[chain_round_id]
        self._selling(r, chain_round_id, wallet, count, issuing=False)
        paid = r.terms.ticket_price * count
        if self.token.get(wallet, 0) < paid:
            raise ContractReverted("ERC20InsufficientBalance")
        self.token[wallet] -= paid
        self.token[LOTTERY] = self.token.get(LOTTERY, 0) + paid
        r.pot += paid
        self._block()
        return self._add(r, wallet, count), self._tx_hash()

    # -- the port ------------------------------------------------------------------------------

    async def pay_to(self) -> PayTo:
        return PayTo(31337, LOTTERY, TREASURY, TOKEN, self.confirmations)

    async def open_round(self, seed_hash: bytes, terms: RoundTerms) -> Opened:
        if terms.ends_at <= self.clock():
            raise ContractReverted("CloseInPast")
        self.rounds.append(_Round(seed_hash, terms, self.carried_over))
        self.carried_over = 0
        self._block()
        return Opened(len(self.rounds) - 1, self.rounds[-1].pot, self._tx_hash())

    async def find_round(self, seed_hash: bytes) -> Opened | None:
        for i, r in enumerate(self.rounds):
            if r.seed_hash == seed_hash:
                return Opened(i, r.pot, "0x" + "00" * 32)
        return None

    async def check_payment(self, tx_hash: str, *, method: str, amount: int) -> Payment:
        tx = self.txs.get(tx_hash)
        if tx is None or tx.kind != "payment":
            raise PaymentNotFound(details={"txHash": tx_hash})
        if not tx.ok:
            raise PaymentFailed(details={"txHash": tx_hash})
        if tx.to != TREASURY or tx.method != method:
            raise PaymentWrongRecipient(details={"txHash": tx_hash})
        if tx.amount != amount:
            raise PaymentWrongAmount(details={"expected": str(amount), "actual": str(tx.amount)})
        depth = self.head - tx.block + 1
        if depth < self.confirmations:
            raise PaymentNotConfirmed(details={"confirmations": depth})
        assert tx.at is not None
        return Payment(tx.sender, tx.amount, tx.at)

    async def check_burns(self, tx_hashes: list[str], *, wallet: str, master_id: str) -> Burns:
        burnt = 0
        times: list[datetime] = []
        for h in tx_hashes:
            tx = self.txs.get(h)
            if tx is None:
                raise PaymentNotFound(details={"txHash": h})
            mine = [b for b in tx.burns if b[1] == master_id]
            if not mine:
                raise NoBurn(details={"txHash": h})
            if any(holder.lower() != wallet.lower() for holder, _, _ in mine):
                raise BurnNotYours(details={"txHash": h})
            if self.head - tx.block + 1 < self.confirmations:
                raise PaymentNotConfirmed(details={"txHash": h})
            burnt += sum(shares for _, _, shares in mine)
            assert tx.at is not None
            times.append(tx.at)
        return Burns(burnt, min(times), max(times))

    async def issue(
        self, chain_round_id: int, wallet: str, count: int, pot_added: int, ref: str
    ) -> Issued:
        r = self.rounds[chain_round_id]
        if ref in self.refs:  # the contract refuses it; the adapter reads the issue's log back
            return self.refs[ref]
        self._selling(r, chain_round_id, wallet, count, issuing=True)
        if self.token.get(TREASURY, 0) < pot_added:
            raise ContractReverted("ERC20InsufficientBalance")
        self.token[TREASURY] -= pot_added
        self.token[LOTTERY] = self.token.get(LOTTERY, 0) + pot_added
        r.pot += pot_added
        first = self._add(r, wallet, count)
        self._block()
        issued = Issued(first, count, wallet, pot_added, self._tx_hash())
        self.refs[ref] = issued
        if self.fail_next_issue_after_mining:
            self.fail_next_issue_after_mining = False
            raise ConnectionError("the node went away after mining the issue")
        return issued

    async def add_to_pot(self, chain_round_id: int, amount: int) -> str:
        r = self.rounds[chain_round_id]
        if r.drawn:
            raise ContractReverted("AlreadyDrawn")
        if self.token.get(TREASURY, 0) < amount:
            raise ContractReverted("ERC20InsufficientBalance")
        self.token[TREASURY] -= amount
        self.token[LOTTERY] = self.token.get(LOTTERY, 0) + amount
        r.pot += amount
        self._block()
        return self._tx_hash()

    async def close(self, chain_round_id: int) -> Closed:
        r = self.rounds[chain_round_id]
        if self.clock() < r.terms.ends_at:
            raise ContractReverted("RoundStillOpen")
        if r.close_block and not (self.head > r.close_block + 256):
            return Closed(r.close_block, r.count, r.pot)  # the adapter reads a closed round
        r.close_block = self._block()
        self._tx_hash()
        return Closed(r.close_block, r.count, r.pot)

    async def reveal(self, chain_round_id: int, seed: bytes) -> Drawn:
        r = self.rounds[chain_round_id]
        if not r.close_block:
            raise ContractReverted("NotClosed")
        if r.drawn:
            raise ContractReverted("AlreadyDrawn")
        draw_block = r.close_block + 1
        if self.head + 1 <= draw_block:  # the reveal's own block would be the draw block
            self.mine()  # meanwhile a live chain makes a block: asked again, it is ready
            raise DrawNotReady(details={"drawBlock": draw_block})
        if commitment(seed) != r.seed_hash:
            raise ContractReverted("SeedMismatch")
        block_hash = self.block_hash(draw_block)
        index = winning_ticket(seed, block_hash, r.count)
        r.drawn = True
        prize, winner = 0, None
        if index is None:
            self.carried_over += r.pot
        else:
            winner, prize = r.holder(index), r.pot
            self.token[LOTTERY] -= prize
            self.token[winner] = self.token.get(winner, 0) + prize
        r.pot = 0
        self._block()
        return Drawn(
            "0x" + seed.hex(), "0x" + block_hash.hex(), index, winner, prize, self._tx_hash()
        )

    # -- the contract's rules ------------------------------------------------------------------

    def _selling(self, r: _Round, i: int, wallet: str, count: int, *, issuing: bool) -> None:
        now = self.clock()
        if count == 0:
            raise ContractReverted("ZeroAmount")
        if now < r.terms.starts_at:
            raise ContractReverted("RoundNotOpen")
        if issuing and r.close_block:
            raise ContractReverted("AlreadyClosed")
        if not issuing and now >= r.terms.ends_at:
            raise ContractReverted("RoundClosed")
        cap = r.terms.max_per_wallet
        if cap and r.held.get(wallet, 0) + count > cap:
            raise ContractReverted("TicketCapExceeded")

    def _add(self, r: _Round, wallet: str, count: int) -> int:
        first = r.count
        r.tickets.append((wallet, first + count))
        r.held[wallet] = r.held.get(wallet, 0) + count
        return first

    def total_token(self) -> int:
        return sum(self.token.values())

    def describe(self) -> dict[str, Any]:
        return {"head": self.head, "rounds": len(self.rounds), "carried": self.carried_over}
