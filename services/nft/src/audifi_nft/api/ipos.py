"""Buying IPO shares: `POST /ipos/{id}/purchase` reserves them, `GET` follows the purchase.

A purchase holds its shares for 15 minutes (`expiresAt`). By card, its id is the order payment
opens for it: the buyer pays with `POST /payments/checkout {"orderId": <id>}`, and payment's
verdict allocates or releases the shares (nft's orders consumer). Purchases of a hot IPO are
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
from audifi_kit.errors import Conflict, NotFound
from audifi_kit.http import Identity
from audifi_kit.http.idempotency import IDEMPOTENT_OPT
from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody

from audifi_nft.api.dependencies import NftContext, is_admin, provide_nft
from audifi_nft.domain.ipo import Ipo, ReservationNotFound


class PurchaseRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """`quantity` is checked by the IPO (its range, the shares left, your maximum)."""

    quantity: int
    method: Literal["card"] = "card"


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
    checkout: dict[str, Any] | None = None


def purchase_view(ipo: Ipo, reservation_id: str) -> PurchaseView:
    r = ipo.reservation(reservation_id)
    pending = r["state"] == "pending"
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
        return purchase_view(await nft.store.call(app.ipo, ipo_id), reservation_id)

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
        return purchase_view(ipo, purchase_id)
