"""Stripe's Test Clocks: simulated time for the customers created on one.

`POST /v1/customers` with `test_clock` puts a customer on a clock; its subscriptions, invoices
and payments then carry the clock's time. `POST .../test_clocks/{id}/advance` moves the clock
forward, doing on the way — in time order, each at its own moment — every renewal, invoice
retry and period-end cancellation that falls due (billing.py says what each does). The
advance is done when the answer comes back (`status` "ready"); the events it caused are
already queued for the webhooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from audifi_stripe_local.api import answer, integer, only, params, read_routes
from audifi_stripe_local.billing import LIVE, Billing
from audifi_stripe_local.customers import ClockedCustomer
from audifi_stripe_local.errors import invalid, required
from audifi_stripe_local.store import CLOCK, Obj, Store, new_id

# Enough for years of daily renewals in one advance (Stripe itself refuses advances of more
# than two billing intervals).
MAX_STEPS = 1000
Due = tuple[int, Callable[[Obj, int], None], Obj]


class Clocks:
    def __init__(self, store: Store, billing: Billing) -> None:
        self.store = store
        self.billing = billing

    def create(self, data: dict[str, Any]) -> Obj:
        only(data, ("frozen_time", "name"))
        if data.get("frozen_time") is None:
            raise required("frozen_time")
        frozen = integer(data["frozen_time"], "frozen_time", minimum=0)
        clock = self.store.add(
            {
                "id": new_id("clock_"),
                "object": CLOCK,
                "frozen_time": frozen,
                "name": data.get("name"),
                "status": "ready",
                "status_details": {},
                "deletes_after": frozen + 30 * 86_400,
                "created": self.store.now(),
                "livemode": False,
            }
        )
        self.store.emit("test_helpers.test_clock.created", clock)
        return clock

    def advance(self, clock: Obj, data: dict[str, Any]) -> Obj:
        only(data, ("frozen_time",))
        if data.get("frozen_time") is None:
            raise required("frozen_time")
        to = integer(data["frozen_time"], "frozen_time")
        if to <= clock["frozen_time"]:
            raise invalid("frozen_time", "The frozen_time must be after the current frozen_time.")
        clock["status"] = "advancing"
        self.store.emit("test_helpers.test_clock.advancing", clock)
        for _ in range(MAX_STEPS):
            due = self._next_due(clock["id"], to)
            if due is None:
                break
            when, act, obj = due
            clock["frozen_time"] = max(clock["frozen_time"], when)
            act(obj, when)
        clock.update(frozen_time=to, status="ready")
        self.store.emit("test_helpers.test_clock.ready", clock)
        return clock

    def _next_due(self, clock: str, until: int) -> Due | None:
        due: list[Due] = []
        for sub in self.store.all("subscription"):
            if sub["test_clock"] == clock and sub["status"] in LIVE:
                ends = sub["cancel_at_period_end"]
                act = self.billing.end_at_period_end if ends else self.billing.renew
                due.append((sub["current_period_end"], act, sub))
        for inv in self.store.all("invoice"):
            retry_at = inv["next_payment_attempt"]
            if inv["test_clock"] == clock and inv["status"] == "open" and retry_at:
                due.append((retry_at, self.billing.retry, inv))
        due = [d for d in due if d[0] <= until]
        return min(due, key=lambda d: d[0]) if due else None

    def routes(self) -> list[web.RouteDef]:
        store = self.store
        clocks = "/v1/test_helpers/test_clocks"

        async def create_customer(request: web.Request) -> web.Response:
            data = await params(request)
            expand = data.pop("expand", None)
            clock = data.pop("test_clock", None)
            if clock:
                store.get(clock, CLOCK, "test_clock")
            cus = ClockedCustomer._api_create(test_clock=clock, **data)
            return answer(store.render(cus._export(), expand))

        async def create(request: web.Request) -> web.Response:
            return answer(store.render(self.create(await params(request))))

        async def advance(request: web.Request) -> web.Response:
            clock = store.get(request.match_info["id"], CLOCK)
            return answer(store.render(self.advance(clock, await params(request))))

        return [
            web.post("/v1/customers", create_customer),
            web.post(clocks, create),
            web.post(clocks + "/{id}/advance", advance),
            *read_routes(store, CLOCK, clocks),
        ]
