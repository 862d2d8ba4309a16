"""Withdrawing shares the platform holds for me to the wallet I linked.

`POST /user/withdrawals {masterId, quantity}` (Idempotency-Key makes a retry the same
withdrawal): the shares are reserved from what custody holds for me (409 NOTHING_TO_WITHDRAW
past it, 409 NO_WALLET_LINKED without a wallet) and moved on chain by the minter, one
transaction, recorded before it is sent; `GET /user/withdrawals/{id}` follows it: requested,
signed, minted (done: in the wallet) or failed (the chain's BLOCKCHAIN_ERROR; the shares are
withdrawable again).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from audifi_kit.errors import Conflict, NotFound, ValidationFailed
from audifi_kit.http import Identity
from audifi_kit.http.idempotency import IDEMPOTENT_OPT
from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from audifi_nft.api.dependencies import NftContext, is_admin, provide_nft
from audifi_nft.domain.custody import Withdrawal
from audifi_nft.domain.mint import MintNotFound


class WithdrawalRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    master_id: UUID
    quantity: int


class WithdrawalView(msgspec.Struct, rename="camel", kw_only=True):
    id: UUID
    master_id: UUID
    quantity: int
    to: str
    status: str  # requested, signed, minted (done), failed
    tx_hash: str | None = None
    error: dict[str, Any] | None = None
    requested_at: datetime


def withdrawal_view(w: Withdrawal) -> WithdrawalView:
    return WithdrawalView(
        id=w.id,
        master_id=w.master_id,
        quantity=w.quantity,
        to=w.to,
        status=w.status,
        tx_hash=w.tx_hash,
        error=w.error,
        requested_at=w.requested_at,
    )


class WithdrawalsController(Controller):
    path = "/user/withdrawals"
    tags = ["holdings"]
    dependencies = {"nft": Provide(provide_nft)}

    @post(
        "/",
        status_code=202,
        opt={IDEMPOTENT_OPT: True},
        raises=(NotFound, Conflict, ValidationFailed),
    )
    async def withdraw(
        self,
        data: JSONBody[WithdrawalRequest],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> WithdrawalView:
        """Move shares held for me in custody to my linked wallet."""
        assert nft.shares is not None
        withdrawal = await nft.store.call(
            nft.app.request_withdrawal,
            withdrawal_id=uuid.uuid4(),
            account_id=identity.user_id,
            master_id=data.master_id,
            quantity=data.quantity,
            custody_address=nft.shares.custody_address,
            now=datetime.now(UTC),
        )
        nft.wake_minter()
        return withdrawal_view(withdrawal)

    @get("/{withdrawal_id:uuid}", raises=(NotFound,))
    async def withdrawal(
        self,
        withdrawal_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> WithdrawalView:
        """A withdrawal, to its account (or an admin)."""
        found = await nft.store.call(nft.app.mint, withdrawal_id)
        if not isinstance(found, Withdrawal) or (
            found.account_id != identity.user_id and not is_admin(identity)
        ):
            raise MintNotFound(details={"withdrawalId": str(withdrawal_id)})
        return withdrawal_view(found)
