"""One contract, two Stripes: the SDK adapter against the local Stripe (libs/stripe-local, a
subprocess, driven as a person and Stripe's clock drive it: its pay page, its onboarding page,
Test Clocks) and the in-memory twin (driven by its helpers). Every test runs on both and
expects the same views and the same events in the same order, so application tests on the
twin hold for the real thing. `verify_webhook` is checked against signatures made by the local
Stripe's own signer.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import httpx
import pytest
from audifi_kit.errors import PaymentProviderError, ValidationFailed
from audifi_payment.adapters.stripe_memory import DECLINED, PAYS, InMemoryStripe
from audifi_payment.adapters.stripe_sdk import StripeSdk, invoice_view, verify_webhook
from audifi_payment.application.stripe_port import CheckoutRequest, LineItem, Stripe
from audifi_stripe_local.testing import StripeLocal
from audifi_stripe_local.webhooks import signature_header

Event = dict[str, Any]
KEY = "sk_test_contract"
JAN_1, FEB_1, MAR_1, APR_1 = (datetime(2026, month, 1, tzinfo=UTC) for month in (1, 2, 3, 4))
# stripe-python's httpx client hands httpx the form body as `data=` bytes, which httpx deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
PAID_CHECKOUT = [
    "customer.created",
    "charge.succeeded",
    "payment_intent.succeeded",
    "checkout.session.completed",
]
PAID_INVOICE = [
    "invoice.created",
    "invoice.finalized",
    "charge.succeeded",
    "payment_intent.succeeded",
    "invoice.paid",
    "invoice.payment_succeeded",
]


class Driver(Protocol):
    """What a person or Stripe's clock does; each returns the events Stripe sent for it."""

    async def customer(self) -> str:
        """A customer whose subscriptions start on JAN_1 and renew when driven."""
        ...

    async def pay(self, session_id: str, card: str = PAYS) -> list[Event]: ...

    async def renew(self, subscription_id: str, *, paid: bool) -> list[Event]: ...

    async def complete_onboarding(self, account_id: str, *, ok: bool) -> list[Event]: ...

    async def events(self) -> list[Event]:
        """The events sent since the last look (e.g. those a port call caused)."""
        ...


class LocalStripeDriver:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.seen: str | None = None

    async def _post(self, path: str, data: dict[str, Any]) -> dict[str, Any]:
        answer = await self.http.post(path, data=data)
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def events(self) -> list[Event]:
        new: list[Event] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            page = (await self.http.get("/v1/events", params=params)).json()
            for event in page["data"]:  # newest first
                if event["id"] == self.seen:
                    break
                new.append(event)
            else:
                if page["has_more"]:
                    params["starting_after"] = page["data"][-1]["id"]
                    continue
            break
        if new:
            self.seen = new[0]["id"]
        return new[::-1]

    async def customer(self) -> str:
        clock = await self._post(
            "/v1/test_helpers/test_clocks", {"frozen_time": int(JAN_1.timestamp())}
        )
        customer = await self._post(
            "/v1/customers", {"email": "fan@example.com", "test_clock": clock["id"]}
        )
        await self.events()
        return customer["id"]

    async def pay(self, session_id: str, card: str = PAYS) -> list[Event]:
        await self.events()
        page = await self.http.post(f"/pay/{session_id}", data={"card_number": card})
        assert page.status_code in (303, 402, 409), page.text  # paid, declined, not open
        return await self.events()

    async def renew(self, subscription_id: str, *, paid: bool) -> list[Event]:
        sub = (await self.http.get(f"/v1/subscriptions/{subscription_id}")).json()
        card = "pm_card_visa" if paid else "pm_card_chargeCustomerFail"
        await self._post(
            f"/v1/customers/{sub['customer']}", {"invoice_settings[default_payment_method]": card}
        )
        await self.events()
        end = sub["items"]["data"][0]["current_period_end"]
        await self._post(
            f"/v1/test_helpers/test_clocks/{sub['test_clock']}/advance", {"frozen_time": end}
        )
        # The clock's own events are about the driving, not the subscription.
        return [e for e in await self.events() if not e["type"].startswith("test_helpers.")]

    async def complete_onboarding(self, account_id: str, *, ok: bool) -> list[Event]:
        await self.events()
        decision = "complete" if ok else "reject"
        page = await self.http.post(f"/onboard/{account_id}", data={"decision": decision})
        assert page.status_code == 303, page.text  # on to the link's return_url
        return await self.events()


class TwinDriver:
    def __init__(self, twin: InMemoryStripe) -> None:
        self.twin = twin
        self.seen = 0

    def _done(self, events: list[Event]) -> list[Event]:
        self.seen = len(self.twin.events)
        return events

    async def events(self) -> list[Event]:
        return self._done(self.twin.events[self.seen :])

    async def customer(self) -> str:
        customer = await self.twin.create_customer(email="fan@example.com", account_id="fan-1")
        await self.events()
        return customer

    async def pay(self, session_id: str, card: str = PAYS) -> list[Event]:
        await self.events()
        return self._done(self.twin.pay(session_id, card))

    async def renew(self, subscription_id: str, *, paid: bool) -> list[Event]:
        await self.events()
        return self._done(self.twin.renew(subscription_id, paid))

    async def complete_onboarding(self, account_id: str, *, ok: bool) -> list[Event]:
        await self.events()
        return self._done(self.twin.complete_onboarding(account_id, ok))


@pytest.fixture(scope="module")
def local_stripe() -> Iterator[str]:
    with StripeLocal() as url:
        yield url


@pytest.fixture(params=["local-stripe-sdk", "in-memory"])
async def stripe(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Stripe, Driver]]:
    if request.param == "in-memory":
        twin = InMemoryStripe(now=lambda: JAN_1)
        yield twin, TwinDriver(twin)
        return
    url = request.getfixturevalue("local_stripe")
    sdk = StripeSdk(KEY, api_base=url)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers) as http:
        driver = LocalStripeDriver(http)
        await driver.events()
        yield sdk, driver
    await sdk.aclose()


def types(events: list[Event]) -> list[str]:
    return [event["type"] for event in events]


def checkout(
    mode: Literal["payment", "subscription"] = "payment",
    *,
    unit: int = 1250,
    quantity: int = 2,
    interval: Literal["month", "year"] | None = None,
    customer_id: str | None = None,
    idempotency_key: str | None = None,
) -> CheckoutRequest:
    ref = str(uuid.uuid4())
    return CheckoutRequest(
        mode=mode,
        line=LineItem("Gold tier" if interval else "Master share", unit, "USD", quantity, interval),
        success_url="https://audifi.test/paid?session={CHECKOUT_SESSION_ID}",
        cancel_url="https://audifi.test/cart",
        client_reference_id=ref,
        metadata={"order_id": ref},
        customer_id=customer_id,
        customer_email=None if customer_id else "fan@example.com",
        idempotency_key=idempotency_key,
    )


async def paid_intent(stripe: Stripe, driver: Driver, unit: int) -> str:
    opened = await stripe.create_checkout_session(checkout(unit=unit))
    await driver.pay(opened.id)
    intent = (await stripe.checkout_session(opened.id)).payment_intent_id
    assert intent is not None
    return intent


async def subscribed(stripe: Stripe, driver: Driver) -> tuple[str, list[Event]]:
    customer = await driver.customer()
    request = checkout("subscription", unit=999, quantity=1, interval="month", customer_id=customer)
    opened = await stripe.create_checkout_session(request)
    events = await driver.pay(opened.id)
    sub = (await stripe.checkout_session(opened.id)).subscription_id
    assert sub is not None
    return sub, events


async def test_a_paid_checkout_completes_and_its_charge_shows_gross_fee_and_net(
    stripe: tuple[Stripe, Driver],
) -> None:
    port, driver = stripe
    request = checkout()
    opened = await port.create_checkout_session(request)
    assert (opened.mode, opened.status, opened.payment_status) == ("payment", "open", "unpaid")
    assert opened.url is not None and opened.expires_at is not None
    assert (opened.client_reference_id, opened.metadata) == (
        request.client_reference_id,
        request.metadata,
    )

    events = await driver.pay(opened.id)
    assert types(events) == PAID_CHECKOUT
    paid = await port.checkout_session(opened.id)
    assert (paid.status, paid.payment_status, paid.url) == ("complete", "paid", None)
    assert paid.payment_intent_id is not None and paid.customer_id is not None
    completed = events[-1]["data"]["object"]
    assert (completed["id"], completed["payment_intent"], completed["metadata"]) == (
        opened.id,
        paid.payment_intent_id,
        dict(request.metadata),
    )

    charge = await port.charge_of_payment_intent(paid.payment_intent_id)
    assert charge is not None
    # 2.9 % of 25.00 is 0.725, rounded half up to 0.73, plus 0.30.
    assert (charge.amount, charge.currency, charge.fee, charge.net) == (2500, "USD", 103, 2397)
    assert (charge.status, charge.paid, charge.amount_refunded) == ("succeeded", True, 0)
    assert (charge.payment_intent_id, charge.metadata) == (paid.payment_intent_id, request.metadata)
    assert events[1]["data"]["object"]["id"] == charge.id
    assert await port.charge(charge.id) == charge


async def test_the_same_idempotency_key_opens_one_checkout(stripe: tuple[Stripe, Driver]) -> None:
    port, _ = stripe
    key = str(uuid.uuid4())
    request = checkout(idempotency_key=key)
    first = await port.create_checkout_session(request)
    assert (await port.create_checkout_session(request)).id == first.id
    with pytest.raises(PaymentProviderError):
        await port.create_checkout_session(checkout(unit=999, idempotency_key=key))
    assert (await port.create_checkout_session(checkout())).id != first.id


async def test_a_declined_card_leaves_the_checkout_open_with_no_paid_charge(
    stripe: tuple[Stripe, Driver],
) -> None:
    port, driver = stripe
    opened = await port.create_checkout_session(checkout())
    assert types(await driver.pay(opened.id, DECLINED)) == [
        "charge.failed",
        "payment_intent.payment_failed",
    ]
    still = await port.checkout_session(opened.id)
    assert (still.status, still.payment_status, still.customer_id) == ("open", "unpaid", None)
    assert still.payment_intent_id is not None
    failed = await port.charge_of_payment_intent(still.payment_intent_id)
    assert failed is not None
    assert (failed.status, failed.paid, failed.fee, failed.net) == ("failed", False, 0, 0)

    # Another card pays the same checkout, through the same intent.
    assert types(await driver.pay(opened.id))[-1] == "checkout.session.completed"
    paid = await port.checkout_session(opened.id)
    assert paid.payment_intent_id == still.payment_intent_id
    charge = await port.charge_of_payment_intent(still.payment_intent_id)
    assert charge is not None and charge.paid and charge.id != failed.id


async def test_a_subscription_is_paid_renewed_then_falls_past_due_on_a_declined_renewal(
    stripe: tuple[Stripe, Driver],
) -> None:
    port, driver = stripe
    sub_id, events = await subscribed(port, driver)
    assert types(events) == [
        "customer.subscription.created",
        *PAID_INVOICE,
        "checkout.session.completed",
    ]
    sub = await port.subscription(sub_id)
    assert (sub.status, sub.current_period_end, sub.cancel_at_period_end) == (
        "active",
        FEB_1,
        False,
    )
    assert sub.latest_invoice_paid and sub.metadata["order_id"]
    assert sub.latest_invoice_id is not None
    first = await port.invoice(sub.latest_invoice_id)
    assert (first.status, first.billing_reason, first.amount_paid, first.currency) == (
        "paid",
        "subscription_create",
        999,
        "USD",
    )
    assert first.subscription_id == sub_id and first.charge_id is not None
    charge = await port.charge(first.charge_id)
    # 2.9 % of 9.99 is 0.28971, rounded to 0.29, plus 0.30.
    assert (charge.amount, charge.fee, charge.net) == (999, 59, 940)
    assert charge.payment_intent_id == first.payment_intent_id
    paid_event = next(e for e in events if e["type"] == "invoice.paid")["data"]["object"]
    assert invoice_view(paid_event).subscription_id == sub_id

    events = await driver.renew(sub_id, paid=True)
    assert types(events) == [*PAID_INVOICE, "customer.subscription.updated"]
    assert events[-1]["data"]["previous_attributes"]["current_period_end"] == FEB_1.timestamp()
    renewed = await port.subscription(sub_id)
    assert (renewed.status, renewed.current_period_end, renewed.latest_invoice_paid) == (
        "active",
        MAR_1,
        True,
    )
    assert renewed.latest_invoice_id is not None and renewed.latest_invoice_id != first.id
    cycle = await port.invoice(renewed.latest_invoice_id)
    assert (cycle.billing_reason, cycle.status, cycle.amount_paid) == (
        "subscription_cycle",
        "paid",
        999,
    )

    events = await driver.renew(sub_id, paid=False)
    assert types(events) == [
        "invoice.created",
        "invoice.finalized",
        "charge.failed",
        "payment_intent.payment_failed",
        "invoice.payment_failed",
        "customer.subscription.updated",
    ]
    assert events[-1]["data"]["object"]["status"] == "past_due"
    assert events[-1]["data"]["previous_attributes"]["status"] == "active"
    late = await port.subscription(sub_id)
    assert (late.status, late.current_period_end, late.latest_invoice_paid) == (
        "past_due",
        APR_1,
        False,
    )
    assert late.latest_invoice_id is not None
    unpaid = await port.invoice(late.latest_invoice_id)
    assert (unpaid.status, unpaid.amount_paid) == ("open", 0)


async def test_a_subscription_canceled_at_period_end_ends_there(
    stripe: tuple[Stripe, Driver],
) -> None:
    port, driver = stripe
    sub_id, _ = await subscribed(port, driver)
    ending = await port.cancel_subscription_at_period_end(sub_id)
    assert (ending.status, ending.cancel_at_period_end, ending.current_period_end) == (
        "active",
        True,
        FEB_1,
    )
    assert types(await driver.events()) == ["customer.subscription.updated"]
    await port.cancel_subscription_at_period_end(sub_id)
    assert await driver.events() == []  # already set: nothing changed, nothing sent

    assert types(await driver.renew(sub_id, paid=True)) == ["customer.subscription.deleted"]
    ended = await port.subscription(sub_id)
    assert (ended.status, ended.latest_invoice_id) == ("canceled", ending.latest_invoice_id)
    with pytest.raises(PaymentProviderError):
        await port.cancel_subscription_at_period_end(sub_id)


async def test_refunds_return_a_charge_in_parts_once_per_key_and_never_more(
    stripe: tuple[Stripe, Driver],
) -> None:
    port, driver = stripe
    intent = await paid_intent(port, driver, 2000)
    charge = await port.charge_of_payment_intent(intent)
    assert charge is not None and charge.amount == 4000
    await driver.events()

    with pytest.raises(ValidationFailed):
        await port.refund(
            payment_intent_id=intent, amount=100, idempotency_key="k", reason="changed_mind"
        )
    key = str(uuid.uuid4())
    part = await port.refund(
        payment_intent_id=intent, amount=1000, idempotency_key=key, reason="requested_by_customer"
    )
    assert (part.status, part.amount, part.currency) == ("succeeded", 1000, "USD")
    assert (part.charge_id, part.payment_intent_id) == (charge.id, intent)
    again = await port.refund(
        payment_intent_id=intent, amount=1000, idempotency_key=key, reason="requested_by_customer"
    )
    assert again == part
    assert types(await driver.events()) == ["charge.refunded", "refund.created"]
    assert (await port.charge(charge.id)).amount_refunded == 1000

    with pytest.raises(PaymentProviderError) as too_much:
        await port.refund(
            payment_intent_id=intent,
            amount=3001,
            idempotency_key=str(uuid.uuid4()),
            reason="duplicate",
        )
    assert too_much.value.details["stripeCode"] == "amount_too_large"
    rest = await port.refund(
        payment_intent_id=intent, amount=None, idempotency_key=str(uuid.uuid4()), reason="duplicate"
    )
    assert rest.amount == 3000
    after = await port.charge(charge.id)
    assert (after.amount, after.amount_refunded, after.fee) == (4000, 4000, charge.fee)
    with pytest.raises(PaymentProviderError) as spent:
        await port.refund(
            payment_intent_id=intent,
            amount=None,
            idempotency_key=str(uuid.uuid4()),
            reason="duplicate",
        )
    assert spent.value.details["stripeCode"] == "charge_already_refunded"


async def test_an_expired_checkout_can_no_longer_be_paid(stripe: tuple[Stripe, Driver]) -> None:
    port, driver = stripe
    opened = await port.create_checkout_session(checkout())
    await driver.events()
    expired = await port.expire_checkout_session(opened.id)
    assert (expired.status, expired.payment_status, expired.url) == ("expired", "unpaid", None)
    assert types(await driver.events()) == ["checkout.session.expired"]
    assert await driver.pay(opened.id) == []
    assert (await port.checkout_session(opened.id)).status == "expired"
    with pytest.raises(PaymentProviderError):
        await port.expire_checkout_session(opened.id)


async def test_the_portal_gives_a_customer_a_session_url(stripe: tuple[Stripe, Driver]) -> None:
    port, driver = stripe
    customer = await driver.customer()
    url = await port.portal_session(customer_id=customer, return_url="https://audifi.test/me")
    assert url.startswith(("http://", "https://"))
    with pytest.raises(PaymentProviderError) as unknown:
        await port.portal_session(customer_id="cus_missing", return_url="https://audifi.test/me")
    assert unknown.value.details["stripeCode"] == "resource_missing"


@pytest.mark.parametrize(
    ("ok", "after"),
    [(True, (True, True, True, None)), (False, (True, False, False, "rejected.other"))],
    ids=["completed", "rejected"],
)
async def test_connect_onboarding_completes_or_rejects_an_account(
    stripe: tuple[Stripe, Driver], ok: bool, after: tuple[bool, bool, bool, str | None]
) -> None:
    port, driver = stripe
    account_id = str(uuid.uuid4())
    acct = await port.create_connect_account(email="artist@example.com", account_id=account_id)
    fresh = await port.connect_account(acct)
    assert (fresh.id, fresh.details_submitted, fresh.charges_enabled, fresh.payouts_enabled) == (
        acct,
        False,
        False,
        False,
    )
    assert fresh.metadata == {"account_id": account_id}
    link = await port.onboarding_link(
        connect_account_id=acct,
        refresh_url="https://audifi.test/connect/again",
        return_url="https://audifi.test/connect/done",
    )
    assert link.startswith(("http://", "https://"))

    events = await driver.complete_onboarding(acct, ok=ok)
    assert types(events) == ["account.updated"]
    assert events[0]["data"]["object"]["id"] == acct
    assert events[0]["data"]["previous_attributes"]["details_submitted"] is False
    done = await port.connect_account(acct)
    assert (
        done.details_submitted,
        done.charges_enabled,
        done.payouts_enabled,
        done.disabled_reason,
    ) == after


async def test_what_stripe_refuses_is_a_payment_provider_error(
    stripe: tuple[Stripe, Driver],
) -> None:
    port, _ = stripe
    with pytest.raises(PaymentProviderError) as unknown:
        await port.checkout_session("cs_test_missing")
    assert unknown.value.status_code == 502
    assert unknown.value.details["stripeCode"] == "resource_missing"
    assert "cs_test_missing" in unknown.value.message
    for call in (
        lambda: port.expire_checkout_session("cs_test_missing"),
        lambda: port.charge_of_payment_intent("pi_missing"),
        lambda: port.charge("ch_missing"),
        lambda: port.subscription("sub_missing"),
        lambda: port.invoice("in_missing"),
        lambda: port.connect_account("acct_missing"),
        lambda: port.onboarding_link(
            connect_account_id="acct_missing",
            refresh_url="https://a.test",
            return_url="https://a.test",
        ),
    ):
        with pytest.raises(PaymentProviderError) as missing:
            await call()
        assert missing.value.details["stripeCode"] == "resource_missing"
    with pytest.raises(PaymentProviderError) as recurring:
        await port.create_checkout_session(checkout("payment", interval="month"))
    assert "recurring" in recurring.value.message
    with pytest.raises(PaymentProviderError) as both:
        await port.create_checkout_session(replace(checkout(), customer_id="cus_someone"))
    assert "customer, customer_email" in both.value.message


async def test_a_refused_key_is_a_provider_error_that_does_not_show_the_key(
    local_stripe: str,
) -> None:
    key = "rk_live_not_a_secret_key_1234"
    sdk = StripeSdk(key, api_base=local_stripe)
    try:
        with pytest.raises(PaymentProviderError) as refused:
            await sdk.checkout_session("cs_test_anything")
    finally:
        await sdk.aclose()
    assert refused.value.details["stripeStatus"] == 401
    assert key not in refused.value.message and key not in json.dumps(refused.value.details)


async def test_an_unreachable_stripe_is_a_provider_error() -> None:
    sdk = StripeSdk(KEY, api_base="http://127.0.0.1:1")  # nothing listens on port 1
    try:
        with pytest.raises(PaymentProviderError) as unreachable:
            await sdk.checkout_session("cs_test_anything")
    finally:
        await sdk.aclose()
    assert unreachable.value.status_code == 502 and "communicating" in unreachable.value.message


SECRET = "whsec_contract_secret"
EVENT = {
    "id": "evt_1",
    "object": "event",
    "type": "checkout.session.completed",
    "created": 1767225600,
    "data": {"object": {"id": "cs_test_1", "object": "checkout.session", "metadata": {"k": "v"}}},
}


def signed(event: dict[str, Any], *, secret: str = SECRET, age: int = 0) -> tuple[bytes, str]:
    """A delivery as the local Stripe signs it (its own signer, not the SDK's)."""
    payload = json.dumps(event, indent=2)
    return payload.encode(), signature_header(payload, secret, int(time.time()) - age)


@pytest.mark.parametrize("age", [0, 295], ids=["fresh", "within-tolerance"])
def test_a_signed_webhook_gives_back_the_event_as_a_plain_dict(age: int) -> None:
    payload, header = signed(EVENT, age=age)
    event = verify_webhook(payload, header, SECRET)
    assert event == EVENT
    assert type(event) is dict and type(event["data"]["object"]) is dict


@pytest.mark.parametrize(
    ("delivery", "says"),
    [
        (lambda: signed(EVENT, secret="whsec_someone_else"), "mismatch"),
        (lambda: (b'{"id": "evt_2"}', signed(EVENT)[1]), "mismatch"),
        (lambda: (signed(EVENT)[0], ""), "mismatch"),
        (lambda: signed(EVENT, age=301), "stale"),
    ],
    ids=["other-secret", "changed-body", "no-signature", "301-s-old"],
)
def test_a_bad_or_stale_signature_is_refused(delivery: Any, says: str) -> None:
    payload, header = delivery()
    with pytest.raises(ValidationFailed) as refused:
        verify_webhook(payload, header, SECRET)
    assert (refused.value.code, refused.value.status_code) == ("INVALID_SIGNATURE", 400)
    assert says in refused.value.message and SECRET not in refused.value.message
