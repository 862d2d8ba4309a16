"""Subscriptions and their invoices.

A subscription is made when a subscription-mode checkout is paid; its first invoice is charged
at once. At its period end (reached by advancing its customer's Test Clock, see clocks.py) it
renews: a new invoice charged to the customer's default card. Paid: invoice.paid and the
period moves on (customer.subscription.updated). Declined: invoice.payment_failed and the
subscription falls `past_due`; the invoice is tried once more three days later, and a second
decline cancels the subscription (customer.subscription.deleted). A subscription set to cancel
at period end ends there without a new invoice.

Shapes follow Stripe's newer API (period on `items.data[]`, `invoice.parent`) and keep the
older fields too (period on the subscription, `invoice.subscription/charge/payment_intent`),
so either reading works.
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web
from localstripe.resources import Customer, Product

from audifi_stripe_local import pages
from audifi_stripe_local.api import (
    answer,
    boolean,
    listing,
    metadata,
    only,
    params,
    read_routes,
    retrieve_route,
)
from audifi_stripe_local.customers import customer, default_card
from audifi_stripe_local.errors import StripeError
from audifi_stripe_local.payments import Payments
from audifi_stripe_local.prices import add_interval, per_interval
from audifi_stripe_local.store import Obj, Store, new_id

RETRY_AFTER = 3 * 86_400
ATTEMPTS = 2  # a renewal invoice is tried twice; the second decline cancels
LIVE = ("active", "past_due")


class Billing:
    def __init__(self, store: Store, payments: Payments) -> None:
        self.store = store
        self.payments = payments

    def subscribe(
        self, cus: Customer, lines: list[tuple[Obj, int]], meta: dict[str, str], at: int
    ) -> tuple[Obj, Obj]:
        """A subscription for the recurring (price, quantity) lines, active from `at`, and its
        first invoice (with any one-time lines) charged to the customer's default card."""
        recurring = [(p, q) for p, q in lines if p["recurring"]]
        first = recurring[0][0]["recurring"]
        end = add_interval(at, first["interval"], first["interval_count"])
        id = new_id("sub_")
        items = [
            {
                "id": new_id("si_"),
                "object": "subscription_item",
                "price": price,
                "quantity": quantity,
                "subscription": id,
                "current_period_start": at,
                "current_period_end": end,
                "metadata": {},
                "created": at,
            }
            for price, quantity in recurring
        ]
        sub = self.store.add(
            {
                "id": id,
                "object": "subscription",
                "customer": cus.id,
                "status": "active",
                "currency": lines[0][0]["currency"],
                "items": {
                    "object": "list",
                    "data": items,
                    "has_more": False,
                    "url": f"/v1/subscription_items?subscription={id}",
                },
                "current_period_start": at,
                "current_period_end": end,
                "start_date": at,
                "billing_cycle_anchor": at,
                "cancel_at_period_end": False,
                "cancel_at": None,
                "canceled_at": None,
                "ended_at": None,
                "cancellation_details": {"reason": None, "comment": None, "feedback": None},
                "collection_method": "charge_automatically",
                "default_payment_method": None,
                "latest_invoice": None,
                "metadata": meta,
                "test_clock": getattr(cus, "test_clock", None),
                "created": at,
                "livemode": False,
            }
        )
        invoice = self._invoice(sub, lines, "subscription_create", at, at, end)
        sub["latest_invoice"] = invoice["id"]
        self.store.emit("customer.subscription.created", sub)
        self.store.emit("invoice.created", invoice)
        self._finalize(invoice, at)
        self._collect(invoice, at)
        return sub, invoice

    def _invoice(
        self, sub: Obj, lines: list[tuple[Obj, int]], reason: str, at: int, start: int, end: int
    ) -> Obj:
        cus = customer(sub["customer"])
        id = new_id("in_")
        data = [
            {
                "id": new_id("il_"),
                "object": "line_item",
                "amount": price["unit_amount"] * quantity,
                "currency": price["currency"],
                "description": describe(price, quantity),
                "quantity": quantity,
                "period": {"start": start, "end": end if price["recurring"] else start},
                "price": price,
                "pricing": {
                    "type": "price_details",
                    "unit_amount_decimal": str(price["unit_amount"]),
                    "price_details": {"price": price["id"], "product": price["product"]},
                },
                "subscription": sub["id"],
                "invoice": id,
                "metadata": {},
            }
            for price, quantity in lines
        ]
        total = sum(line["amount"] for line in data)
        return self.store.add(
            {
                "id": id,
                "object": "invoice",
                "customer": cus.id,
                "customer_email": cus.email,
                "subscription": sub["id"],
                "parent": {
                    "type": "subscription_details",
                    "quote_details": None,
                    "subscription_details": {
                        "subscription": sub["id"],
                        "metadata": dict(sub["metadata"]),
                    },
                },
                "billing_reason": reason,
                "collection_method": "charge_automatically",
                "currency": sub["currency"],
                "status": "draft",
                "paid": False,
                "attempted": False,
                "attempt_count": 0,
                "next_payment_attempt": None,
                "amount_due": total,
                "amount_paid": 0,
                "amount_remaining": total,
                "subtotal": total,
                "total": total,
                "charge": None,
                "payment_intent": None,
                "lines": {
                    "object": "list",
                    "data": data,
                    "has_more": False,
                    "url": f"/v1/invoices/{id}/lines",
                },
                "period_start": start,
                "period_end": end,
                "number": None,
                "hosted_invoice_url": None,
                "status_transitions": {
                    "finalized_at": None,
                    "paid_at": None,
                    "marked_uncollectible_at": None,
                    "voided_at": None,
                },
                "test_clock": sub["test_clock"],
                "created": at,
                "livemode": False,
            }
        )

    def _finalize(self, invoice: Obj, at: int) -> None:
        invoice["status"] = "open"
        invoice["number"] = f"LOCAL-{len(self.store.all('invoice')):04d}"
        invoice["status_transitions"]["finalized_at"] = at
        self.store.emit("invoice.finalized", invoice)

    def _collect(self, invoice: Obj, at: int) -> bool:
        """One payment attempt on the invoice with the customer's default card."""
        cus = customer(invoice["customer"])
        card = default_card(cus)
        invoice["attempted"] = True
        invoice["attempt_count"] += 1
        paid = False
        if card is not None:
            pi = self.payments.intent(
                amount=invoice["amount_due"],
                currency=invoice["currency"],
                customer=cus.id,
                at=at,
                description="Subscription creation"
                if invoice["billing_reason"] == "subscription_create"
                else "Subscription update",
            )
            charge = self.payments.confirm(pi, card, at)
            invoice.update(charge=charge["id"], payment_intent=pi["id"])
            paid = charge["paid"]
        if paid:
            invoice.update(
                status="paid",
                paid=True,
                amount_paid=invoice["amount_due"],
                amount_remaining=0,
                next_payment_attempt=None,
            )
            invoice["status_transitions"]["paid_at"] = at
            self.store.emit("invoice.paid", invoice)
            self.store.emit("invoice.payment_succeeded", invoice)
        else:
            retry = invoice["attempt_count"] < ATTEMPTS
            invoice["next_payment_attempt"] = at + RETRY_AFTER if retry else None
            self.store.emit("invoice.payment_failed", invoice)
        return paid

    def renew(self, sub: Obj, at: int) -> None:
        start = sub["current_period_end"]
        first = sub["items"]["data"][0]["price"]["recurring"]
        end = add_interval(start, first["interval"], first["interval_count"])
        lines = [(item["price"], item["quantity"]) for item in sub["items"]["data"]]
        invoice = self._invoice(sub, lines, "subscription_cycle", at, start, end)
        self.store.emit("invoice.created", invoice)
        self._finalize(invoice, at)
        paid = self._collect(invoice, at)
        previous = {
            key: copy.deepcopy(sub[key])
            for key in ("current_period_start", "current_period_end", "items", "latest_invoice")
        }
        sub.update(current_period_start=start, current_period_end=end, latest_invoice=invoice["id"])
        for item in sub["items"]["data"]:
            item.update(current_period_start=start, current_period_end=end)
        status = "active" if paid else "past_due"
        if status != sub["status"]:
            previous["status"] = sub["status"]
            sub["status"] = status
        self.store.emit("customer.subscription.updated", sub, previous)

    def retry(self, invoice: Obj, at: int) -> None:
        sub = self.store.get(invoice["subscription"], "subscription")
        if self._collect(invoice, at):
            if sub["status"] == "past_due" and sub["latest_invoice"] == invoice["id"]:
                sub["status"] = "active"
                self.store.emit("customer.subscription.updated", sub, {"status": "past_due"})
        elif invoice["next_payment_attempt"] is None and sub["status"] in LIVE:
            self._end(sub, at, "payment_failed")

    def _end(self, sub: Obj, at: int, reason: str) -> None:
        sub.update(status="canceled", ended_at=at, canceled_at=sub["canceled_at"] or at)
        sub["cancellation_details"]["reason"] = reason
        # An ended subscription's unpaid invoices are no longer tried.
        for invoice in self.store.all("invoice"):
            if invoice["subscription"] == sub["id"] and invoice["status"] == "open":
                invoice["next_payment_attempt"] = None
        self.store.emit("customer.subscription.deleted", sub)

    def end_at_period_end(self, sub: Obj, at: int) -> None:
        self._end(sub, at, "cancellation_requested")

    def update(self, sub: Obj, data: dict[str, Any]) -> Obj:
        only(data, ("cancel_at_period_end", "metadata"))
        if sub["status"] == "canceled" and "cancel_at_period_end" in data:
            raise StripeError(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        previous: dict[str, Any] = {}
        if "metadata" in data:
            meta = metadata(data["metadata"], current=sub["metadata"])
            if meta != sub["metadata"]:
                previous["metadata"] = sub["metadata"]
                sub["metadata"] = meta
        if "cancel_at_period_end" in data:
            cancel = boolean(data["cancel_at_period_end"], "cancel_at_period_end")
            if cancel != sub["cancel_at_period_end"]:
                previous.update(
                    {k: sub[k] for k in ("cancel_at_period_end", "cancel_at", "canceled_at")}
                )
                sub.update(
                    cancel_at_period_end=cancel,
                    cancel_at=sub["current_period_end"] if cancel else None,
                    canceled_at=self.store.now_for(sub["customer"]) if cancel else None,
                )
                sub["cancellation_details"]["reason"] = "cancellation_requested" if cancel else None
        if previous:
            self.store.emit("customer.subscription.updated", sub, previous)
        return sub

    def cancel(self, sub: Obj) -> Obj:
        if sub["status"] == "canceled":
            raise StripeError(400, f"The subscription {sub['id']} is already canceled.")
        self._end(sub, self.store.now_for(sub["customer"]), "cancellation_requested")
        return sub

    def routes(self) -> list[web.RouteDef]:
        store = self.store

        async def list_subscriptions(request: web.Request) -> web.Response:
            data = await params(request)
            expand = data.pop("expand", None)
            only(data, ("customer", "status", "price", "limit", "starting_after", "test_clock"))
            status = data.get("status")
            subs = [
                s
                for s in store.all("subscription")
                if (
                    status == "all"
                    or s["status"] == status
                    or (status is None and s["status"] != "canceled")
                )
                and data.get("customer") in (None, s["customer"])
                and data.get("test_clock") in (None, s["test_clock"])
                and data.get("price") in (None, *[i["price"]["id"] for i in s["items"]["data"]])
            ]
            page = listing([store.render(s) for s in subs], data, "/v1/subscriptions")
            return answer(store.render(page, expand))

        async def update_subscription(request: web.Request) -> web.Response:
            data = await params(request)
            expand = data.pop("expand", None)
            sub = store.get(request.match_info["id"], "subscription")
            return answer(store.render(self.update(sub, data), expand))

        async def cancel_subscription(request: web.Request) -> web.Response:
            data = await params(request)
            expand = data.pop("expand", None)
            only(data, ("invoice_now", "prorate", "cancellation_details"))
            sub = store.get(request.match_info["id"], "subscription")
            return answer(store.render(self.cancel(sub), expand))

        return [
            web.get("/v1/subscriptions", list_subscriptions),
            web.post("/v1/subscriptions/{id}", update_subscription),
            web.delete("/v1/subscriptions/{id}", cancel_subscription),
            retrieve_route(store, "subscription", "/v1/subscriptions"),
            *read_routes(store, "invoice", "/v1/invoices", ("customer", "subscription", "status")),
        ]


def describe(price: Obj, quantity: int) -> str:
    name = Product._api_retrieve(price["product"]).name
    amount = pages.money(price["unit_amount"], price["currency"])
    return f"{quantity} x {name} (at {amount}{per_interval(price)})"
