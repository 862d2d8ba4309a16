"""Integration events in: the orders other services ask payment to sell.

`payment.order.requested` (nft: IPO shares, Coda funding; coin: lottery tickets in fiat) opens
one order per `orderId`: the seller derives the id from its own request, so a redelivered or
republished request finds the order it opened (`open_order` answers the same order for the
same request, and refuses another request under that id — parked for an operator). The buyer
then pays it with `POST /payments/checkout`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from audifi_events.payment import OrderRequest
from audifi_kit.inbox import Consumer, HandlerContext

from audifi_payment.domain.order import Product

QUEUE_PURPOSE = "orders"


def orders_consumer(purpose: str = QUEUE_PURPOSE) -> Consumer:
    consumer = Consumer("payment", purpose)

    @consumer.handler("payment.order.requested")
    async def requested(e: OrderRequest, ctx: HandlerContext) -> None:
        assert ctx.store is not None
        await ctx.store.call(
            ctx.store.app.open_order,
            UUID(e.order_id),
            Product(e.product.service, e.product.kind, e.product.reference),
            title=e.title,
            quantity=e.quantity,
            unit_amount=e.unit_amount_cents,
            currency=e.currency,
            buyer_id=e.buyer_id,
            seller_id=e.seller_id,
            expires_at=e.expires_at,
            at=datetime.now(UTC),
        )

    return consumer
