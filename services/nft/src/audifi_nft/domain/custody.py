"""Shares the platform holds for an account, and their withdrawal to the account's wallet.

A buyer without a wallet has their shares minted to the custody address (nft's operator) and
held for them. `CustodyBook` (one per account and master) counts them: credited when such a
mint is confirmed (in the same save), reserved when a withdrawal is asked, settled when the
withdrawal's transfer is mined, released when it fails. Held minus reserved is what can be
withdrawn: never more than the platform holds for the account.

A `Withdrawal` moves shares from custody to the account's newest linked wallet with
MasterShares' `safeTransferFrom(custody, wallet, masterId, amount, "")`, signed by nft's
operator. It is a `Mint`'s state machine (signed and recorded before it is sent, settled from
the record after a crash, failed with the chain's reason) with its own request and outcome.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

from audifi_kit.errors import Conflict
from eventsourcing.domain import Aggregate, event

from audifi_nft.domain.mint import MINTED, REQUESTED, SIGNED, Mint, MintStateConflict

CUSTODY_NAMESPACE = uuid.UUID("8c1e5f27-4d9a-4b3c-a6e0-7f2d9b1c5e84")
WITHDRAWAL_PREFIX = "withdrawal:"


def custody_book_id(account_id: str, master_id: UUID) -> UUID:
    return uuid.uuid5(CUSTODY_NAMESPACE, f"{account_id}:{master_id}")


class NothingToWithdraw(Conflict):
    code = "NOTHING_TO_WITHDRAW"
    default_message = "The platform holds fewer of these shares for you than asked"


class NoWalletLinked(Conflict):
    code = "NO_WALLET_LINKED"
    default_message = "Link a wallet first: withdrawn shares go to your linked wallet"


class CustodyBook(Aggregate):
    @event("Opened")
    def __init__(self, *, account_id: str, master_id: UUID) -> None:
        self.account_id = account_id
        self.master_id = master_id
        self.held = 0
        self.reserved = 0  # asked to be withdrawn, not settled yet

    @classmethod
    def open(cls, account_id: str, master_id: UUID) -> CustodyBook:
        return cls._create(
            cls.Opened,
            id=custody_book_id(account_id, master_id),
            account_id=account_id,
            master_id=master_id,
        )

    @property
    def available(self) -> int:
        return self.held - self.reserved

    @event("Credited")
    def credit(self, amount: int, reason: str) -> None:
        self.held += amount

    def reserve(self, amount: int, withdrawal_id: UUID) -> None:
        if not 1 <= amount <= self.available:
            raise NothingToWithdraw(details={"available": self.available, "requested": amount})
        self._reserved(amount=amount, withdrawal_id=withdrawal_id)

    @event("Reserved")
    def _reserved(self, amount: int, withdrawal_id: UUID) -> None:
        self.reserved += amount

    @event("Settled")
    def settle(self, amount: int, withdrawal_id: UUID) -> None:
        self.reserved -= amount
        self.held -= amount

    @event("Released")
    def release(self, amount: int, withdrawal_id: UUID) -> None:
        self.reserved -= amount


class Withdrawal(Mint):
    @event("WithdrawalRequested")
    def __init__(  # type: ignore[override]
        self,
        *,
        reservation_id: str,
        account_id: str,
        master_id: UUID,
        quantity: int,
        to: str,
        from_address: str,
        at: datetime,
        ipo_id: UUID | None = None,  # a mint's fields, that a withdrawal has not
        custody: bool = False,
    ) -> None:
        self.reservation_id = reservation_id  # "withdrawal:<id>": its row in the minting queue
        self.ipo_id = None
        self.master_id = master_id
        self.account_id = account_id
        self.quantity = quantity
        self.to = to
        self.from_address = from_address
        self.custody = False
        self.requested_at = at
        self.status = REQUESTED
        self.attempt = 0
        self.tx_hash = None
        self.raw_tx = None
        self.nonce = None
        self.error = None
        self.block_number = None

    @classmethod
    def ask(
        cls,
        *,
        withdrawal_id: UUID,
        account_id: str,
        master_id: UUID,
        quantity: int,
        to: str,
        from_address: str,
        at: datetime,
    ) -> Withdrawal:
        return cls._create(
            cls.WithdrawalRequested,
            id=withdrawal_id,
            reservation_id=f"{WITHDRAWAL_PREFIX}{withdrawal_id}",
            account_id=account_id,
            master_id=master_id,
            quantity=quantity,
            to=to,
            from_address=from_address,
            at=at,
            ipo_id=None,
            custody=False,
        )

    def confirm(self, *, tx_hash: str, block_number: int, at: datetime) -> bool:
        if self.status == MINTED:
            return False
        if self.status != SIGNED or tx_hash != self.tx_hash:
            raise MintStateConflict(details={"status": self.status})
        self._withdrawn(
            tx_hash=tx_hash,
            block_number=block_number,
            at=at,
            facts={
                "master_id": str(self.master_id),
                "account_id": self.account_id,
                "quantity": self.quantity,
                "to": self.to,
            },
        )
        return True

    @event("Withdrawn")
    def _withdrawn(self, tx_hash: str, block_number: int, at: datetime, facts: dict) -> None:
        self.status = MINTED  # done: the shares are in the wallet
        self.block_number = block_number
        self.raw_tx = None
