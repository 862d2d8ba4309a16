"""Buying IPO shares: `POST /ipos/{id}/purchase` reserves them, `GET` follows the purchase.

A purchase holds its shares for 15 minutes (`expiresAt`). By card, its id is the order payment
opens for it: the buyer pays with `POST /payments/checkout {"orderId": <id>}`, and payment's
verdict allocates or releases the shares (nft's orders consumer). On chain (`method: "chain"`,
USD IPOs), it says what to send (`payTo`: the payment token's base units to the platform's
address) and the buyer names the transaction at `POST .../purchases/{id}/payment`; the IPO
clock releases what was not paid in time. Purchases of a hot IPO are
decided and saved together (group commit: one transaction for the buyers arriving meanwhile),
each checked against the cap and the per-account maximum before anything is charged.
`Idempotency-Key` makes a retried request answer the same purchase.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import msgspec
from audifi_kit.errors import Conflict, NotFound, ValidationFailed
from audifi_kit.fields import TxHash, check
from audifi_kit.http import Identity
from audifi_kit.http.idempotency import IDEMPOTENT_OPT
from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from audifi_nft.api.dependencies import NftContext, is_admin, provide_nft
from audifi_nft.domain.chain_payment import token_amount
from audifi_nft.domain.ipo import Ipo, ReservationNotFound
from audifi_nft.ipos import PayTo


class PurchaseRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """`quantity` is checked by the IPO (its range, the shares left, your maximum)."""

    quantity: int
    method: Literal["card", "chain"] = "card"


class ChainPaymentRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """The transaction that paid the purchase on chain (its hash, 0x and 64 hex digits)."""

    tx_hash: str


class PayToView(msgspec.Struct, rename="camel", kw_only=True):
    """What to send for a purchase on chain, before `expiresAt`: `amount` base units of the
    ERC-20 `token` to `recipient` on chain `chainId`; then `POST` its hash to `path`."""

    chain_id: int
    token: str
    recipient: str
    amount: str  # base units (6 decimals), as text: above JSON's exact integers for big sums
    confirmations: int
    path: str


class PurchaseView(msgspec.Struct, rename="camel", kw_only=True):
    id: str  # by card: the order to pay at POST /payments/checkout
    ipo_id: UUID
    master_id: UUID
    buyer_id: str
    quantity: int
    amount_cents: int
    currency: str
    method: str
    status: str  # pending, paid, released
    expires_at: datetime
    released_reason: str | None = None
    mint: str | None = None  # pending, minted, failed (paid purchases)
    checkout: dict[str, Any] | None = None  # by card, while pending
    pay_to: PayToView | None = None  # on chain, while pending
    payment: str | None = None  # once paid: payment's intent id, or the transaction's hash
    refund_required: bool = False  # a payment arrived after the purchase ended


def purchase_view(ipo: Ipo, reservation_id: str, pay_to: PayTo | None = None) -> PurchaseView:
    r = ipo.reservation(reservation_id)
    pending = r["state"] == "pending"
    chain_terms = None
    if pending and r["method"] == "chain" and pay_to is not None:
        chain_terms = PayToView(
            chain_id=pay_to.chain_id,
            token=pay_to.token,
            recipient=pay_to.recipient,
            amount=str(token_amount(r["amount_cents"], ipo.currency)),
            confirmations=pay_to.confirmations,
            path=f"/api/v1/ipos/{ipo.id}/purchases/{reservation_id}/payment",
        )
    return PurchaseView(
        id=reservation_id,
        ipo_id=ipo.id,
        master_id=ipo.master_id,
        buyer_id=r["account_id"],
        quantity=r["quantity"],
        amount_cents=r["amount_cents"],
        currency=ipo.currency,
        method=r["method"],
        status=r["state"],
        expires_at=r["expires_at"],
        released_reason=r.get("released_reason"),
        mint=r.get("mint"),
        checkout=(
            {
                "method": "POST",
                "path": "/api/v1/payments/checkout",
                "body": {"orderId": reservation_id},
            }
            if pending and r["method"] == "card"
            else None
        ),
        pay_to=chain_terms,
        payment=r.get("payment"),
        refund_required=bool(r.get("refunds_required")),
    )


class IposController(Controller):
    path = "/ipos"
    tags = ["ipos"]
    dependencies = {"nft": Provide(provide_nft)}

    @post(
        "/{ipo_id:uuid}/purchase",
        status_code=201,
        opt={IDEMPOTENT_OPT: True},
        raises=(NotFound, Conflict),
    )
    async def purchase(
        self,
        ipo_id: FromPath[UUID],
        data: JSONBody[PurchaseRequest],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> PurchaseView:
        """Reserve shares for 15 minutes; pay the order (by card) before `expiresAt`."""
        reservation_id = str(uuid.uuid4())
        app = nft.app
        await nft.group.submit(
            lambda: app.decide_reserve(
                ipo_id,
                reservation_id=reservation_id,
                account_id=identity.user_id,
                quantity=data.quantity,
                method=data.method,
                now=datetime.now(UTC),
            ),
            loads=[ipo_id],
        )
        pay_to = await nft.payments.pay_to() if data.method == "chain" else None
        return purchase_view(await nft.store.call(app.ipo, ipo_id), reservation_id, pay_to)

    @get("/{ipo_id:uuid}/purchases/{purchase_id:str}", raises=(NotFound,))
    async def purchase_status(
        self,
        ipo_id: FromPath[UUID],
        purchase_id: FromPath[str],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> PurchaseView:
        """A purchase, to its buyer (or an admin): pending, paid or released."""
        ipo = await nft.store.call(nft.app.ipo, ipo_id)
        found = ipo.reservations.get(purchase_id)
        if found is None or (found["account_id"] != identity.user_id and not is_admin(identity)):
            raise ReservationNotFound(details={"purchaseId": purchase_id})
        pay_to = await nft.payments.pay_to() if found["method"] == "chain" else None
        return purchase_view(ipo, purchase_id, pay_to)

    @post(
        "/{ipo_id:uuid}/purchases/{purchase_id:str}/payment",
        status_code=200,
        raises=(NotFound, Conflict, ValidationFailed),
    )
    async def pay_on_chain(
        self,
        ipo_id: FromPath[UUID],
        purchase_id: FromPath[str],
        data: JSONBody[ChainPaymentRequest],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> PurchaseView:
        """The transaction that paid a purchase on chain, by its buyer: checked (the exact
        amount of the payment token to the platform's address, confirmed), then the shares
        are allocated. A hash that paid another purchase is 409 TX_HASH_USED; one not mined
        or not confirmed enough yet 404 PAYMENT_NOT_FOUND / 409 PAYMENT_NOT_CONFIRMED (ask
        again); another amount, token or recipient 400 PAYMENT_MISMATCH. The same hash again
        answers the paid purchase."""
        tx_hash = check(TxHash, data.tx_hash, field="txHash").lower()
        ipo = await nft.ipos.pay_on_chain(
            nft.payments, ipo_id, purchase_id, identity.user_id, tx_hash
        )
        return purchase_view(ipo, purchase_id)
