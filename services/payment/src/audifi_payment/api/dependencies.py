"""What every payment handler works with, injected as the `payment` dependency."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from audifi_kit.app_state import DB_POOL_STATE_KEY
from audifi_kit.eventstore import EventStore
from audifi_kit.http import Identity
from audifi_kit.runtime import RUNTIME_STATE_KEY, ServiceRuntime
from litestar.datastructures import State

from audifi_payment.application import PaymentApplication
from audifi_payment.application.payments import Payments
from audifi_payment.config import PaymentSettings

CONTEXT_STATE_KEY = "payment_context"
PUBLIC = {"public": True}
IDEMPOTENT = {"idempotent": True}


@dataclass(slots=True)
class PaymentContext:
    settings: PaymentSettings
    payments: Payments | None = None  # set when the runtime's store is open (app lifespan)
    runtime: ServiceRuntime | None = None

    @property
    def store(self) -> EventStore[PaymentApplication]:
        assert self.runtime is not None
        return self.runtime.store

    @property
    def app(self) -> PaymentApplication:
        return self.store.app

    @property
    def service(self) -> Payments:
        assert self.payments is not None
        return self.payments


async def provide_payment(state: State) -> PaymentContext:
    context: PaymentContext = state[CONTEXT_STATE_KEY]
    if context.runtime is None:
        context.runtime = state[RUNTIME_STATE_KEY]
    return context


def pool(state: State) -> asyncpg.Pool:
    return state[DB_POOL_STATE_KEY]


def is_admin(identity: Identity) -> bool:
    return identity.has_any("admin")
