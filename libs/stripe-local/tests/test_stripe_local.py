"""The local Stripe, driven as the platform drives real Stripe: through the official `stripe`
SDK pointed at it, a person's POSTs to its pages, and its webhooks arriving at an endpoint
that verifies every one with `stripe.Webhook.construct_event`.

One server (a subprocess) for the module, delivering to two webhook URLs of one receiver.
Each test looks only at the events of the objects it made, so their order does not matter.
"""

from __future__ import annotations

import calendar
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import stripe
from audifi_kit.testing import eventually_sync
from audifi_stripe_local.testing import StripeLocal

SECRET = "whsec_local_test_secret"
Event = dict[str, Any]


def utc(year: int, month: int, day: int, hour: int = 0) -> int:
    return calendar.timegm((year, month, day, hour, 0, 0))


JAN_1, FEB_1, MAR_1 = utc(2026, 1, 1), utc(2026, 2, 1), utc(2026, 3, 1)
HOUR, DAY = 3600, 86_400


class Receiver:
    """A webhook endpoint: keeps every delivery (path, Stripe-Signature, body) and answers 200,
    except once to a delivery on `path` whose body contains a marker in `fail_once`: 500."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, str, str]] = []
        self.fail_once: set[tuple[str, str]] = set()
        self.changed = threading.Condition()
        receiver = self

        class Endpoint(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                with receiver.changed:
                    failing = {
                        (p, m) for p, m in receiver.fail_once if p == self.path and m in body
                    }
                    receiver.fail_once -= failing
                    if not failing:
                        signature = self.headers.get("Stripe-Signature", "")
                        receiver.deliveries.append((self.path, signature, body))
                        receiver.changed.notify_all()
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def events(self, path: str = "/a") -> list[Event]:
        """What arrived on `path`, in order, each verified as the platform verifies it."""
        with self.changed:
            arrived = [(s, body) for p, s, body in self.deliveries if p == path]
        return [stripe.Webhook.construct_event(body, s, SECRET).to_dict() for s, body in arrived]

    def wait_for(self, check: Callable[[list[Event]], Any], path: str = "/a") -> list[Event]:
        """The events on `path` once `check(events)` holds (within 10 s)."""
        with self.changed:
            if not self.changed.wait_for(lambda: check(self.events(path)), timeout=10):
                seen = [(e["type"], e["data"]["object"].get("id")) for e in self.events(path)]
                raise AssertionError(f"webhooks never showed what was awaited; got {seen[-15:]}")
        return self.events(path)


def of(events: list[Event], *ids: str) -> list[Event]:
    """The events about the objects `ids` or objects of customer `ids`."""
    return [
        e
        for e in events
        if e["data"]["object"].get("id") in ids or e["data"]["object"].get("customer") in ids
    ]


def types(events: list[Event]) -> list[str]:
    return [e["type"] for e in events]


def sent(type: str, id: str) -> Callable[[list[Event]], bool]:
    return lambda events: any(e["type"] == type and e["data"]["object"]["id"] == id for e in events)


def last(events: list[Event], type: str, id: str) -> Event:
    return [e for e in events if e["type"] == type and e["data"]["object"]["id"] == id][-1]


def pay(url: str, card: str = "4242 4242 4242 4242") -> httpx.Response:
    return httpx.post(url, data={"card_number": card, "exp": "12 / 34", "cvc": "123"})


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture(scope="module")
def stripe_url(receiver: Receiver) -> Iterator[str]:
    with StripeLocal([f"{receiver.url}/a", f"{receiver.url}/b"], SECRET) as url:
        yield url


@pytest.fixture(scope="module")
def client(stripe_url: str) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_local", base_addresses={"api": stripe_url})


def email() -> str:
    return f"fan-{uuid.uuid4().hex[:8]}@example.com"


def one_time(amount: int, currency: str = "usd", name: str = "Master share") -> dict[str, Any]:
    return {"currency": currency, "unit_amount": amount, "product_data": {"name": name}}


def paid_checkout(client: stripe.StripeClient, receiver: Receiver, amount: int) -> Any:
    session = client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "customer_email": email(),
            "success_url": "https://audifi.test/paid",
            "line_items": [{"price_data": one_time(amount), "quantity": 1}],
        }
    )
    assert pay(session.url).status_code == 303
    receiver.wait_for(sent("checkout.session.completed", session.id))
    return client.v1.checkout.sessions.retrieve(session.id)


def subscribed(client: stripe.StripeClient, receiver: Receiver, customer: str) -> Any:
    """A paid monthly subscription of `customer` to a 9.99 USD tier."""
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": customer,
            "success_url": "https://audifi.test/subscribed",
            "line_items": [
                {
                    "price_data": {
                        **one_time(999, name="Gold tier"),
                        "recurring": {"interval": "month"},
                    },
                    "quantity": 1,
                }
            ],
        }
    )
    assert pay(session.url).status_code == 303
    receiver.wait_for(sent("checkout.session.completed", session.id))
    return client.v1.subscriptions.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).subscription
    )


def clocked_customer(client: stripe.StripeClient) -> Any:
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": JAN_1})
    return client.v1.customers.create({"email": email(), "test_clock": clock.id})


def advance(client: stripe.StripeClient, customer: Any, to: int) -> None:
    clock = client.v1.test_helpers.test_clocks.advance(customer.test_clock, {"frozen_time": to})
    assert (clock.status, clock.frozen_time) == ("ready", to)


def test_a_paid_checkout_charges_the_card_with_stripes_fee_and_sends_signed_webhooks_in_order(
    client: stripe.StripeClient, receiver: Receiver, stripe_url: str
) -> None:
    session = client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "customer_email": email(),
            "client_reference_id": "order-1",
            "metadata": {"order_id": "order-1"},
            "success_url": "https://audifi.test/paid?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://audifi.test/cart",
            "line_items": [{"price_data": one_time(2000), "quantity": 2}],
        }
    )
    assert (session.status, session.payment_status, session.amount_total) == (
        "open",
        "unpaid",
        4000,
    )
    assert session.url == f"{stripe_url}/pay/{session.id}"

    page = httpx.get(session.url)
    assert page.status_code == 200
    assert "Master share" in page.text and "Pay 40.00 USD" in page.text

    paid = pay(session.url)
    assert paid.status_code == 303
    assert paid.headers["location"] == f"https://audifi.test/paid?session={session.id}"

    events = receiver.wait_for(sent("checkout.session.completed", session.id))
    session = client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["payment_intent.latest_charge.balance_transaction"]}
    )
    intent = session.payment_intent
    charge = intent.latest_charge
    fee = charge.balance_transaction
    assert (session.status, session.payment_status) == ("complete", "paid")
    assert (intent.status, charge.paid, charge.amount) == ("succeeded", True, 4000)
    # 2.9 % of 40.00 = 1.16, plus 0.30.
    assert (fee.amount, fee.fee, fee.net, fee.currency) == (4000, 146, 3854, "usd")
    assert [(d.type, d.amount) for d in fee.fee_details] == [("stripe_fee", 146)]

    mine = of(events, session.id, intent.id, charge.id, session.customer)
    assert types(mine) == [
        "customer.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    completed = mine[-1]["data"]["object"]
    assert completed["payment_intent"] == intent.id
    assert completed["client_reference_id"] == "order-1"
    assert completed["metadata"] == {"order_id": "order-1"}

    # The same events, newest first, from the API.
    listed = client.v1.events.list({"type": "checkout.session.completed", "limit": 1})
    assert listed.data[0].id == mine[-1]["id"]
    assert client.v1.events.retrieve(mine[-1]["id"]).type == "checkout.session.completed"

    # The signature is the real check: another secret or a changed body is refused.
    _, signature, body = next(d for d in receiver.deliveries if mine[-1]["id"] in d[2])
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, signature, "whsec_someone_else")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.replace("4000", "4001"), signature, SECRET)


def test_a_declined_card_leaves_the_checkout_open_and_another_card_can_pay_it(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    session = client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "customer_email": email(),
            "success_url": "https://audifi.test/paid",
            "line_items": [{"price_data": one_time(1500, "eur"), "quantity": 1}],
        }
    )
    declined = pay(session.url, "4000 0000 0000 0002")
    assert declined.status_code == 402
    assert "Your card was declined." in declined.text

    intent = client.v1.checkout.sessions.retrieve(session.id).payment_intent
    failed = last(
        receiver.wait_for(sent("payment_intent.payment_failed", intent)),
        "payment_intent.payment_failed",
        intent,
    )
    assert failed["data"]["object"]["last_payment_error"]["code"] == "card_declined"
    still = client.v1.checkout.sessions.retrieve(session.id)
    assert (still.status, still.payment_status) == ("open", "unpaid")

    invalid = pay(session.url, "1234 5678 9012 3456")
    assert invalid.status_code == 400 and "Your card number is invalid." in invalid.text

    assert pay(session.url).status_code == 303
    events = receiver.wait_for(sent("checkout.session.completed", session.id))
    assert types(of(events, session.id, intent)) == [
        "payment_intent.payment_failed",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    assert client.v1.payment_intents.retrieve(intent).status == "succeeded"


def test_a_subscription_renews_on_its_test_clock_falls_past_due_on_a_declined_card_then_ends(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    customer = clocked_customer(client)
    tier = client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 999,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Gold tier"},
        }
    )
    session = client.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"price": tier.id, "quantity": 1}],
            "subscription_data": {"metadata": {"tier_id": "gold"}},
            "success_url": "https://audifi.test/subscribed",
        }
    )
    assert pay(session.url).status_code == 303
    events = receiver.wait_for(sent("checkout.session.completed", session.id))
    assert types(of(events, customer.id)) == [
        "customer.created",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "checkout.session.completed",
    ]
    sub = client.v1.subscriptions.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).subscription
    )
    assert (sub.status, sub.metadata.to_dict()) == ("active", {"tier_id": "gold"})
    assert (sub.current_period_start, sub.current_period_end) == (JAN_1, FEB_1)
    assert sub["items"].data[0].current_period_end == FEB_1

    # Renewal: the clock passes the period end and the card pays.
    seen = len(of(events, customer.id))
    advance(client, customer, FEB_1 + HOUR)
    events = of(receiver.wait_for(sent("customer.subscription.updated", sub.id)), customer.id)
    assert types(events[seen:]) == [
        "invoice.created",
        "invoice.finalized",
        "charge.succeeded",
        "payment_intent.succeeded",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
    ]
    renewed = events[-1]["data"]
    assert renewed["object"]["current_period_end"] == MAR_1
    assert renewed["previous_attributes"]["current_period_end"] == FEB_1
    invoice = client.v1.invoices.retrieve(renewed["object"]["latest_invoice"])
    assert (invoice.billing_reason, invoice.status, invoice.amount_paid) == (
        "subscription_cycle",
        "paid",
        999,
    )

    # The next renewal is declined: past due, one more try three days later.
    client.v1.customers.update(
        customer.id, {"invoice_settings": {"default_payment_method": "pm_card_chargeDeclined"}}
    )
    seen = len(events)
    advance(client, customer, MAR_1 + HOUR)
    events = of(
        receiver.wait_for(
            lambda evs: types(of(evs, customer.id)).count("customer.subscription.updated") == 2
        ),
        customer.id,
    )
    assert types(events[seen + 1 :]) == [  # after customer.updated (the card change)
        "invoice.created",
        "invoice.finalized",
        "charge.failed",
        "payment_intent.payment_failed",
        "invoice.payment_failed",
        "customer.subscription.updated",
    ]
    assert events[-1]["data"]["object"]["status"] == "past_due"
    assert events[-1]["data"]["previous_attributes"]["status"] == "active"
    unpaid = client.v1.invoices.retrieve(events[-1]["data"]["object"]["latest_invoice"])
    assert (unpaid.status, unpaid.attempt_count) == ("open", 1)
    assert unpaid.next_payment_attempt == MAR_1 + 3 * DAY

    # The retry is declined too: the subscription ends.
    advance(client, customer, MAR_1 + 4 * DAY)
    receiver.wait_for(sent("customer.subscription.deleted", sub.id))
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert (ended.status, ended.cancellation_details.reason) == ("canceled", "payment_failed")
    assert client.v1.invoices.retrieve(unpaid.id).attempt_count == 2


def test_the_portal_changes_the_card_and_cancels_at_period_end(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    customer = clocked_customer(client)
    sub = subscribed(client, receiver, customer.id)
    portal = client.v1.billing_portal.sessions.create(
        {"customer": customer.id, "return_url": "https://audifi.test/account"}
    )
    page = httpx.get(portal.url)
    assert page.status_code == 200
    assert "Gold tier" in page.text and "renews on 2026-02-01" in page.text
    assert "Card ending in 4242" in page.text

    refused = httpx.post(f"{portal.url}/card", data={"card_number": "4000000000000002"})
    assert refused.status_code == 402 and "Your card was declined." in refused.text
    saved = httpx.post(f"{portal.url}/card", data={"card_number": "4000 0000 0000 0341"})
    assert saved.status_code == 200 and "ending in 0341 is saved" in saved.text
    card = client.v1.customers.retrieve(customer.id).invoice_settings.default_payment_method
    assert client.v1.payment_methods.retrieve(card).card.last4 == "0341"

    canceled = httpx.post(f"{portal.url}/cancel", data={"subscription": sub.id})
    assert canceled.status_code == 200 and "ends on 2026-02-01" in canceled.text
    update = last(
        receiver.wait_for(sent("customer.subscription.updated", sub.id)),
        "customer.subscription.updated",
        sub.id,
    )
    assert update["data"]["object"]["cancel_at_period_end"] is True
    assert update["data"]["previous_attributes"]["cancel_at_period_end"] is False
    pending_end = client.v1.subscriptions.retrieve(sub.id)
    assert (pending_end.status, pending_end.cancel_at) == ("active", FEB_1)

    # At the period end it ends, and the declining card is never charged.
    advance(client, customer, FEB_1 + HOUR)
    receiver.wait_for(sent("customer.subscription.deleted", sub.id))
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert (ended.status, ended.ended_at) == ("canceled", FEB_1)
    assert len(client.v1.invoices.list({"subscription": sub.id}).data) == 1


def test_the_api_cancels_a_subscription_at_period_end_or_at_once(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    customer = client.v1.customers.create({"email": email()})
    sub = subscribed(client, receiver, customer.id)
    later = client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    assert (later.status, later.cancel_at) == ("active", sub.current_period_end)
    receiver.wait_for(sent("customer.subscription.updated", sub.id))

    now = client.v1.subscriptions.cancel(sub.id)
    assert now.status == "canceled" and now.ended_at is not None
    receiver.wait_for(sent("customer.subscription.deleted", sub.id))
    assert client.v1.subscriptions.list({"customer": customer.id}).data == []
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.cancel(sub.id)


def test_connect_onboarding_is_completed_or_rejected_on_its_page(
    client: stripe.StripeClient, receiver: Receiver, stripe_url: str
) -> None:
    outcomes = {}
    for decision in ("complete", "reject"):
        account = client.v1.accounts.create(
            {"type": "express", "email": email(), "metadata": {"user_id": decision}}
        )
        assert (account.details_submitted, account.charges_enabled) == (False, False)
        link = client.v1.account_links.create(
            {
                "account": account.id,
                "type": "account_onboarding",
                "refresh_url": "https://audifi.test/connect/again",
                "return_url": "https://audifi.test/connect/done",
            }
        )
        assert link.url == f"{stripe_url}/onboard/{account.id}"
        page = httpx.get(link.url)
        assert "Complete onboarding" in page.text and "Reject this account" in page.text
        done = httpx.post(link.url, data={"decision": decision})
        assert (done.status_code, done.headers["location"]) == (
            303,
            "https://audifi.test/connect/done",
        )
        outcomes[decision] = last(
            receiver.wait_for(sent("account.updated", account.id)), "account.updated", account.id
        )["data"]

    completed = outcomes["complete"]["object"]
    assert (completed["charges_enabled"], completed["payouts_enabled"]) == (True, True)
    assert outcomes["complete"]["previous_attributes"]["charges_enabled"] is False
    rejected = outcomes["reject"]["object"]
    assert rejected["charges_enabled"] is False
    assert rejected["requirements"]["disabled_reason"] == "rejected.other"
    assert client.v1.accounts.retrieve(completed["id"]).details_submitted is True


def test_refunds_return_the_charge_in_parts_and_never_more(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    intent = paid_checkout(client, receiver, 4000).payment_intent
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create({"payment_intent": intent, "amount": 4001})
    assert too_much.value.code == "amount_too_large"

    part = client.v1.refunds.create({"payment_intent": intent, "amount": 1000})
    assert (part.status, part.amount) == ("succeeded", 1000)
    booked = client.v1.balance_transactions.retrieve(part.balance_transaction)
    assert (booked.amount, booked.fee, booked.type) == (-1000, 0, "refund")
    charge = client.v1.charges.retrieve(part.charge)
    assert (charge.amount_refunded, charge.refunded) == (1000, False)
    events = receiver.wait_for(sent("refund.created", part.id))
    assert types(of(events, charge.id, part.id)) == [
        "charge.succeeded",
        "charge.refunded",
        "refund.created",
    ]

    rest = client.v1.refunds.create({"charge": charge.id})
    assert rest.amount == 3000
    assert client.v1.charges.retrieve(charge.id).refunded is True
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create({"charge": charge.id})
    assert again.value.code == "charge_already_refunded"


def test_an_expired_checkout_can_no_longer_be_paid(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    session = client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "success_url": "https://audifi.test/paid",
            "line_items": [{"price_data": one_time(500), "quantity": 1}],
        }
    )
    expired = client.v1.checkout.sessions.expire(session.id)
    assert (expired.status, expired.url) == ("expired", None)
    receiver.wait_for(sent("checkout.session.expired", session.id))
    assert "This checkout session has expired." in httpx.get(session.url).text
    assert pay(session.url).status_code == 409
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)


def test_failed_deliveries_are_retried_and_an_event_can_be_sent_again(
    client: stripe.StripeClient, receiver: Receiver, stripe_url: str
) -> None:
    marker = email()
    receiver.fail_once.add(("/a", marker))
    customer = client.v1.customers.create({"email": marker})
    created = last(
        receiver.wait_for(sent("customer.created", customer.id)), "customer.created", customer.id
    )
    receiver.wait_for(sent("customer.created", customer.id), path="/b")

    def statuses() -> dict[str, list[int | None]]:
        answer = httpx.get(f"{stripe_url}/_local/deliveries", params={"event": created["id"]})
        by_url: dict[str, list[int | None]] = {}
        for d in answer.json()["data"]:
            by_url.setdefault(d["url"].rsplit("/", 1)[1], []).append(d["status"])
        return by_url

    assert eventually_sync(lambda: statuses() == {"a": [500, 200], "b": [200]}, every=0.05)

    resent = httpx.post(f"{stripe_url}/_local/events/{created['id']}/resend")
    assert resent.status_code == 202
    for path in ("/a", "/b"):
        copies = receiver.wait_for(
            lambda evs: [e["id"] for e in evs].count(created["id"]) == 2, path=path
        )
        assert [e for e in copies if e["id"] == created["id"]][-1] == created


def test_the_api_answers_mistakes_in_stripes_error_shape(
    client: stripe.StripeClient, stripe_url: str
) -> None:
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient(
            "pk_test_public", base_addresses={"api": stripe_url}
        ).v1.customers.list()
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.checkout.sessions.retrieve("cs_test_nothing")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")

    def checkout(**changes: Any) -> None:
        client.v1.checkout.sessions.create(
            {
                "mode": "payment",
                "success_url": "https://audifi.test/paid",
                "line_items": [{"price_data": one_time(500), "quantity": 1}],
                **changes,
            }
        )

    recurring = {**one_time(500), "recurring": {"interval": "month"}}
    with pytest.raises(stripe.InvalidRequestError) as wrong_mode:
        checkout(line_items=[{"price_data": recurring, "quantity": 1}])
    assert wrong_mode.value.param == "line_items"
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        checkout(colour="blue")
    assert (unknown.value.code, unknown.value.param) == ("parameter_unknown", "colour")
    with pytest.raises(stripe.InvalidRequestError) as negative:
        checkout(line_items=[{"price_data": one_time(-5), "quantity": 1}])
    assert negative.value.param == "line_items[0][price_data][unit_amount]"

    # A POST retried with its idempotency key is answered again, not done twice.
    key = {"idempotency_key": uuid.uuid4().hex}
    first = client.v1.customers.create({"email": "same@example.com"}, key)
    assert client.v1.customers.create({"email": "same@example.com"}, key).id == first.id


async def test_the_async_form_starts_a_server_and_stops_it() -> None:
    async with httpx.AsyncClient() as http:
        async with StripeLocal() as url:
            health = await http.get(f"{url}/healthz")
            assert health.json() == {"status": "ok"}
        with pytest.raises(httpx.ConnectError):
            await http.get(f"{url}/healthz")


def test_held_events_are_released_in_the_order_a_test_asks(
    client: stripe.StripeClient, receiver: Receiver, stripe_url: str
) -> None:
    assert httpx.post(f"{stripe_url}/_local/webhooks/hold").status_code == 202
    session = client.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "customer_email": email(),
            "success_url": "https://audifi.test/paid",
            "line_items": [{"price_data": one_time(1234), "quantity": 1}],
        }
    )
    assert pay(session.url).status_code == 303
    before = len(receiver.events())
    released = httpx.post(
        f"{stripe_url}/_local/webhooks/release",
        json={"first": ["checkout.session.completed", "payment_intent.succeeded"]},
    ).json()["released"]
    arrived = receiver.wait_for(lambda events: len(events) >= before + len(released))
    mine = [e for e in arrived[before:] if e["id"] in released]
    assert types(mine)[:2] == ["checkout.session.completed", "payment_intent.succeeded"]
    assert "charge.succeeded" in types(mine)[2:]  # the others follow, as they happened
    assert [e["id"] for e in mine] == released
