"""The customer portal: `POST /v1/billing_portal/sessions` answers with `url` = our page
`/portal/{id}`, where the customer sees their subscriptions, changes the card renewals are
charged to, or cancels a subscription at the end of its period — what Stripe's hosted portal
offers. A card Stripe would refuse to save (4000 0000 0000 0002) is refused here too; 4000
0000 0000 0341 is saved, and the next renewal on it is declined.
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

from aiohttp import web

from audifi_stripe_local import cards, pages
from audifi_stripe_local.api import answer, only, params, public_base, text
from audifi_stripe_local.billing import Billing, describe
from audifi_stripe_local.customers import customer, default_card, save_card
from audifi_stripe_local.store import Obj, Store, new_id

KIND = "billing_portal.session"


def day(ts: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class Portal:
    def __init__(self, store: Store, billing: Billing) -> None:
        self.store = store
        self.billing = billing

    def session(self, data: dict[str, Any], base: str) -> Obj:
        only(data, ("customer", "return_url", "configuration", "locale"))
        cus = customer(text(data, "customer", needed=True), "customer")
        id = new_id("bps_")
        return self.store.add(
            {
                "id": id,
                "object": KIND,
                "configuration": "bpc_local",
                "customer": cus.id,
                "flow": None,
                "locale": data.get("locale"),
                "on_behalf_of": None,
                "return_url": data.get("return_url"),
                "url": f"{base}/portal/{id}",
                "created": self.store.now(),
                "livemode": False,
            }
        )

    def page(self, session: Obj, message: str = "", status: int = 200) -> web.Response:
        cus = customer(session["customer"])
        card = default_card(cus)
        card_text = f"Card ending in {cards.card_details(card)['last4']}" if card else "No card"
        rows = []
        for sub in self.store.all("subscription"):
            if sub["customer"] != cus.id or sub["status"] == "canceled":
                continue
            price = sub["items"]["data"][0]["price"]
            when = day(sub["current_period_end"])
            state = f"cancels on {when}" if sub["cancel_at_period_end"] else f"renews on {when}"
            cancel = (
                ""
                if sub["cancel_at_period_end"]
                else f"<form method='post' action='/portal/{session['id']}/cancel'>"
                f"<input type='hidden' name='subscription' value='{sub['id']}'>"
                "<button class='secondary'>Cancel at period end</button></form>"
            )
            rows.append(
                f"<div class='box'><strong>{escape(describe(price, 1))}</strong>"
                f"<p>Status: {sub['status']} · {state}</p>{cancel}</div>"
            )
        back = session["return_url"]
        body = (
            f"{message}<p class='muted'>{escape(cus.email or cus.id)}</p>"
            f"<h2>Subscriptions</h2>{''.join(rows) or '<p>No subscriptions.</p>'}"
            f"<h2>Payment method</h2><p>{escape(card_text)}</p>"
            f"<form method='post' action='/portal/{session['id']}/card'>{pages.card_fields()}"
            f"<button>Update card</button></form>{pages.TEST_CARDS}"
            + (f"<p><a href='{escape(back)}'>Return to the site</a></p>" if back else "")
        )
        return pages.page("Manage your subscription", body, status)

    def change_card(self, session: Obj, form: dict[str, str]) -> web.Response:
        try:
            number, month, year, cvc = cards.typed_card(form)
        except cards.CardProblem as problem:
            return self.page(session, pages.notice(problem.message), 400)
        if number in cards.REFUSED_WHEN_SAVED:
            return self.page(session, pages.notice(cards.DECLINED), 402)
        cus = customer(session["customer"])
        card = cards.new_card(number, month, year, cvc, cus.email)
        previous = {"invoice_settings": dict(cus.invoice_settings)}
        save_card(cus, card)
        self.store.emit("payment_method.attached", card._export())
        self.store.emit("customer.updated", cus._export(), previous)
        saved = pages.notice(f"Your card ending in {number[-4:]} is saved.", "ok")
        return self.page(session, saved)

    def cancel(self, session: Obj, form: dict[str, str]) -> web.Response:
        sub = self.store.objects.get(form.get("subscription", ""))
        if sub is None or sub["object"] != "subscription" or sub["customer"] != session["customer"]:
            return self.page(session, pages.notice("No such subscription."), 404)
        self.billing.update(sub, {"cancel_at_period_end": True})
        ends = pages.notice(f"Your subscription ends on {day(sub['current_period_end'])}.", "ok")
        return self.page(session, ends)

    def routes(self) -> list[web.RouteDef]:
        store = self.store

        async def create_portal_session(request: web.Request) -> web.Response:
            data = await params(request)
            expand = data.pop("expand", None)
            session = self.session(data, public_base(request))
            return answer(store.render(session, expand))

        def portal(handler: Any) -> Any:
            async def page(request: web.Request) -> web.Response:
                session = store.objects.get(request.match_info["id"])
                if session is None or session["object"] != KIND:
                    return pages.page("Not found", pages.notice("No such portal session."), 404)
                if handler is None:
                    return self.page(session)
                return handler(session, dict(await request.post()))

            return page

        return [
            web.post("/v1/billing_portal/sessions", create_portal_session),
            web.get("/portal/{id}", portal(None)),
            web.post("/portal/{id}/card", portal(self.change_card)),
            web.post("/portal/{id}/cancel", portal(self.cancel)),
        ]
