"""Money end to end, through the gateway only: the local Stripe's pay page, its signed webhooks
arriving at the gateway's webhook routes, the ledger they leave, `audifi ledger verify`; and
what a subscription opens in an artist's locker (nft) and closes when it ends."""

from __future__ import annotations

import json
import struct
import time
import uuid
import zlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from audifi_auth.adapters.signing_keys import SigningKeys
from audifi_kit.testing import eventually_sync
from audifi_stripe_local.webhooks import signature_header
from platform_processes import Platform, token

ARTIST, BAND, FAN, ADMIN = (str(uuid.uuid4()) for _ in range(4))

# The late-payment story needs a payment that arrives after its order's expiry and before
# payment's sweeper expires the order and its checkout (in production: a payment in flight at
# the expiry). The sweeper itself is tested served (test_payment_http.py): here it waits.
PLATFORM_ENV = {"ORDER_SWEEP_SECONDS": "3600"}


@pytest.fixture(scope="module")
def as_(signing_keys: SigningKeys):
    def headers(user: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(signing_keys, sub=user, roles=list(roles))}"}

    return headers


def _entries(platform: Platform, headers: dict[str, str], **params: str) -> list[dict]:
    answer = httpx.get(f"{platform.gateway}/ledger/entries", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def _deliveries(platform: Platform, **query: str) -> list[dict]:
    return httpx.get(f"{platform.stripe}/_local/deliveries", params=query).json()["data"]


def test_an_artist_sells_a_subscription_and_the_ledger_shows_every_cent(
    platform: Platform, as_
) -> None:
    gw, artist, fan = platform.gateway, as_(ARTIST, "artist"), as_(FAN, "fan")
    admin = as_(ADMIN, "admin")
    tier = httpx.post(
        f"{gw}/tiers",
        json={"name": "Backstage", "priceCents": 1000, "currency": "USD", "interval": "month"},
        headers=artist,
    )
    assert tier.status_code == 201, tier.text
    rule = httpx.post(
        f"{gw}/split-rules",
        json={
            "name": "70/30 with the band",
            "isDefault": True,
            "recipients": [
                {"recipientId": ARTIST, "basisPoints": 7000},
                {"recipientId": BAND, "basisPoints": 3000},
            ],
        },
        headers=artist,
    )
    assert rule.status_code == 201, rule.text

    # A declined card first: nothing is booked, the checkout stays open.
    checkout = httpx.post(f"{gw}/subscriptions", json={"tierId": tier.json()["id"]}, headers=fan)
    assert checkout.status_code == 201, checkout.text
    url = checkout.json()["url"]
    declined = httpx.post(url, data={"card_number": "4000 0000 0000 0002"})
    assert declined.status_code == 402 and "declined" in declined.text
    eventually_sync(lambda: _deliveries(platform, type="payment_intent.payment_failed"), within=30)
    assert _entries(platform, admin) == []

    # Then 4242: the webhooks reach the gateway, the subscription starts, the money is booked.
    assert httpx.post(url, data={"card_number": "4242 4242 4242 4242"}).status_code == 303

    def active() -> bool:
        mine = httpx.get(f"{gw}/subscriptions", headers=fan).json()["items"]
        return [s["status"] for s in mine] == ["active"]

    eventually_sync(active, within=30, what="the subscription active")

    def booked() -> list[dict] | None:
        entries = _entries(platform, admin)
        return entries if len(entries) == 5 else None

    every = eventually_sync(booked, within=30, what="the charge booked")
    legs = {(e["account"], e["type"], e["eventSource"]): e["amountCents"] for e in every}
    assert legs == {
        ("stripe:clearing", "debit", "stripe_charge"): 1000,  # gross
        ("stripe:fees", "credit", "stripe_fee"): 59,  # Stripe's 2.9 % + 30
        ("platform:fees", "credit", "platform_fee"): 50,  # PLATFORM_FEE_BPS 500
        (f"user:{ARTIST}:available", "credit", "split"): 624,  # 70 % of 891, + the remainder
        (f"user:{BAND}:available", "credit", "split"): 267,  # 30 % of 891
    }
    [mine] = _entries(platform, as_(BAND, "fan"))
    assert (mine["amountCents"], mine["type"], mine["currency"]) == (267, "credit", "USD")
    balance = httpx.get(f"{gw}/balances/me", headers=as_(ARTIST, "artist")).json()
    assert balance["balances"] == [{"currency": "USD", "availableCents": 624, "pendingCents": 0}]
    assert "1 transactions balanced" in platform.verify_ledger()

    # Every delivery went through the gateway's webhook route and was taken (2xx).
    delivered = _deliveries(platform)
    assert delivered and all(d["status"] == 200 for d in delivered), delivered[-3:]


def _post_signed(platform: Platform, path: str, event: dict, *, secret=None, age=0):
    payload = json.dumps(event)
    secret = secret or platform.stripe_env["STRIPE_WEBHOOK_SECRET"]
    header = signature_header(payload, secret, int(time.time()) - age)
    return httpx.post(
        f"{platform.gateway}{path}",
        content=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


def test_the_webhook_suite_bad_signature_stale_replayed_and_out_of_order(
    platform: Platform, as_
) -> None:
    gw, admin = platform.gateway, as_(ADMIN, "admin")
    fan_id = str(uuid.uuid4())
    fan = as_(fan_id, "fan")
    tier = httpx.post(
        f"{gw}/tiers",
        json={"name": "Early", "priceCents": 500, "currency": "USD", "interval": "month"},
        headers=as_(ARTIST, "artist"),
    ).json()
    before = len(_entries(platform, admin))

    # invoice.paid before customer.subscription.created: webhooks held, then released so.
    assert httpx.post(f"{platform.stripe}/_local/webhooks/hold").status_code == 202
    checkout = httpx.post(f"{gw}/subscriptions", json={"tierId": tier["id"]}, headers=fan).json()
    paid = httpx.post(checkout["url"], data={"card_number": "4242424242424242"})
    assert paid.status_code == 303
    released = httpx.post(
        f"{platform.stripe}/_local/webhooks/release",
        json={"first": ["invoice.paid", "customer.subscription.created"]},
    ).json()["released"]

    def all_taken() -> bool:
        done = {d["event"] for d in _deliveries(platform) if d["status"] == 200}
        return set(released) <= done

    eventually_sync(all_taken, within=30, what="every released event taken")
    mine = httpx.get(f"{gw}/subscriptions", headers=fan).json()["items"]
    assert [s["status"] for s in mine] == ["active"]
    booked = eventually_sync(lambda: len(_entries(platform, admin)) == before + 5 or None)
    assert booked

    # The invoice.paid event five times more: 200 each time, nothing booked twice.
    [invoice_paid] = {
        d["event"] for d in _deliveries(platform, type="invoice.paid") if d["event"] in released
    }
    for _ in range(5):
        httpx.post(f"{platform.stripe}/_local/events/{invoice_paid}/resend")
    eventually_sync(
        lambda: (
            len([d for d in _deliveries(platform, event=invoice_paid) if d["status"] == 200]) == 6
        ),
        within=30,
    )
    assert len(_entries(platform, admin)) == before + 5

    # Forged and stale signatures: 400, nothing recorded; at each of the three paths.
    event = {"id": "evt_forged", "type": "invoice.paid", "data": {"object": {"id": "in_forged"}}}
    for path in ("/payments/webhook", "/webhooks/stripe", "/stripe/webhook"):
        forged = _post_signed(platform, path, event, secret="whsec_not_the_secret")
        assert (forged.status_code, forged.json()["error"]["code"]) == (400, "INVALID_SIGNATURE")
        stale = _post_signed(platform, path, event, age=301)
        assert stale.status_code == 400 and "stale" in stale.json()["error"]["message"]
    assert len(_entries(platform, admin)) == before + 5
    platform.verify_ledger()


def test_a_payment_that_arrives_after_its_order_expired_is_refunded_and_booked_back(
    platform: Platform, as_
) -> None:
    """An order payment opens on an order another service asked for (`payment.order.requested`);
    it is published here as nft would publish it."""
    from audifi_events.payment import OrderRequest, Product

    order_id = str(uuid.uuid4())
    buyer = str(uuid.uuid4())
    request = OrderRequest(
        order_id=order_id,
        product=Product(service="nft", kind="ipo_shares", reference="master-e2e"),
        title="3 shares of Master E2E",
        quantity=3,
        unit_amount_cents=700,
        currency="USD",
        buyer_id=buyer,
        seller_id=ARTIST,
        expires_at=(expires_at := _in(seconds=15)),  # room for a loaded CI to open it
    )
    _publish(platform, "payment.order.requested", request)
    gw = platform.gateway

    def opened() -> httpx.Response | None:
        answer = httpx.get(f"{gw}/orders/{order_id}", headers=as_(buyer, "fan"))
        return answer if answer.status_code == 200 else None

    assert eventually_sync(opened, within=30).json()["status"] == "open"
    checkout = httpx.post(
        f"{gw}/payments/checkout", json={"orderId": order_id}, headers=as_(buyer, "fan")
    )
    assert checkout.status_code == 201, checkout.text
    # The subject is time: the order's own expiry passes (its checkout stays open at Stripe,
    # which keeps a session 30 minutes at least) before the buyer pays.
    # (Stripe stamps a charge in whole seconds: past the expiry by more than one.)
    time.sleep(max(0.0, (expires_at - _in(seconds=0)).total_seconds()) + 1.5)
    paid = httpx.post(checkout.json()["url"], data={"card_number": "4242424242424242"})
    assert paid.status_code == 303

    def refunded() -> dict | None:
        order = httpx.get(f"{gw}/orders/{order_id}", headers=as_(buyer, "fan")).json()
        return order if order["refundStatus"] == "refunded" else None

    order = eventually_sync(refunded, within=30, what="the late payment refunded")
    assert order["status"] == "expired"
    [late] = order["latePayments"]
    assert (late["amount"], late["reason"]) == (2100, "expired")
    assert late["refundId"].startswith("re_")
    platform.verify_ledger()


def _in(*, seconds: int):
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(seconds=seconds)


def _publish(platform: Platform, routing_key: str, event) -> None:
    import asyncio

    from audifi_events import encode
    from audifi_kit.bus.rabbitmq import RabbitBus
    from audifi_kit.messages import Message

    async def go() -> None:
        bus = RabbitBus(platform.env["AMQP_URL"])
        await bus.connect()
        try:
            await bus.publish(
                [
                    Message(
                        message_id=f"e2e-{uuid.uuid4()}",
                        routing_key=routing_key,
                        body=encode(event),
                    )
                ]
            )
        finally:
            await bus.close()

    asyncio.run(go())


# --- Bucket's locker: what a subscription opens, and closes when it ends -------------------


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x80\x00"))
        + chunk(b"IEND", b"")
    )


def test_a_subscription_opens_an_artists_locker_and_its_end_closes_it(
    platform: Platform, as_
) -> None:
    gw = platform.gateway
    singer = str(uuid.uuid4())
    artist, fan = as_(singer, "artist"), as_(str(uuid.uuid4()), "fan")
    profile = httpx.put(f"{gw}/artists/{singer}", json={"name": "Nova Lane"}, headers=artist)
    assert profile.status_code == 200, profile.text
    tier = httpx.post(
        f"{gw}/tiers",
        json={"name": "Inner circle", "priceCents": 800, "currency": "USD", "interval": "month"},
        headers=artist,
    ).json()

    def upload(title: str, unlock: datetime, tier_id: str | None = None) -> httpx.Response:
        form = {"type": "image", "title": title, "unlockDate": unlock.isoformat()}
        if tier_id:
            form["minTierId"] = tier_id
        return httpx.post(
            f"{gw}/artists/{singer}/content",
            data=form,
            files={"file": (f"{title}.png", _png(), "image/png")},
            headers=artist,
        )

    now = datetime.now(UTC)
    assert upload("sketch", now - timedelta(hours=1)).status_code == 201
    # The tier becomes known to nft through payment's event: the item needing it waits for it.
    eventually_sync(
        lambda: upload("studio diary", now, tier["id"]).status_code == 201 or None,
        within=30,
        every=0.5,
        what="the tier known to the locker",
    )
    assert upload("next single", now + timedelta(days=30)).status_code == 201

    def locker() -> dict[str, str]:
        page = httpx.get(f"{gw}/artists/{singer}/content", headers=fan)
        assert page.status_code == 200, page.text
        return {i["title"]: i["status"] for i in page.json()["items"]}

    # Not subscribed: the free item opens, the tiered one is locked, the future one hidden.
    assert locker() == {"sketch": "unlocked", "studio diary": "locked"}

    checkout = httpx.post(f"{gw}/subscriptions", json={"tierId": tier["id"]}, headers=fan)
    assert checkout.status_code == 201, checkout.text
    paid = httpx.post(checkout.json()["url"], data={"card_number": "4242 4242 4242 4242"})
    assert paid.status_code == 303
    opened = eventually_sync(
        lambda: ((v := locker())["studio diary"] == "unlocked" and v) or None,
        within=60,
        every=0.5,
        what="the locker opened by the subscription",
    )
    assert opened == {"sketch": "unlocked", "studio diary": "unlocked"}

    # Stripe ends the subscription (as after its last failed renewal): the locker closes.
    [subscription] = httpx.get(f"{gw}/subscriptions", headers=fan).json()["items"]
    ended = httpx.delete(
        f"{platform.stripe}/v1/subscriptions/{subscription['stripeSubscriptionId']}",
        headers={"Authorization": f"Bearer {platform.stripe_env['STRIPE_SECRET_KEY']}"},
    )
    assert ended.status_code == 200, ended.text
    eventually_sync(
        lambda: locker()["studio diary"] == "locked" or None,
        within=60,
        every=0.5,
        what="the locker closed by the subscription's end",
    )
