"""Builds payment: in memory for application tests, on PostgreSQL and Stripe for the service.

The one place adapters are chosen. `in_memory()` is the bare application on eventsourcing's
POPO persistence; `in_memory_payments()` adds the orchestration over the in-memory Stripe twin
(what application tests drive); `payments_on(store, settings)` is the service's: the runtime's
event store and the official SDK pointed at Stripe or at the local Stripe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from audifi_kit.eventstore import IN_MEMORY, DirectCalls, EventStore, open_event_store
from audifi_kit.settings import Settings

from audifi_payment.adapters.stripe_memory import InMemoryStripe
from audifi_payment.adapters.stripe_sdk import StripeSdk
from audifi_payment.application import PaymentApplication
from audifi_payment.application.payments import PaymentConfig, Payments
from audifi_payment.config import PaymentSettings


def in_memory() -> PaymentApplication:
    """The application on eventsourcing's in-memory persistence: no database, no I/O."""
    return PaymentApplication(IN_MEMORY)


async def on_postgres(settings: Settings) -> EventStore[PaymentApplication]:
    """The application on the service's own PostgreSQL database (created when missing)."""
    return await open_event_store("payment", PaymentApplication, settings)


@dataclass
class InMemoryPayments:
    payments: Payments
    app: PaymentApplication
    stripe: InMemoryStripe


def in_memory_payments(
    *, config: PaymentConfig | None = None, clock: Callable[[], datetime] | None = None
) -> InMemoryPayments:
    app = in_memory()
    stripe = InMemoryStripe()
    payments = Payments(store=DirectCalls(app), stripe=stripe, config=config or PaymentConfig())
    if clock is not None:
        payments.clock = clock
    return InMemoryPayments(payments, app, stripe)


def payments_on(store: EventStore[PaymentApplication], settings: PaymentSettings) -> Payments:
    return Payments(
        store=store,
        stripe=StripeSdk(settings.stripe_secret_key, api_base=settings.stripe_api_base),
        config=settings.payment_config,
    )
