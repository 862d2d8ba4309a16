"""Wiring: settings and bus -> the payment service's Litestar app and background tasks.

The kit's runtime runs the event store, the relay, the read models and the `payment.orders`
consumer; the app's lifespan builds `Payments` over the runtime's store and the Stripe SDK
(payment's own settings: `config.PaymentSettings`, from the environment).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from audifi_kit.bus import Bus
from audifi_kit.chain.platform import PlatformChain
from audifi_kit.launch import AppSpec, service_app
from audifi_kit.periodic import every
from audifi_kit.runtime import RUNTIME_STATE_KEY, ServiceRuntime
from audifi_kit.settings import Settings
from audifi_kit.spec import ServiceSpec
from litestar import Litestar

from audifi_payment import bootstrap
from audifi_payment.api.checkout import CheckoutController, WebhookController
from audifi_payment.api.connect import ConnectController
from audifi_payment.api.dependencies import CONTEXT_STATE_KEY, PaymentContext
from audifi_payment.api.ledger import BalanceController, LedgerController, OverrideController
from audifi_payment.api.orders import OrderController
from audifi_payment.api.splits import SplitRuleController
from audifi_payment.api.subscriptions import SubscriptionController, TierController
from audifi_payment.application import PaymentApplication
from audifi_payment.application.payments import Payments
from audifi_payment.config import PaymentSettings
from audifi_payment.consumers import QUEUE_PURPOSE, payment_consumers
from audifi_payment.outbox import outbox
from audifi_payment.projections import PROJECTIONS

log = logging.getLogger(__name__)

OVERDUE_ORDERS = (
    "SELECT id FROM orders.orders WHERE status IN ('open', 'checkout_started') "
    "AND expires_at <= now() ORDER BY expires_at LIMIT 200"
)


async def sweep_overdue_orders(payments: Payments, runtime: ServiceRuntime) -> None:
    """The orders past their expiry nobody paid are expired (`Payments.expire_overdue_order`):
    the sellers hear `payment.order.expired` and release what they reserved. Found from the
    `orders` read model; expiring is idempotent, so two replicas sweeping do no harm."""
    try:
        due = await runtime.pool.fetch(OVERDUE_ORDERS)
    except asyncpg.UndefinedTableError:  # the read model is being created
        return
    for row in due:
        try:
            await payments.expire_overdue_order(row["id"])
        except Exception as exc:  # one order's failure stops no other
            log.warning("order sweep: order %s not expired (%s)", row["id"], exc)


def payment_spec(purpose: str = QUEUE_PURPOSE) -> ServiceSpec:
    return ServiceSpec(
        name="payment",
        application=PaymentApplication,
        projections=PROJECTIONS,
        outbox=outbox,
        consumers=payment_consumers(purpose),
    )


spec = payment_spec()


def create_app(
    settings: Settings,
    bus: Bus,
    chain: PlatformChain | None = None,
    *,
    config: PaymentSettings | None = None,
    queue_purpose: str = QUEUE_PURPOSE,
) -> Litestar:
    """`chain`: the process's shared chain (`audifi up`); unset, the service starts its own.
    `config` defaults to the environment (plus `settings.extra`)."""
    config = config or PaymentSettings.from_env({**os.environ, **settings.extra})
    context = PaymentContext(settings=config)

    @asynccontextmanager
    async def payments(app: Litestar) -> AsyncIterator[None]:
        runtime: ServiceRuntime = app.state[RUNTIME_STATE_KEY]
        context.runtime = runtime
        context.payments = bootstrap.payments_on(runtime.store, config)
        sweep = functools.partial(sweep_overdue_orders, context.payments, runtime)
        try:
            async with every(config.order_sweep_seconds, sweep, name="payment order sweep"):
                yield
        finally:
            await context.payments.stripe.aclose()  # type: ignore[attr-defined]

    return service_app(
        payment_spec(queue_purpose),
        settings,
        bus,
        route_handlers=[
            CheckoutController,
            WebhookController,
            SubscriptionController,
            TierController,
            SplitRuleController,
            LedgerController,
            BalanceController,
            OverrideController,
            ConnectController,
            OrderController,
        ],
        lifespan=[payments],
        state={CONTEXT_STATE_KEY: context},
        chain=chain or PlatformChain(settings),
    )


app = AppSpec(name="payment", factory=create_app, uses_chain=True, uses_stripe=True)
