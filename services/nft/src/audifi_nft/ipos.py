"""The IPO's orchestration with the chain: what needs I/O beyond the event store.

Launching an IPO opens it on MasterShares first (`openIpo(masterId, cap, royaltyReceiver,
royaltyBps)`: the contract's own cap, the second guard against overselling), then records it
open; the chain is asked whether it is opened already, so a launch retried after a crash
between the two steps does not fail on the contract's "already opened". Launchers may race
(the route that configured it, the IPO clock, replicas): the one that loses on chain or in
the event store finds the IPO opened and answers it. A chain failure surfaces as
BLOCKCHAIN_ERROR (502) and the IPO stays configured.

The chain is reached through the `SharesChain` port: `ChainShares` (adapters/shares_chain.py)
on the platform's chain, `InMemoryShares` (adapters/shares_memory.py) in application tests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

from audifi_kit.chain.adapter import ResendOutcome, SignedTx
from audifi_kit.chain.payments import ConfirmedPayment
from audifi_kit.errors import BlockchainError
from eventsourcing.persistence import IntegrityError

from audifi_nft.domain.chain_payment import NotAChainPurchase, token_amount
from audifi_nft.domain.ipo import CONFIGURED, Ipo, ReservationNotFound
from audifi_nft.domain.master import chain_id


class SharesChain(Protocol):
    """MasterShares, as nft uses it."""

    async def ipo_opened(self, master_chain_id: int) -> bool: ...

    async def open_ipo(
        self, master_chain_id: int, cap: int, royalty_receiver: str, royalty_bps: int
    ) -> str:
        """Opens the IPO on chain; the transaction's hash."""
        ...

    async def cap_of(self, master_chain_id: int) -> int: ...

    async def minted_of(self, master_chain_id: int) -> int: ...

    @property
    def custody_address(self) -> str:
        """Where shares of buyers without a wallet are minted and held for them."""
        ...

    async def submit_mint(
        self,
        to: str,
        master_chain_id: int,
        amount: int,
        before_send: Callable[[SignedTx], Awaitable[None]],
    ) -> str:
        """Sign `mint(to, masterId, amount)`, hand it to `before_send` (which records it),
        then send it; the transaction's hash. A revert found before signing (the contract's
        cap) is a BlockchainError and nothing is signed."""
        ...

    async def submit_transfer(
        self,
        from_address: str,
        to: str,
        master_chain_id: int,
        amount: int,
        before_send: Callable[[SignedTx], Awaitable[None]],
    ) -> str:
        """Sign `safeTransferFrom(from, to, masterId, amount, "")` (custody to a wallet; the
        operator is the custody address), record it through `before_send`, send it."""
        ...

    async def mint_receipt(self, tx_hash: str) -> MintReceipt | None:
        """The mined outcome of a mint transaction, or None while the chain has none."""
        ...

    async def wait_mint(self, tx_hash: str) -> MintReceipt:
        """The outcome once mined; BlockchainError if it is not mined in time."""
        ...

    async def resend(self, raw_tx: str) -> ResendOutcome: ...


@dataclass(frozen=True, slots=True)
class MintReceipt:
    tx_hash: str
    ok: bool
    block_number: int
    error: dict[str, Any] | None = None  # the chain's reason, when it reverted


@dataclass(frozen=True, slots=True)
class PayTo:
    """Where and what a buyer pays on chain: `token` base units to `recipient`."""

    chain_id: int
    token: str
    recipient: str
    confirmations: int


class ChainPayments(Protocol):
    """Payments in the platform's token, as nft checks them."""

    async def pay_to(self) -> PayTo: ...

    async def check(self, tx_hash: str, amount: int) -> ConfirmedPayment:
        """The transaction proven to pay exactly `amount` to `pay_to()`; else a
        PaymentCheckError (404 not found, 409 not confirmed yet, 400 not that payment)."""
        ...


class Store(Protocol):
    app: Any

    async def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any: ...


RACES = 5  # a lost race on a hot IPO is decided again at once, a few times


class Ipos:
    def __init__(
        self,
        store: Store,
        chain: SharesChain,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.chain = chain
        self.clock = clock

    async def launch(self, ipo_id: UUID) -> Ipo:
        """Opens the IPO on chain, then records it open (a no-op for an open one)."""
        ipo: Ipo = await self.store.call(self.store.app.ipo, ipo_id)
        if ipo.status != CONFIGURED:
            return await self.store.call(self.store.app.launch_ipo, ipo_id, self.clock())
        token = chain_id(ipo.master_id)
        if not await self.chain.ipo_opened(token):
            try:
                await self.chain.open_ipo(token, ipo.cap, ipo.royalty_receiver, ipo.royalty_bps)
            except BlockchainError:
                if not await self.chain.ipo_opened(token):
                    raise
                # opened meanwhile by another launcher (the IPO clock, a replica)
        try:
            return await self.store.call(self.store.app.launch_ipo, ipo_id, self.clock())
        except IntegrityError:  # recorded open meanwhile by another launcher
            ipo = await self.store.call(self.store.app.ipo, ipo_id)
            if ipo.status == CONFIGURED:
                raise
            return ipo

    async def pay_on_chain(
        self,
        payments: ChainPayments,
        ipo_id: UUID,
        reservation_id: str,
        account_id: str,
        tx_hash: str,
    ) -> Ipo:
        """The buyer's transaction, checked on chain for the reservation's exact price, then
        recorded (once: TX_HASH_USED for a hash that paid another purchase)."""
        ipo: Ipo = await self.store.call(self.store.app.ipo, ipo_id)
        r = ipo.reservations.get(reservation_id)
        if r is None or r["account_id"] != account_id:
            raise ReservationNotFound(details={"purchaseId": reservation_id})
        if r["method"] != "chain":
            raise NotAChainPurchase(details={"purchaseId": reservation_id})
        await payments.check(tx_hash, token_amount(r["amount_cents"], ipo.currency))
        for attempt in range(RACES):
            try:
                await self.store.call(
                    self.store.app.record_chain_payment,
                    ipo_id,
                    reservation_id=reservation_id,
                    account_id=account_id,
                    tx_hash=tx_hash,
                    now=self.clock(),
                )
                break
            except IntegrityError:  # the hot IPO changed meanwhile: decided again
                if attempt == RACES - 1:
                    raise
        return await self.store.call(self.store.app.ipo, ipo_id)

    async def release_expired(self, ipo_id: UUID, method: str = "chain") -> list[str]:
        try:
            return list(
                await self.store.call(
                    self.store.app.release_expired, ipo_id, method=method, now=self.clock()
                )
            )
        except IntegrityError:  # changed meanwhile: the next tick
            return []

    async def close_if_due(self, ipo_id: UUID) -> bool:
        try:
            return bool(
                await self.store.call(self.store.app.close_ipo_if_due, ipo_id, self.clock())
            )
        except IntegrityError:  # changed meanwhile (a purchase, another closer): next tick
            return False
