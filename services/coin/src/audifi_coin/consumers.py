"""Integration events in: payment's verdicts on the card orders coin asked for (lottery
tickets). `payment.order.paid` issues the order's tickets on chain (`Lottery.fulfil_order`:
under the order's ref, once, so a redelivered verdict issues nothing more);
`payment.order.expired` / `failed` lapse it. Orders of other services pass by.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from audifi_events.payment import OrderExpired, OrderFailed, OrderPaid
from audifi_kit.inbox import Consumer, HandlerContext

from audifi_coin.lottery import Lottery

QUEUE_PURPOSE = "orders"
LOTTERY_KIND = "lottery_tickets"


def _ours(product: Any) -> bool:
    return bool(product.service == "coin" and product.kind == LOTTERY_KIND)


def orders_consumer(
    lottery: Callable[[], Awaitable[Lottery]], purpose: str = QUEUE_PURPOSE
) -> Consumer:
    consumer = Consumer("coin", purpose)

    @consumer.handler("payment.order.paid")
    async def paid(e: OrderPaid, ctx: HandlerContext) -> None:
        if _ours(e.product):
            await (await lottery()).fulfil_order(UUID(e.order_id), e.payment_intent_id)

    @consumer.handler("payment.order.expired")
    async def expired(e: OrderExpired, ctx: HandlerContext) -> None:
        if _ours(e.product):
            await (await lottery()).lapse_order(UUID(e.order_id), "expired")

    @consumer.handler("payment.order.failed")
    async def failed(e: OrderFailed, ctx: HandlerContext) -> None:
        if _ours(e.product):
            await (await lottery()).lapse_order(UUID(e.order_id), e.reason)

    return consumer
