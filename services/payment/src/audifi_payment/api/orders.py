"""`GET /orders/{orderId}`: an order as its buyer, its seller or an admin sees it (from the
`orders` read model: a client polls it after paying until it shows `paid`)."""

from __future__ import annotations

from uuid import UUID

from audifi_kit.errors import Forbidden
from audifi_kit.http import Identity
from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath

from audifi_payment import queries
from audifi_payment.api.dependencies import is_admin, pool
from audifi_payment.domain.order import OrderNotFound


class NotYourOrder(Forbidden):
    default_message = "Only the order's buyer, its seller or an admin may read it"


class OrderController(Controller):
    path = "/orders"

    @get("/{order_id:uuid}", raises=(OrderNotFound, NotYourOrder))
    async def read(
        self, state: State, order_id: FromPath[UUID], identity: NamedDependency[Identity]
    ) -> queries.OrderView:
        """The order: open, checkout_started, paid, expired or failed, with any payment that
        came too late and its refund."""
        order = await queries.order(pool(state), order_id)
        if order is None:
            raise OrderNotFound(details={"orderId": str(order_id)})
        if identity.user_id not in (order.buyer_id, order.seller_id) and not is_admin(identity):
            raise NotYourOrder()
        return order
