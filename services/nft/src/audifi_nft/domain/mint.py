"""A mint: putting one paid allocation's shares on chain, exactly once.

`MasterShares.mint(to, masterId, amount)` is not idempotent: sent twice, it mints twice. So
the transaction is signed first and recorded here (`Signed`: its hash, its raw bytes and its
nonce) before it is sent; whatever happens after (a crash, a node that times out, a restart),
the mint's fate is found from that record, never by signing another:

- the hash has a receipt: it succeeded (`Minted`) or it reverted (`Failed`, with the chain's
  reason: BLOCKCHAIN_ERROR shown for the allocation, never a silent loss);
- no receipt: the same raw transaction is sent again; if its nonce is spent by another
  transaction it can never be mined (`Dropped`) and only then is a new one signed.

States: requested -> signed -> minted | failed; signed -> requested (dropped); failed ->
requested only when an artist or admin re-drives it (`POST /masters/{id}/mint`).

Shares go to the buyer's wallet when their account has linked one when the mint is requested,
else to the platform's custody address, recorded as held for the account (`custody`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

from audifi_kit.errors import Conflict, NotFound
from eventsourcing.domain import Aggregate, event

REQUESTED = "requested"
SIGNED = "signed"
MINTED = "minted"
FAILED = "failed"

MINT_NAMESPACE = uuid.UUID("6f1d2c0e-8a5b-4f3e-9c7d-2b4a6e8f0a13")
MAX_ERROR_CHARS = 500


def mint_id_of(reservation_id: str) -> UUID:
    """The one mint of a paid reservation."""
    return uuid.uuid5(MINT_NAMESPACE, reservation_id)


class MintNotFound(NotFound):
    code = "MINT_NOT_FOUND"
    default_message = "No such mint"


class MintStateConflict(Conflict):
    code = "MINT_STATE_CONFLICT"
    default_message = "The mint is not in a state that allows this"


class Mint(Aggregate):
    @event("Requested")
    def __init__(
        self,
        *,
        reservation_id: str,
        ipo_id: UUID,
        master_id: UUID,
        account_id: str,
        quantity: int,
        to: str,
        custody: bool,
        at: datetime,
    ) -> None:
        self.reservation_id = reservation_id
        self.ipo_id = ipo_id
        self.master_id = master_id
        self.account_id = account_id
        self.quantity = quantity
        self.to = to
        self.custody = custody
        self.requested_at = at
        self.status = REQUESTED
        self.attempt = 0
        self.tx_hash: str | None = None
        self.raw_tx: str | None = None
        self.nonce: int | None = None
        self.error: dict[str, Any] | None = None
        self.block_number: int | None = None

    @classmethod
    def request(
        cls,
        *,
        reservation_id: str,
        ipo_id: UUID,
        master_id: UUID,
        account_id: str,
        quantity: int,
        to: str,
        custody: bool,
        at: datetime,
    ) -> Mint:
        return cls._create(
            cls.Requested,
            id=mint_id_of(reservation_id),
            reservation_id=reservation_id,
            ipo_id=ipo_id,
            master_id=master_id,
            account_id=account_id,
            quantity=quantity,
            to=to,
            custody=custody,
            at=at,
        )

    @property
    def chain_id(self) -> int:
        """The MasterShares token id of the master."""
        return self.master_id.int

    def sign(self, *, tx_hash: str, raw_tx: str, nonce: int, at: datetime) -> None:
        """The transaction that will mint, recorded before it is sent."""
        if self.status != REQUESTED:
            raise MintStateConflict(details={"status": self.status})
        self._signed(tx_hash=tx_hash, raw_tx=raw_tx, nonce=nonce, at=at)

    @event("Signed")
    def _signed(self, tx_hash: str, raw_tx: str, nonce: int, at: datetime) -> None:
        self.status = SIGNED
        self.attempt += 1
        self.tx_hash = tx_hash
        self.raw_tx = raw_tx
        self.nonce = nonce
        self.error = None

    def confirm(self, *, tx_hash: str, block_number: int, at: datetime) -> bool:
        """Its transaction was mined and succeeded; False if already recorded."""
        if self.status == MINTED:
            return False
        if self.status != SIGNED or tx_hash != self.tx_hash:
            raise MintStateConflict(details={"status": self.status})
        self._minted(tx_hash=tx_hash, block_number=block_number, at=at)
        return True

    @event("Minted")
    def _minted(self, tx_hash: str, block_number: int, at: datetime) -> None:
        self.status = MINTED
        self.block_number = block_number
        self.raw_tx = None  # spent: nothing left to send

    def fail(self, *, error: dict[str, Any], at: datetime) -> None:
        """Its transaction reverted (or could not be built): it waits for a re-drive."""
        if self.status in (MINTED, FAILED):
            return
        message = str(error.get("message", ""))[:MAX_ERROR_CHARS]
        details = {k: v for k, v in error.get("details", {}).items() if k != "nodeMessage"}
        self._failed(
            error={"code": "BLOCKCHAIN_ERROR", "message": message, "details": details}, at=at
        )

    @event("Failed")
    def _failed(self, error: dict[str, Any], at: datetime) -> None:
        self.status = FAILED
        self.error = error
        self.raw_tx = None

    def drop(self, *, at: datetime) -> None:
        """Its signed transaction can never be mined (another took its nonce): sign again."""
        if self.status != SIGNED:
            raise MintStateConflict(details={"status": self.status})
        self._dropped(tx_hash=self.tx_hash, at=at)

    @event("Dropped")
    def _dropped(self, tx_hash: str | None, at: datetime) -> None:
        self.status = REQUESTED
        self.raw_tx = None

    def redrive(self, *, by: str, at: datetime) -> bool:
        """A failed mint is tried again (an artist's or admin's call); False otherwise."""
        if self.status != FAILED:
            return False
        self._redriven(by=by, at=at)
        return True

    @event("Redriven")
    def _redriven(self, by: str, at: datetime) -> None:
        self.status = REQUESTED
