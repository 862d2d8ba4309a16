"""The in-memory twin of the `SharesChain` port: MasterShares' rules (an IPO opened once, a
cap above zero, never more minted than the cap), no chain. `fail_next` makes the next
transaction fail as the chain would; `lose_next_send` makes the next mint be signed (and
recorded by its caller) but never sent, as when a process dies between the two."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from audifi_kit.chain.adapter import ResendOutcome, SignedTx
from audifi_kit.chain.payments import ConfirmedPayment, PaymentNotFound, PaymentWrongAmount
from audifi_kit.errors import BlockchainError

from audifi_nft.distributions import Funding, Sweep, TreasuryShort
from audifi_nft.ipos import MintReceipt, PayTo

CUSTODY = "0x000000000000000000000000000000000000C057"
DEV_USD = "0x000000000000000000000000000000000000D05D"


class ProcessDied(BaseException):
    """What `lose_next_send` raises: the process ended between recording and sending."""


@dataclass
class _Signed:
    to: str
    master_chain_id: int
    amount: int
    nonce: int
    from_address: str | None = None  # None: a mint


class InMemoryShares:
    def __init__(self) -> None:
        self.caps: dict[int, int] = {}
        self.minted: dict[int, int] = {}
        self.transactions: list[tuple[str, tuple[object, ...]]] = []
        self.fail_next: str | None = None
        self.lose_next_send = False
        self.balances: dict[tuple[int, str], int] = {}
        self.receipts: dict[str, MintReceipt] = {}
        self._signed: dict[str, _Signed] = {}
        self._next_nonce = 0
        self._block = itertools.count(1)
        self._nonce = itertools.count()

    def _tx(self, action: str, *args: object) -> str:
        if self.fail_next is not None:
            reason, self.fail_next = self.fail_next, None
            raise BlockchainError(
                "Contract call failed", details={"action": action, "reason": reason}
            )
        self.transactions.append((action, args))
        return "0x" + hashlib.sha256(f"{action}{args}{next(self._nonce)}".encode()).hexdigest()

    async def ipo_opened(self, master_chain_id: int) -> bool:
        return master_chain_id in self.caps

    async def open_ipo(
        self, master_chain_id: int, cap: int, royalty_receiver: str, royalty_bps: int
    ) -> str:
        if master_chain_id in self.caps:
            raise BlockchainError("Contract call failed", details={"reason": "IpoAlreadyOpened"})
        if cap == 0:
            raise BlockchainError("Contract call failed", details={"reason": "ZeroCap"})
        tx = self._tx("openIpo", master_chain_id, cap, royalty_receiver, royalty_bps)
        self.caps[master_chain_id] = cap
        self.minted[master_chain_id] = 0
        return tx

    async def cap_of(self, master_chain_id: int) -> int:
        return self.caps.get(master_chain_id, 0)

    async def minted_of(self, master_chain_id: int) -> int:
        return self.minted.get(master_chain_id, 0)

    @property
    def custody_address(self) -> str:
        return CUSTODY

    async def submit_mint(
        self,
        to: str,
        master_chain_id: int,
        amount: int,
        before_send: Callable[[SignedTx], Awaitable[None]],
    ) -> str:
        if self.fail_next is not None:
            reason, self.fail_next = self.fail_next, None
            raise BlockchainError(
                f"The transaction was reverted: {reason}",
                details={"action": "mint", "error": reason},
            )
        cap = self.caps.get(master_chain_id)
        if cap is None or self.minted[master_chain_id] + amount > cap:  # the estimate reverts
            error = "IpoNotOpened" if cap is None else "CapExceeded"
            raise BlockchainError(
                f"The transaction was reverted: {error}", details={"action": "mint", "error": error}
            )
        nonce = self._next_nonce
        tx_hash = (
            "0x" + hashlib.sha256(f"mint{to}{master_chain_id}{amount}{nonce}".encode()).hexdigest()
        )
        self._signed[tx_hash] = _Signed(to, master_chain_id, amount, nonce)
        await before_send(SignedTx(tx_hash=tx_hash, raw=tx_hash, nonce=nonce))
        if self.lose_next_send:
            self.lose_next_send = False
            raise ProcessDied("signed and recorded, never sent")
        self._mine(tx_hash)
        return tx_hash

    async def submit_transfer(
        self,
        from_address: str,
        to: str,
        master_chain_id: int,
        amount: int,
        before_send: Callable[[SignedTx], Awaitable[None]],
    ) -> str:
        if self.balances.get((master_chain_id, from_address), 0) < amount:
            raise BlockchainError(
                "The transaction was reverted: ERC1155InsufficientBalance",
                details={"action": "withdraw", "error": "ERC1155InsufficientBalance"},
            )
        nonce = self._next_nonce
        tx_hash = "0x" + hashlib.sha256(f"move{from_address}{to}{nonce}".encode()).hexdigest()
        self._signed[tx_hash] = _Signed(to, master_chain_id, amount, nonce, from_address)
        await before_send(SignedTx(tx_hash=tx_hash, raw=tx_hash, nonce=nonce))
        if self.lose_next_send:
            self.lose_next_send = False
            raise ProcessDied("signed and recorded, never sent")
        self._mine(tx_hash)
        return tx_hash

    def _mine(self, tx_hash: str) -> None:
        signed = self._signed[tx_hash]
        self._next_nonce = signed.nonce + 1
        key = (signed.master_chain_id, signed.to)
        if signed.from_address is None:
            self.minted[signed.master_chain_id] += signed.amount
            self.transactions.append(("mint", (signed.to, signed.master_chain_id, signed.amount)))
        else:
            source = (signed.master_chain_id, signed.from_address)
            self.balances[source] -= signed.amount
            self.transactions.append(
                (
                    "transfer",
                    (signed.from_address, signed.to, signed.master_chain_id, signed.amount),
                )
            )
        self.balances[key] = self.balances.get(key, 0) + signed.amount
        self.receipts[tx_hash] = MintReceipt(
            tx_hash=tx_hash, ok=True, block_number=next(self._block)
        )

    def take_nonce(self) -> None:
        """Another transaction of the operator is mined: the next nonce is spent."""
        self._next_nonce += 1

    async def mint_receipt(self, tx_hash: str) -> MintReceipt | None:
        return self.receipts.get(tx_hash)

    async def wait_mint(self, tx_hash: str) -> MintReceipt:
        receipt = self.receipts.get(tx_hash)
        if receipt is None:
            raise BlockchainError(
                "The transaction was not mined in time", details={"action": "mint"}
            )
        return receipt

    async def resend(self, raw_tx: str) -> ResendOutcome:
        signed = self._signed[raw_tx]  # the twin's raw transaction is its hash
        if signed.nonce < self._next_nonce:
            return "nonce_used"
        self._mine(raw_tx)
        return "sent"


class InMemoryPayments:
    """The twin of `ChainPayments`: transactions are what a test says was paid."""

    def __init__(self) -> None:
        self.paid: dict[str, int] = {}  # tx hash -> base units to the platform

    async def pay_to(self) -> PayTo:
        return PayTo(chain_id=1337, token=DEV_USD, recipient=CUSTODY, confirmations=1)

    async def check(self, tx_hash: str, amount: int) -> ConfirmedPayment:
        details = {"txHash": tx_hash}
        if tx_hash not in self.paid:
            raise PaymentNotFound(details=details)
        if self.paid[tx_hash] != amount:
            raise PaymentWrongAmount(
                details=details | {"expected": str(amount), "actual": str(self.paid[tx_hash])}
            )
        return ConfirmedPayment(
            tx_hash=tx_hash,
            token=DEV_USD,
            payer=CUSTODY,
            recipient=CUSTODY,
            amount=amount,
            block_number=1,
            block_hash="0x" + "00" * 32,
            confirmations=1,
        )


class InMemoryDistributor:
    """The twin of `Distributor`: RevenueDistributor's funding, with a treasury balance."""

    def __init__(self, treasury: int = 10**18) -> None:
        self.treasury = treasury
        self.created: list[tuple[str, int, datetime]] = []  # (root, total, expires at)
        self.lose_next = False  # created on chain, then the process died before recording
        self.claimed: dict[int, int] = {}  # what holders claimed, per distribution
        self.swept: set[int] = set()

    async def fund(
        self,
        root: str,
        total: int,
        expires_at: datetime,
        is_taken: Callable[[int], Awaitable[bool]],
    ) -> Funding:
        for i in range(len(self.created) - 1, -1, -1):
            if self.created[i][:2] == (root, total) and not await is_taken(i):
                return Funding(chain_distribution_id=i, tx_hash=None)
        if self.treasury < total:
            raise TreasuryShort(details={"needed": str(total), "available": str(self.treasury)})
        self.treasury -= total
        self.created.append((root, total, expires_at))
        if self.lose_next:
            self.lose_next = False
            raise ProcessDied("funded on chain, never recorded")
        n = len(self.created) - 1
        return Funding(chain_distribution_id=n, tx_hash="0x" + f"{n + 1:064x}")

    async def sweep(self, chain_distribution_id: int) -> Sweep:
        _, total, _ = self.created[chain_distribution_id]
        rest = total - self.claimed.get(chain_distribution_id, 0)
        if chain_distribution_id in self.swept:
            return Sweep(amount=rest, tx_hash=None)
        self.swept.add(chain_distribution_id)
        self.treasury += rest
        return Sweep(amount=rest, tx_hash="0x" + f"{chain_distribution_id + 1000:064x}")
