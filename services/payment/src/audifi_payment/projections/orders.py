"""`orders.orders` and `orders.late_payments`: every order as the buyer and seller see it, and
the payments that came when it could no longer be paid (each owed, then given, a refund).

An order's refund status is derived from its late payments when read: none, `refund_due`
while one awaits its refund, `refunded` once all have one.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from audifi_kit.projections import Projection, handles

from audifi_payment.domain.order import CHECKOUT_STARTED, EXPIRED, FAILED, OPEN, PAID, Order

ORDERS = "orders.orders"
LATE_PAYMENTS = "orders.late_payments"


class Orders(Projection):
    name = "orders"
    version = 1

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE orders ("
            " id uuid PRIMARY KEY,"
            " product_service text NOT NULL,"
            " product_kind text NOT NULL,"
            " product_reference text NOT NULL,"
            " title text NOT NULL,"
            " quantity bigint NOT NULL,"
            " unit_amount bigint NOT NULL,"
            " total bigint NOT NULL,"
            " currency text NOT NULL,"
            " buyer_id text NOT NULL,"
            " seller_id text NOT NULL,"
            " status text NOT NULL,"
            " expires_at timestamptz NOT NULL,"
            " opened_at timestamptz NOT NULL,"
            " checkout_session_id text,"
            " paid_at timestamptz,"
            " payment_intent_id text,"
            " ledger_transaction_id uuid,"
            " closed_at timestamptz,"
            " failure_reason text)"
        )
        await conn.execute("CREATE INDEX orders_of_buyer ON orders (buyer_id, opened_at, id)")
        await conn.execute("CREATE INDEX orders_of_seller ON orders (seller_id, opened_at, id)")
        await conn.execute(
            "CREATE TABLE late_payments ("
            " order_id uuid NOT NULL,"
            " payment_intent_id text NOT NULL,"
            " amount bigint NOT NULL,"
            " currency text NOT NULL,"
            " reason text NOT NULL,"
            " received_at timestamptz NOT NULL,"
            " refund_id text,"
            " refunded_at timestamptz,"
            " refund_transaction_id uuid,"
            " PRIMARY KEY (order_id, payment_intent_id))"
        )

    @handles(Order.Opened)
    async def opened(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO orders (id, product_service, product_kind, product_reference, title, "
            "quantity, unit_amount, total, currency, buyer_id, seller_id, status, expires_at, "
            "opened_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            e.originator_id,
            e.product_service,
            e.product_kind,
            e.product_reference,
            e.title,
            e.quantity,
            e.unit_amount,
            e.quantity * e.unit_amount,
            e.currency,
            e.buyer_id,
            e.seller_id,
            OPEN,
            e.expires_at,
            e.opened_at,
        )

    @handles(Order.CheckoutStarted)
    async def checkout_started(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE orders SET status = $2, checkout_session_id = $3 WHERE id = $1",
            e.originator_id,
            CHECKOUT_STARTED,
            e.session_id,
        )

    @handles(Order.Paid)
    async def paid(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE orders SET status = $2, paid_at = $3, payment_intent_id = $4, "
            "ledger_transaction_id = $5 WHERE id = $1",
            e.originator_id,
            PAID,
            e.paid_at,
            e.payment_intent_id,
            e.ledger_transaction_id,
        )

    @handles(Order.Expired)
    async def expired(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE orders SET status = $2, closed_at = $3 WHERE id = $1",
            e.originator_id,
            EXPIRED,
            e.expired_at,
        )

    @handles(Order.Failed)
    async def failed(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE orders SET status = $2, closed_at = $3, failure_reason = $4 WHERE id = $1",
            e.originator_id,
            FAILED,
            e.failed_at,
            e.reason,
        )

    @handles(Order.LatePaymentReceived)
    async def late_payment_received(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO late_payments (order_id, payment_intent_id, amount, currency, reason, "
            "received_at) VALUES ($1, $2, $3, $4, $5, $6)",
            e.originator_id,
            e.payment_intent_id,
            e.amount,
            e.currency,
            e.reason,
            e.received_at,
        )

    @handles(Order.Refunded)
    async def refunded(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE late_payments SET refund_id = $3, refunded_at = $4, "
            "refund_transaction_id = $5 WHERE order_id = $1 AND payment_intent_id = $2",
            e.originator_id,
            e.payment_intent_id,
            e.refund_id,
            e.refunded_at,
            e.ledger_transaction_id,
        )
