"""The in-memory twin of the `Stripe` port, for application tests: no I/O, same answers.

It keeps Stripe's objects as Stripe's JSON (so views are read by the SDK adapter's own
`*_view` functions) and behaves as the local Stripe does (libs/stripe-local), which the
contract test (tests/test_stripe_adapters.py) holds both to: Stripe's US card fee (2.9 %
rounded half up + 30 minor units) on every paid charge, subscriptions whose periods last one
interval from the moment they are paid, refunds that never exceed the charge, idempotency keys
honoured, unknown ids and impossible requests refused as `PaymentProviderError`.

What a person or Stripe's clock does is done by the test-facing helpers (`pay`, `decline`,
`renew`, `complete_onboarding`, `expire`): each returns the events real Stripe would send, in
its order, shaped as Stripe's (`id` evt_..., `type`, `data.object`, `created`). Every event,
also those of the port's calls (a refund, a cancellation), is kept in `events`.
"""

from __future__ import annotations

import calendar
import copy
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from audifi_kit.errors import PaymentProviderError

from audifi_payment.adapters.stripe_sdk import (
    account_view,
    charge_view,
    check_refund_reason,
    invoice_view,
    refund_view,
    refused,
    session_view,
    subscription_view,
)
from audifi_payment.application.stripe_port import (
    ChargeView,
    CheckoutRequest,
    CheckoutSessionView,
    ConnectAccountView,
    InvoiceView,
    RefundView,
    SubscriptionView,
)

Json = dict[str, Any]
PAYS = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0002"
PAYING_CARDS = {"4242424242424242", "5555555555554444"}
DECLINING_CARDS = {"4000000000000002", "4000000000009995", "4000000000000341"}
DAY = 86_400
RETRY_AFTER = 3 * DAY  # a declined renewal is tried once more, three days later
API_VERSION = "2026-10-28.endive"


def stripe_fee(amount: int) -> int:
    return (amount * 29 + 500) // 1000 + 30


def add_interval(ts: int, interval: str) -> int:
    """One month or year on, keeping the day of month clamped to the month's end (Jan 31 ->
    Feb 28), as Stripe's billing periods do."""
    at = datetime.fromtimestamp(ts, UTC)
    months = at.month - 1 + (12 if interval == "year" else 1)
    year, month = at.year + months // 12, months % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return int(at.replace(year=year, month=month, day=day).timestamp())


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


class InMemoryStripe:
    """`now` is Stripe's clock: a session expires, a subscription starts and a refund is made
    at its time unless a helper is given `at`."""

    def __init__(
        self,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        base_url: str = "https://stripe.test",
    ) -> None:
        self.now = now
        self.base_url = base_url
        self.events: list[Json] = []
        self._objects: dict[str, Json] = {}
        self._requests: dict[str, CheckoutRequest] = {}  # session id -> what it was opened with
        self._replays: dict[str, tuple[object, str]] = {}  # idempotency key -> (asked, id)

    # -- the port ---------------------------------------------------------------------------

    async def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSessionView:
        asked = replace(request, idempotency_key=None)
        id = self._once(request.idempotency_key, asked, lambda: self._open(asked))
        return session_view(self._objects[id])

    async def checkout_session(self, session_id: str) -> CheckoutSessionView:
        return session_view(self._get(session_id, "checkout.session"))

    async def expire_checkout_session(self, session_id: str) -> CheckoutSessionView:
        session = self._get(session_id, "checkout.session")
        self._expire(session, self._ts(None))
        return session_view(session)

    async def charge_of_payment_intent(self, payment_intent_id: str) -> ChargeView | None:
        intent = self._get(payment_intent_id, "payment_intent")
        return self._charge_view(intent["latest_charge"]) if intent["latest_charge"] else None

    async def charge(self, charge_id: str) -> ChargeView:
        self._get(charge_id, "charge")
        return self._charge_view(charge_id)

    async def subscription(self, subscription_id: str) -> SubscriptionView:
        return self._subscription_view(self._get(subscription_id, "subscription"))

    async def cancel_subscription_at_period_end(self, subscription_id: str) -> SubscriptionView:
        sub = self._get(subscription_id, "subscription")
        if sub["status"] == "canceled":
            raise refused(
                "A canceled subscription can only update its cancellation_details and metadata.",
                code=None,
                status=400,
            )
        if not sub["cancel_at_period_end"]:
            previous = {k: sub[k] for k in ("cancel_at_period_end", "cancel_at", "canceled_at")}
            at = self._ts(None)
            sub.update(cancel_at_period_end=True, cancel_at=sub["current_period_end"])
            sub.update(canceled_at=at)
            self._emit("customer.subscription.updated", sub, at, previous)
        return self._subscription_view(sub)

    async def invoice(self, invoice_id: str) -> InvoiceView:
        return invoice_view(self._get(invoice_id, "invoice"))

    async def refund(
        self, *, payment_intent_id: str, amount: int | None, idempotency_key: str, reason: str
    ) -> RefundView:
        check_refund_reason(reason)
        asked = ("refund", payment_intent_id, amount, reason)
        id = self._once(
            idempotency_key, asked, lambda: self._refund(payment_intent_id, amount, reason)
        )
        return refund_view(self._objects[id])

    async def create_customer(self, *, email: str | None, account_id: str) -> str:
        return self._customer(email, {"account_id": account_id}, self._ts(None))["id"]

    async def portal_session(self, *, customer_id: str, return_url: str) -> str:
        self._get(customer_id, "customer", "customer")
        return f"{self.base_url}/portal/{new_id('bps_')}"

    async def create_connect_account(self, *, email: str | None, account_id: str) -> str:
        account = self._add(
            {
                "id": new_id("acct_"),
                "object": "account",
                "type": "express",
                "email": email,
                "details_submitted": False,
                "charges_enabled": False,
                "payouts_enabled": False,
                "requirements": {"disabled_reason": "requirements.past_due"},
                "metadata": {"account_id": account_id},
                "created": self._ts(None),
            }
        )
        return account["id"]

    async def connect_account(self, connect_account_id: str) -> ConnectAccountView:
        return account_view(self._get(connect_account_id, "account"))

    async def onboarding_link(
        self, *, connect_account_id: str, refresh_url: str, return_url: str
    ) -> str:
        self._get(connect_account_id, "account", "account")
        return f"{self.base_url}/onboard/{connect_account_id}"

    # -- what a person or Stripe's clock does (for tests) -----------------------------------

    def pay(self, session_id: str, card: str = PAYS, at: datetime | None = None) -> list[Json]:
        """A person pays the session on its page with `card` (Stripe's test numbers: 4242...
        pays, 4000 0000 0000 0002 is declined and leaves it open); nothing happens to a session
        no longer open, and one past its `expires_at` expires first."""
        session = self._get(session_id, "checkout.session")
        number = card.replace(" ", "").replace("-", "")
        if number not in PAYING_CARDS | DECLINING_CARDS:
            raise ValueError(f"{card!r} is not one of Stripe's test cards")
        mark, when = len(self.events), self._ts(at)
        if session["status"] == "open" and session["expires_at"] <= when:
            self._expire(session, when)
        if session["status"] != "open":
            return self.events[mark:]
        if number in DECLINING_CARDS:
            self._charge(self._intent_of(session, session["customer"], when), False, when)
            return self.events[mark:]
        customer = session["customer"] or self._customer(session["customer_email"], {}, when)["id"]
        if session["mode"] == "payment":
            self._charge(self._intent_of(session, customer, when), True, when)
        else:
            sub, invoice = self._subscribe(session, customer, when)
            session.update(subscription=sub["id"], invoice=invoice["id"])
        session.update(status="complete", payment_status="paid", customer=customer, url=None)
        self._emit("checkout.session.completed", session, when)
        return self.events[mark:]

    def decline(self, session_id: str, at: datetime | None = None) -> list[Json]:
        return self.pay(session_id, DECLINED, at)

    def renew(self, subscription_id: str, paid: bool = True) -> list[Json]:
        """The subscription's period ends: a new invoice charged (paid, or declined -> past_due)
        and the next period begins; one set to cancel at period end ends instead."""
        sub = self._get(subscription_id, "subscription")
        if sub["status"] not in ("active", "past_due"):
            raise ValueError(f"subscription {subscription_id} is {sub['status']}")
        mark, at = len(self.events), sub["current_period_end"]
        if sub["cancel_at_period_end"]:
            self._end(sub, at, "cancellation_requested")
            return self.events[mark:]
        end = add_interval(at, sub["items"]["data"][0]["price"]["recurring"]["interval"])
        invoice = self._invoice(sub, "subscription_cycle", at, at, end)
        self._collect(invoice, paid, at)
        previous = copy.deepcopy(
            {k: sub[k] for k in ("current_period_start", "current_period_end", "latest_invoice")}
        )
        sub.update(current_period_start=at, current_period_end=end, latest_invoice=invoice["id"])
        for item in sub["items"]["data"]:
            item.update(current_period_start=at, current_period_end=end)
        status = "active" if paid else "past_due"
        if status != sub["status"]:
            previous["status"] = sub["status"]
            sub["status"] = status
        self._emit("customer.subscription.updated", sub, at, previous)
        return self.events[mark:]

    def complete_onboarding(self, connect_account_id: str, ok: bool = True) -> list[Json]:
        """The person finishes Connect onboarding: accepted (charges and payouts enabled) or
        rejected."""
        account = self._get(connect_account_id, "account")
        mark = len(self.events)
        watched = ("details_submitted", "charges_enabled", "payouts_enabled", "requirements")
        previous = copy.deepcopy({k: account[k] for k in watched})
        account.update(
            details_submitted=True,
            charges_enabled=ok,
            payouts_enabled=ok,
            requirements={"disabled_reason": None if ok else "rejected.other"},
        )
        changed = {k: v for k, v in previous.items() if account[k] != v}
        self._emit("account.updated", account, self._ts(None), changed)
        return self.events[mark:]

    def expire(self, session_id: str) -> list[Json]:
        """The session's `expires_at` passes with nobody paying."""
        mark = len(self.events)
        self._expire(self._get(session_id, "checkout.session"), self._ts(None))
        return self.events[mark:]

    # -- Stripe's side ----------------------------------------------------------------------

    def _ts(self, at: datetime | None) -> int:
        return int((at or self.now()).timestamp())

    def _add(self, obj: Json) -> Json:
        self._objects[obj["id"]] = obj
        return obj

    def _get(self, id: str, kind: str, param: str = "id") -> Json:
        obj = self._objects.get(id)
        if obj is None or obj["object"] != kind:
            status = 404 if param == "id" else 400
            raise refused(
                f"No such {kind}: '{id}'", code="resource_missing", status=status, param=param
            )
        return obj

    def _once(self, key: str | None, asked: object, make: Callable[[], str]) -> str:
        """Stripe's idempotency: the same key and request answer the first result again."""
        if key is None:
            return make()
        if key in self._replays:
            first, id = self._replays[key]
            if first != asked:
                raise refused(
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with.",
                    code=None,
                    status=400,
                )
            return id
        id = make()
        self._replays[key] = (asked, id)
        return id

    def _emit(self, type: str, obj: Json, at: int, previous: Json | None = None) -> None:
        data: Json = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = copy.deepcopy(previous)
        self.events.append(
            {
                "id": new_id("evt_"),
                "object": "event",
                "api_version": API_VERSION,
                "created": at,
                "data": data,
                "livemode": False,
                "type": type,
            }
        )

    def _open(self, request: CheckoutRequest) -> str:
        line = request.line
        if len(line.currency) != 3 or not line.currency.isalpha():
            raise self._invalid("line_items[0][price_data][currency]", "Invalid currency")
        if line.quantity < 1 or line.unit_amount < 0:
            raise self._invalid("line_items[0]", "Quantity and unit amount must be positive.")
        if request.mode == "payment" and line.interval:
            raise self._invalid(
                "line_items",
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
            )
        if request.mode == "subscription" and not line.interval:
            raise self._invalid(
                "line_items",
                "You must provide at least one recurring price in `subscription` mode.",
            )
        if line.unit_amount * line.quantity <= 0:
            raise self._invalid(
                "line_items", "The Checkout Session's total amount due must be above 0."
            )
        if request.customer_id and request.customer_email:
            raise refused(
                "You may only specify one of these parameters: customer, customer_email.",
                code=None,
                status=400,
            )
        if request.customer_id:
            self._get(request.customer_id, "customer", "customer")
        now = self._ts(None)
        expires_at = now + DAY
        if request.expires_at is not None:
            expires_at = int(request.expires_at.timestamp())
            if not now + 1800 <= expires_at <= now + DAY:
                raise self._invalid(
                    "expires_at",
                    "The `expires_at` timestamp must be between 30 minutes and 24 hours from "
                    "Checkout Session creation.",
                )
        id = new_id("cs_test_")
        self._requests[id] = request
        self._add(
            {
                "id": id,
                "object": "checkout.session",
                "mode": request.mode,
                "status": "open",
                "payment_status": "unpaid",
                "url": f"{self.base_url}/pay/{id}",
                "success_url": request.success_url,
                "cancel_url": request.cancel_url,
                "customer": request.customer_id,
                "customer_email": request.customer_email,
                "client_reference_id": request.client_reference_id,
                "metadata": dict(request.metadata),
                "currency": line.currency.lower(),
                "amount_total": line.unit_amount * line.quantity,
                "expires_at": expires_at,
                "payment_intent": None,
                "subscription": None,
                "invoice": None,
                "created": now,
                "livemode": False,
            }
        )
        return id

    @staticmethod
    def _invalid(param: str, message: str) -> PaymentProviderError:
        return refused(message, code="parameter_invalid", status=400, param=param)

    def _expire(self, session: Json, at: int) -> None:
        if session["status"] != "open":
            raise refused(
                'Only Checkout Sessions with a status in ["open"] can be expired.',
                code=None,
                status=400,
                param="session",
            )
        session.update(status="expired", url=None)
        if session["payment_intent"]:
            intent = self._objects[session["payment_intent"]]
            if intent["status"] not in ("succeeded", "canceled"):
                intent.update(status="canceled", canceled_at=at, cancellation_reason="abandoned")
                self._emit("payment_intent.canceled", intent, at)
        self._emit("checkout.session.expired", session, at)

    def _customer(self, email: str | None, metadata: dict[str, str], at: int) -> Json:
        customer = self._add(
            {
                "id": new_id("cus_"),
                "object": "customer",
                "email": email,
                "metadata": metadata,
                "created": at,
                "livemode": False,
            }
        )
        self._emit("customer.created", customer, at)
        return customer

    def _intent_of(self, session: Json, customer: str | None, at: int) -> Json:
        """A payment session keeps one intent across attempts; a subscription's first invoice
        gets its own when the card pays, so a declined attempt's intent is left behind."""
        if session["payment_intent"]:
            intent = self._objects[session["payment_intent"]]
            intent["customer"] = customer
            return intent
        payment = session["mode"] == "payment"
        metadata = dict(self._requests[session["id"]].metadata) if payment else {}
        intent = self._intent(session["amount_total"], session["currency"], customer, at, metadata)
        if payment:
            session["payment_intent"] = intent["id"]
        return intent

    def _intent(
        self, amount: int, currency: str, customer: str | None, at: int, metadata: dict[str, str]
    ) -> Json:
        return self._add(
            {
                "id": new_id("pi_"),
                "object": "payment_intent",
                "amount": amount,
                "amount_received": 0,
                "currency": currency,
                "customer": customer,
                "metadata": metadata,
                "status": "requires_payment_method",
                "latest_charge": None,
                "last_payment_error": None,
                "created": at,
                "livemode": False,
            }
        )

    def _charge(self, intent: Json, paid: bool, at: int) -> Json:
        charge = self._add(
            {
                "id": new_id("ch_"),
                "object": "charge",
                "amount": intent["amount"],
                "amount_captured": intent["amount"] if paid else 0,
                "amount_refunded": 0,
                "currency": intent["currency"],
                "customer": intent["customer"],
                "metadata": dict(intent["metadata"]),
                "payment_intent": intent["id"],
                "balance_transaction": None,
                "captured": paid,
                "paid": paid,
                "refunded": False,
                "status": "succeeded" if paid else "failed",
                "failure_code": None if paid else "card_declined",
                "created": at,
                "livemode": False,
            }
        )
        intent["latest_charge"] = charge["id"]
        if paid:
            fee = stripe_fee(charge["amount"])
            charge["balance_transaction"] = self._balance(charge["amount"], fee, charge, at)["id"]
            intent.update(status="succeeded", amount_received=intent["amount"])
            intent["last_payment_error"] = None
            self._emit("charge.succeeded", charge, at)
            self._emit("payment_intent.succeeded", intent, at)
        else:
            intent["last_payment_error"] = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
                "charge": charge["id"],
            }
            self._emit("charge.failed", charge, at)
            self._emit("payment_intent.payment_failed", intent, at)
        return charge

    def _balance(self, amount: int, fee: int, source: Json, at: int) -> Json:
        return self._add(
            {
                "id": new_id("txn_"),
                "object": "balance_transaction",
                "amount": amount,
                "currency": source["currency"],
                "fee": fee,
                "net": amount - fee,
                "source": source["id"],
                "type": source["object"],
                "created": at,
            }
        )

    def _subscribe(self, session: Json, customer: str, at: int) -> tuple[Json, Json]:
        request = self._requests[session["id"]]
        line = request.line
        assert line.interval is not None  # refused at creation otherwise
        end = add_interval(at, line.interval)
        id = new_id("sub_")
        price = {
            "id": new_id("price_"),
            "object": "price",
            "currency": line.currency.lower(),
            "unit_amount": line.unit_amount,
            "recurring": {"interval": line.interval, "interval_count": 1},
        }
        item = {
            "id": new_id("si_"),
            "object": "subscription_item",
            "price": price,
            "quantity": line.quantity,
            "subscription": id,
            "current_period_start": at,
            "current_period_end": end,
        }
        sub = self._add(
            {
                "id": id,
                "object": "subscription",
                "customer": customer,
                "status": "active",
                "currency": line.currency.lower(),
                "items": {"object": "list", "data": [item], "has_more": False},
                "current_period_start": at,
                "current_period_end": end,
                "start_date": at,
                "cancel_at_period_end": False,
                "cancel_at": None,
                "canceled_at": None,
                "ended_at": None,
                "cancellation_details": {"reason": None},
                "latest_invoice": None,
                "metadata": dict(request.metadata),
                "created": at,
                "livemode": False,
            }
        )
        invoice = self._invoice(sub, "subscription_create", at, at, end, announce=False)
        sub["latest_invoice"] = invoice["id"]
        self._emit("customer.subscription.created", sub, at)
        self._emit("invoice.created", invoice, at)
        self._finalize(invoice, at)
        self._collect(invoice, True, at)
        return sub, invoice

    def _invoice(
        self, sub: Json, reason: str, at: int, start: int, end: int, *, announce: bool = True
    ) -> Json:
        item = sub["items"]["data"][0]
        total = item["price"]["unit_amount"] * item["quantity"]
        invoice = self._add(
            {
                "id": new_id("in_"),
                "object": "invoice",
                "customer": sub["customer"],
                "subscription": sub["id"],
                "parent": {
                    "type": "subscription_details",
                    "subscription_details": {
                        "subscription": sub["id"],
                        "metadata": dict(sub["metadata"]),
                    },
                },
                "billing_reason": reason,
                "currency": sub["currency"],
                "status": "draft",
                "paid": False,
                "attempt_count": 0,
                "next_payment_attempt": None,
                "amount_due": total,
                "amount_paid": 0,
                "amount_remaining": total,
                "total": total,
                "charge": None,
                "payment_intent": None,
                "period_start": start,
                "period_end": end,
                "hosted_invoice_url": None,
                "created": at,
                "livemode": False,
            }
        )
        if announce:
            self._emit("invoice.created", invoice, at)
            self._finalize(invoice, at)
        return invoice

    def _finalize(self, invoice: Json, at: int) -> None:
        invoice["status"] = "open"
        self._emit("invoice.finalized", invoice, at)

    def _collect(self, invoice: Json, paid: bool, at: int) -> None:
        """One attempt to charge the invoice to the customer's card."""
        intent = self._intent(
            invoice["amount_due"], invoice["currency"], invoice["customer"], at, {}
        )
        charge = self._charge(intent, paid, at)
        invoice.update(charge=charge["id"], payment_intent=intent["id"])
        invoice["attempt_count"] += 1
        if paid:
            invoice.update(status="paid", paid=True, amount_paid=invoice["amount_due"])
            invoice.update(amount_remaining=0, next_payment_attempt=None)
            self._emit("invoice.paid", invoice, at)
            self._emit("invoice.payment_succeeded", invoice, at)
        else:
            retry = invoice["attempt_count"] < 2
            invoice["next_payment_attempt"] = at + RETRY_AFTER if retry else None
            self._emit("invoice.payment_failed", invoice, at)

    def _end(self, sub: Json, at: int, reason: str) -> None:
        sub.update(status="canceled", ended_at=at, canceled_at=sub["canceled_at"] or at)
        sub["cancellation_details"] = {"reason": reason}
        for invoice in self._objects.values():
            if invoice["object"] == "invoice" and invoice["subscription"] == sub["id"]:
                invoice["next_payment_attempt"] = None
        self._emit("customer.subscription.deleted", sub, at)

    def _refund(self, payment_intent_id: str, amount: int | None, reason: str) -> str:
        intent = self._get(payment_intent_id, "payment_intent", "payment_intent")
        if intent["status"] != "succeeded":
            raise refused(
                f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                code=None,
                status=400,
                param="payment_intent",
            )
        charge = self._objects[intent["latest_charge"]]
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining == 0:
            raise refused(
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
                status=400,
            )
        amount = remaining if amount is None else amount
        if amount < 1:
            raise self._invalid("amount", "This value must be greater than or equal to 1.")
        if amount > remaining:
            raise refused(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining})",
                code="amount_too_large",
                status=400,
                param="amount",
            )
        at = self._ts(None)
        refund = self._add(
            {
                "id": new_id("re_"),
                "object": "refund",
                "amount": amount,
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": intent["id"],
                "status": "succeeded",
                "reason": reason,
                "metadata": {},
                "created": at,
            }
        )
        refund["balance_transaction"] = self._balance(-amount, 0, refund, at)["id"]
        previous = {k: charge[k] for k in ("amount_refunded", "refunded")}
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        self._emit("charge.refunded", charge, at, previous)
        self._emit("refund.created", refund, at)
        return refund["id"]

    def _charge_view(self, charge_id: str) -> ChargeView:
        charge = dict(self._objects[charge_id])
        if charge["balance_transaction"]:
            charge["balance_transaction"] = self._objects[charge["balance_transaction"]]
        return charge_view(charge)

    def _subscription_view(self, sub: Json) -> SubscriptionView:
        return subscription_view({**sub, "latest_invoice": self._objects[sub["latest_invoice"]]})
