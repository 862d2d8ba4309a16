"""Checkout Sessions and the page a person pays them on.

`POST /v1/checkout/sessions` answers with `url` = our pay page, `/pay/{id}`: a form for a card.
A declined card leaves the session open (payment_intent.payment_failed is sent, the page says
so, another card may be tried); a card that pays completes it — in payment mode a
PaymentIntent and its Charge, in subscription mode a Subscription and its first Invoice — and
sends checkout.session.completed, then redirects to `success_url` with `{CHECKOUT_SESSION_ID}`
filled in, as Stripe does. A session nobody pays expires at `expires_at` (default 24 h), or
when `POST .../expire` is called: checkout.session.expired.
"""

from __future__ import annotations

from html import escape
from typing import Any

from aiohttp import web
from localstripe.resources import Product

from audifi_stripe_local import cards, pages
from audifi_stripe_local.api import (
    answer,
    integer,
    metadata,
    only,
    params,
    public_base,
    read_routes,
    text,
)
from audifi_stripe_local.billing import Billing
from audifi_stripe_local.cards import DECLINED
from audifi_stripe_local.customers import ClockedCustomer, customer, save_card
from audifi_stripe_local.errors import StripeError, invalid, required
from audifi_stripe_local.payments import Payments
from audifi_stripe_local.prices import Prices, per_interval
from audifi_stripe_local.store import Obj, Store, new_id

KIND = "checkout.session"
DAY = 86_400
ACCEPTED = (
    "mode",
    "line_items",
    "customer",
    "customer_email",
    "client_reference_id",
    "metadata",
    "success_url",
    "cancel_url",
    "expires_at",
    "subscription_data",
    "payment_intent_data",
    "payment_method_types",
    "customer_creation",
    "locale",
    "ui_mode",
)


class Checkout:
    def __init__(self, store: Store, prices: Prices, payments: Payments, billing: Billing) -> None:
        self.store = store
        self.prices = prices
        self.payments = payments
        self.billing = billing
        store.expanders[(KIND, "line_items")] = self.line_items

    def create(self, data: dict[str, Any], base: str) -> Obj:
        only(data, ACCEPTED)
        mode = text(data, "mode", needed=True)
        if mode not in ("payment", "subscription"):
            raise invalid("mode", "This local Stripe supports mode `payment` and `subscription`.")
        if data.get("ui_mode") not in (None, "hosted"):
            raise invalid("ui_mode", "Only the hosted Checkout page is served here.")
        if data.get("payment_method_types") not in (None, ["card"]):
            raise invalid("payment_method_types", "Only `card` is supported here.")
        success_url = text(data, "success_url", needed=True)
        lines = self._lines(data.get("line_items"))
        self._check_mode(mode, lines)
        if data.get("customer") and data.get("customer_email"):
            raise StripeError(
                400, "You may only specify one of these parameters: customer, customer_email."
            )
        cus = customer(data["customer"], "customer").id if data.get("customer") else None
        now = self.store.now()
        expires_at = now + DAY
        if data.get("expires_at") is not None:
            expires_at = integer(data["expires_at"], "expires_at")
            if not now + 1800 <= expires_at <= now + DAY:
                raise invalid(
                    "expires_at",
                    "The `expires_at` timestamp must be between 30 minutes and 24 hours from "
                    "Checkout Session creation.",
                )
        extra = {}
        for key, wanted in (
            ("subscription_data", "subscription"),
            ("payment_intent_data", "payment"),
        ):
            if data.get(key) is not None:
                if mode != wanted:
                    raise invalid(key, f"`{key}` can only be used in `{wanted}` mode.")
                only(data[key], ("metadata", "description"), key)
            extra[key] = data.get(key) or {}
        id = new_id("cs_test_")
        total = sum(price["unit_amount"] * quantity for price, quantity in lines)
        return self.store.add(
            {
                "id": id,
                "object": KIND,
                "mode": mode,
                "status": "open",
                "payment_status": "unpaid",
                "url": f"{base}/pay/{id}",
                "success_url": success_url,
                "cancel_url": text(data, "cancel_url"),
                "customer": cus,
                "customer_email": text(data, "customer_email"),
                "customer_details": None,
                "client_reference_id": text(data, "client_reference_id"),
                "metadata": metadata(data.get("metadata")),
                "currency": lines[0][0]["currency"],
                "amount_subtotal": total,
                "amount_total": total,
                "expires_at": expires_at,
                "payment_intent": None,
                "subscription": None,
                "invoice": None,
                "payment_method_types": ["card"],
                "ui_mode": "hosted",
                "created": now,
                "livemode": False,
                "_lines": lines,
                "_items": [
                    {
                        "id": new_id("li_"),
                        "object": "item",
                        "amount_discount": 0,
                        "amount_subtotal": price["unit_amount"] * quantity,
                        "amount_tax": 0,
                        "amount_total": price["unit_amount"] * quantity,
                        "currency": price["currency"],
                        "description": Product._api_retrieve(price["product"]).name,
                        "price": price,
                        "quantity": quantity,
                    }
                    for price, quantity in lines
                ],
                "_subscription_metadata": metadata(
                    extra["subscription_data"].get("metadata"), "subscription_data[metadata]"
                ),
                "_payment_intent_data": extra["payment_intent_data"],
            }
        )

    def _lines(self, raw: Any) -> list[tuple[Obj, int]]:
        if not raw:
            raise required("line_items")
        if not isinstance(raw, list):
            raise invalid("line_items", "Invalid array")
        lines = []
        for i, item in enumerate(raw):
            param = f"line_items[{i}]"
            if not isinstance(item, dict):
                raise invalid(param, "Invalid object")
            only(item, ("price", "price_data", "quantity"), param)
            if bool(item.get("price")) == bool(item.get("price_data")):
                raise invalid(param, f"You must specify either `price` or `price_data` in {param}.")
            if item.get("price"):
                price = self.store.get(item["price"], "price", f"{param}[price]")
            else:
                price = self.prices.create(item["price_data"], f"{param}[price_data]", inline=True)
            if item.get("quantity") is None:
                raise required(f"{param}[quantity]")
            lines.append((price, integer(item["quantity"], f"{param}[quantity]", minimum=1)))
        if len({price["currency"] for price, _ in lines}) > 1:
            raise invalid("line_items", "All line items must be in the same currency.")
        return lines

    @staticmethod
    def _check_mode(mode: str, lines: list[tuple[Obj, int]]) -> None:
        recurring = {
            (p["recurring"]["interval"], p["recurring"]["interval_count"])
            for p, _ in lines
            if p["recurring"]
        }
        if mode == "payment" and recurring:
            raise invalid(
                "line_items",
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
            )
        if mode == "subscription" and not recurring:
            raise invalid(
                "line_items",
                "You must provide at least one recurring price in `subscription` mode.",
            )
        if len(recurring) > 1:
            raise invalid(
                "line_items",
                "All prices on a subscription must have the same `recurring.interval` and "
                "`recurring.interval_count`.",
            )
        if sum(p["unit_amount"] * q for p, q in lines) <= 0:
            raise invalid("line_items", "The Checkout Session's total amount due must be above 0.")

    def line_items(self, id: str) -> Obj:
        session = self.store.get(id, KIND)
        items = self.store.render({"items": session["_items"]})["items"]
        url = f"/v1/checkout/sessions/{id}/line_items"
        return {"object": "list", "data": items, "has_more": False, "url": url}

    def expire(self, session: Obj) -> Obj:
        if session["status"] != "open":
            raise StripeError(
                400,
                'Only Checkout Sessions with a status in ["open"] can be expired.',
                param="session",
            )
        session.update(status="expired", url=None)
        if session["payment_intent"]:
            pi = self.store.get(session["payment_intent"], "payment_intent")
            self.payments.cancel(pi, "abandoned", self.store.now())
        self.store.emit("checkout.session.expired", session)
        return session

    def expire_due(self) -> None:
        """Ends every open session past its `expires_at` (run every second by the app, and
        before a session is shown or paid)."""
        now = self.store.now()
        for session in self.store.all(KIND):
            if session["status"] == "open" and session["expires_at"] <= now:
                self.expire(session)

    def pay(self, session: Obj, form: dict[str, str]) -> web.Response:
        if session["status"] != "open":
            return self.page(session, status=409)
        try:
            number, month, year, cvc = cards.typed_card(form)
        except cards.CardProblem as problem:
            return self.page(session, pages.notice(problem.message), 400)
        email = session["customer_email"] or form.get("email") or None
        if session["customer"]:
            email = customer(session["customer"]).email
        at = self.store.now_for(session["customer"])
        card = cards.new_card(number, month, year, cvc, email)
        if cards.decline_code(number) is not None:
            self.payments.confirm(self._intent(session, session["customer"], at), card, at)
            return self.page(session, pages.notice(DECLINED), 402)
        cus = customer(session["customer"]) if session["customer"] else ClockedCustomer(email=email)
        save_card(cus, card)
        if session["mode"] == "payment":
            self.payments.confirm(self._intent(session, cus.id, at), card, at)
        else:
            sub, invoice = self.billing.subscribe(
                cus, session["_lines"], session["_subscription_metadata"], at
            )
            session.update(subscription=sub["id"], invoice=invoice["id"])
        session.update(
            status="complete",
            payment_status="paid",
            customer=cus.id,
            customer_details={"email": cus.email, "name": cus.name},
            url=None,
        )
        self.store.emit("checkout.session.completed", session)
        raise web.HTTPSeeOther(
            session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])
        )

    def _intent(self, session: Obj, customer_id: str | None, at: int) -> Obj:
        """The session's PaymentIntent, made at the first attempt and kept across retries (in
        subscription mode the invoice gets its own when the subscription is made)."""
        if session["payment_intent"]:
            pi = self.store.get(session["payment_intent"], "payment_intent")
            pi["customer"] = customer_id
            return pi
        data = session["_payment_intent_data"]
        pi = self.payments.intent(
            amount=session["amount_total"],
            currency=session["currency"],
            customer=customer_id,
            at=at,
            metadata=metadata(data.get("metadata"), "payment_intent_data[metadata]"),
            description=data.get("description"),
        )
        if session["mode"] == "payment":
            session["payment_intent"] = pi["id"]
        return pi

    def page(self, session: Obj, message: str = "", status: int = 200) -> web.Response:
        if session["status"] == "complete":
            return pages.page("Paid", pages.notice("This checkout is already paid.", "ok"), status)
        if session["status"] == "expired":
            return pages.page("Expired", pages.notice("This checkout session has expired."), status)
        rows = "".join(
            f"<tr><td>{escape(item['description'])} x {item['quantity']}</td>"
            f"<td class='amount'>{pages.money(item['amount_total'], item['currency'])}"
            f"{per_interval(item['price'])}</td></tr>"
            for item in session["_items"]
        )
        total = pages.money(session["amount_total"], session["currency"])
        button = f"Pay {total}" if session["mode"] == "payment" else f"Subscribe · {total}"
        cancel = session["cancel_url"]
        body = (
            f"{message}<div class='box'><table>{rows}</table>"
            f"<p><strong>Total due today: {total}</strong></p></div>"
            f"<form method='post' action='/pay/{session['id']}'>"
            f"{pages.card_fields(email=not (session['customer'] or session['customer_email']))}"
            f"<button>{button}</button></form>{pages.TEST_CARDS}"
            + (f"<p><a href='{escape(cancel)}'>Cancel and go back</a></p>" if cancel else "")
        )
        return pages.page("Pay", body, status)

    def routes(self) -> list[web.RouteDef]:
        store = self.store
        sessions = "/v1/checkout/sessions"

        async def create(request: web.Request) -> web.Response:
            data = await params(request)
            expand = data.pop("expand", None)
            return answer(store.render(self.create(data, public_base(request)), expand))

        async def expire(request: web.Request) -> web.Response:
            data = await params(request)
            session = store.get(request.match_info["id"], KIND)
            return answer(store.render(self.expire(session), data.get("expand")))

        async def line_items(request: web.Request) -> web.Response:
            data = await params(request)
            return answer(
                store.render(self.line_items(request.match_info["id"]), data.get("expand"))
            )

        def pay_page(handler: Any) -> Any:
            async def page(request: web.Request) -> web.Response:
                session = store.objects.get(request.match_info["id"])
                if session is None or session["object"] != KIND:
                    return pages.page("Not found", pages.notice("No such checkout session."), 404)
                self.expire_due()
                if handler is None:
                    return self.page(session)
                return handler(session, dict(await request.post()))

            return page

        return [
            web.post(sessions, create),
            web.post(sessions + "/{id}/expire", expire),
            web.get(sessions + "/{id}/line_items", line_items),
            *read_routes(
                store, KIND, sessions, ("customer", "payment_intent", "subscription", "status")
            ),
            web.get("/pay/{id}", pay_page(None)),
            web.post("/pay/{id}", pay_page(self.pay)),
        ]
