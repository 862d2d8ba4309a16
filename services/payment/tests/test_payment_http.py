"""Payment served for real: PostgreSQL, the local Stripe as its own process sending signed
webhooks to the service, tokens verified against a real JWKS. What a client sees."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.settings import Settings
from audifi_kit.testing import TokenSigner, drop_databases, eventually, free_port, served
from audifi_payment.app import create_app
from audifi_payment.config import PaymentSettings
from audifi_payment.domain.order import Product
from audifi_payment.ledger_verify import verify_application
from audifi_stripe_local.testing import StripeLocal
from audifi_stripe_local.webhooks import signature_header
from litestar import Litestar, get

SECRET = "whsec_test_payment_http"
ADMIN, ARTIST, BAND, FAN = (str(uuid.uuid4()) for _ in range(4))


@dataclass
class Payment:
    url: str
    stripe: str
    app: Litestar
    signer: TokenSigner

    def headers(self, sub: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.signer.token(sub, roles=roles or ('fan',))}"}

    def store(self) -> Any:
        return self.app.state["runtime"].store


@pytest.fixture
async def payment(postgres_url: str, tmp_path: Path) -> AsyncIterator[Payment]:
    signer = TokenSigner()

    @get("/.well-known/jwks.json", sync_to_thread=False)
    def jwks() -> dict[str, Any]:
        return signer.jwks()

    port = free_port()
    prefix = f"audifi_p{uuid.uuid4().hex[:8]}_"
    async with served(Litestar([jwks])) as auth:
        with StripeLocal([f"http://127.0.0.1:{port}/stripe/webhook"], SECRET) as stripe_url:
            settings = Settings(
                database_url=postgres_url,
                db_prefix=prefix,
                var_dir=tmp_path,
                poll_interval=0.2,
                jwks_url=f"{auth}/.well-known/jwks.json",
                pool_size=3,
            )
            config = PaymentSettings(
                stripe_api_base=stripe_url,
                stripe_webhook_secret=SECRET,
                public_url=auth,
                order_sweep_seconds=0.2,
            )
            app = create_app(settings, InProcessBus(), config=config)
            try:
                async with served(app, port=port) as url:
                    yield Payment(url, stripe_url, app, signer)
            finally:
                await drop_databases(postgres_url, prefix)


async def _pay(session_url: str, card: str = "4242 4242 4242 4242") -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(session_url, data={"card_number": card})


async def test_a_fan_subscribes_pays_and_the_ledger_shows_every_cent(payment: Payment) -> None:
    async with httpx.AsyncClient(base_url=payment.url) as c:
        artist = payment.headers(ARTIST, "artist")
        tier = await c.post(
            "/tiers",
            json={"name": "Backstage", "priceCents": 1000, "currency": "usd", "interval": "month"},
            headers=artist,
        )
        assert tier.status_code == 201, tier.text
        rule = await c.post(
            "/split-rules",
            json={
                "name": "band",
                "isDefault": True,
                "recipients": [
                    {"recipientId": ARTIST, "basisPoints": 7000},
                    {"recipientId": BAND, "basisPoints": 3000},
                ],
            },
            headers=artist,
        )
        assert rule.status_code == 201, rule.text

        fan = payment.headers(FAN)
        checkout = await c.post("/subscriptions", json={"tierId": tier.json()["id"]}, headers=fan)
        assert checkout.status_code == 201, checkout.text
        assert (await _pay(checkout.json()["url"])).status_code == 303

        async def active() -> bool:
            mine = (await c.get("/subscriptions", headers=fan)).json()["items"]
            return [s["status"] for s in mine] == ["active"]

        await eventually(active, within=20)

        async def split() -> list[dict]:
            page = (await c.get("/ledger/entries", headers=artist)).json()
            return page["items"]

        [entry] = await eventually(split, within=20)
        assert (entry["type"], entry["amountCents"], entry["eventSource"]) == (
            "credit",
            624,
            "split",
        )
        assert entry["currency"] == "USD" and entry["referenceId"].startswith("ch_")
        balances = (await c.get("/balances/me", headers=payment.headers(BAND))).json()
        assert balances["balances"] == [
            {"currency": "USD", "availableCents": 267, "pendingCents": 0}
        ]

        admin = payment.headers(ADMIN, "admin")
        every = (await c.get("/ledger/entries", headers=admin)).json()["items"]
        legs = {(e["account"], e["type"], e["eventSource"]): e["amountCents"] for e in every}
        assert legs == {
            ("stripe:clearing", "debit", "stripe_charge"): 1000,
            ("stripe:fees", "credit", "stripe_fee"): 59,
            ("platform:fees", "credit", "platform_fee"): 50,
            (f"user:{ARTIST}:available", "credit", "split"): 624,
            (f"user:{BAND}:available", "credit", "split"): 267,
        }
        assert len({e["transactionId"] for e in every}) == 1
        # Another user's ledger is an admin's to read, not the artist's.
        other = await c.get("/ledger/entries", params={"userId": BAND}, headers=artist)
        assert other.status_code == 403
        assert other.json()["error"]["code"] == "FORBIDDEN"
    report = await asyncio.to_thread(verify_application, payment.store().app)
    assert report.ok and report.transactions == 1


def _signed(payload: bytes, *, secret: str = SECRET, age: int = 0) -> dict[str, str]:
    header = signature_header(payload.decode(), secret, int(time.time()) - age)
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


async def test_a_webhook_with_a_bad_or_stale_signature_is_refused_and_records_nothing(
    payment: Payment,
) -> None:
    event = json.dumps(
        {"id": "evt_forged", "type": "invoice.paid", "data": {"object": {"id": "in_x"}}}
    ).encode()
    async with httpx.AsyncClient(base_url=payment.url) as c:
        forged = await c.post("/stripe/webhook", content=event, headers=_signed(event, secret="x"))
        stale = await c.post("/payments/webhook", content=event, headers=_signed(event, age=301))
        missing = await c.post("/webhooks/stripe", content=event)
    for answer in (forged, stale, missing):
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "INVALID_SIGNATURE"
    assert "stale" in stale.json()["error"]["message"]
    app = payment.store().app
    assert not await asyncio.to_thread(app.stripe_event_handled, "evt_forged")


async def test_bad_input_gets_the_envelope_and_changes_nothing(payment: Payment) -> None:
    artist, fan = payment.headers(ARTIST, "artist"), payment.headers(FAN)
    admin = payment.headers(ADMIN, "admin")
    async with httpx.AsyncClient(base_url=payment.url) as c:
        unknown = await c.post("/subscriptions", json={"tierId": str(uuid.uuid4())}, headers=fan)
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "TIER_NOT_FOUND")

        for price in (-5, 9.99, 100.0, "100", True, None):
            bad = await c.post(
                "/tiers",
                json={"name": "x", "priceCents": price, "currency": "USD", "interval": "month"},
                headers=artist,
            )
            assert bad.status_code == 400, (price, bad.text)
            assert bad.json()["error"]["code"] == "VALIDATION_ERROR"

        for name in ("Gold\x00", "two\nlines", "x" * 61, ""):
            bad = await c.post(
                "/tiers",
                json={"name": name, "priceCents": 100, "currency": "USD", "interval": "month"},
                headers=artist,
            )
            assert bad.status_code == 400, (name, bad.text)
            assert bad.json()["error"]["details"]["fields"][0]["field"] == "name"
        assert (await c.get("/tiers", headers=artist)).json()["items"] == []

        uneven = await c.post(
            "/split-rules",
            json={
                "name": "uneven",
                "recipients": [
                    {"recipientId": ARTIST, "basisPoints": 7000},
                    {"recipientId": BAND, "basisPoints": 2000},
                ],
            },
            headers=artist,
        )
        assert uneven.status_code == 400
        assert "recipients" in str(uneven.json()["error"]["details"])

        for url in ("javascript:alert(1)", "https://shop.example/\x00", "https://a b"):
            bad = await c.post(
                "/payments/checkout",
                json={"tierId": str(uuid.uuid4()), "successUrl": url},
                headers=fan,
            )
            assert bad.status_code == 400, (url, bad.text)
            assert bad.json()["error"]["details"]["fields"][0]["field"] == "successUrl"

        theirs = await c.get(f"/subscriptions/{ARTIST}", headers=fan)
        assert (theirs.status_code, theirs.json()["error"]["code"]) == (403, "FORBIDDEN")

        mixed = await c.post(
            "/ledger/entries",
            json={
                "currency": "USD",
                "reason": "test",
                "entries": [
                    {"account": "platform:adjustments", "type": "debit", "amountCents": 100},
                    {
                        "account": f"user:{FAN}:available",
                        "type": "credit",
                        "amountCents": 100,
                        "currency": "EUR",
                    },
                ],
            },
            headers=admin,
        )
        assert mixed.status_code == 400, mixed.text
        assert mixed.json()["error"]["details"]["fields"][0]["field"] == "entries"
        unbalanced = await c.post(
            "/ledger/entries",
            json={
                "currency": "USD",
                "reason": "test",
                "entries": [
                    {"account": "platform:adjustments", "type": "debit", "amountCents": 100},
                    {"account": f"user:{FAN}:available", "type": "credit", "amountCents": 99},
                ],
            },
            headers=admin,
        )
        assert unbalanced.status_code == 400
        not_admin = await c.post(
            "/ledger/entries",
            json={
                "currency": "USD",
                "reason": "mine",
                "entries": [
                    {"account": "platform:adjustments", "type": "debit", "amountCents": 1},
                    {"account": f"user:{FAN}:available", "type": "credit", "amountCents": 1},
                ],
            },
            headers=fan,
        )
        assert not_admin.status_code == 403
        assert (await c.get("/tiers")).status_code == 401  # a token is needed to read tiers
        entries = (await c.get("/ledger/entries", headers=admin)).json()["items"]
        assert entries == []


async def test_fifty_concurrent_debits_never_take_a_balance_below_zero(payment: Payment) -> None:
    admin = payment.headers(ADMIN, "admin")

    def adjustment(direction: str, amount: int) -> dict[str, Any]:
        other = "credit" if direction == "debit" else "debit"
        return {
            "currency": "USD",
            "reason": "concurrency",
            "entries": [
                {"account": f"user:{FAN}:available", "type": direction, "amountCents": amount},
                {"account": "platform:adjustments", "type": other, "amountCents": amount},
            ],
        }

    async with httpx.AsyncClient(base_url=payment.url, timeout=60) as c:
        credited = await c.post("/ledger/entries", json=adjustment("credit", 221), headers=admin)
        assert credited.status_code == 201, credited.text
        answers = await asyncio.gather(
            *(
                c.post("/ledger/entries", json=adjustment("debit", 7), headers=admin)
                for _ in range(50)
            )
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 31  # 221 // 7
    refused = [a.json()["error"]["code"] for a in answers if a.status_code != 201]
    assert set(refused) == {"INSUFFICIENT_FUNDS"}
    app = payment.store().app
    balance = await asyncio.to_thread(app.guarded_balance, f"user:{FAN}:available", "USD")
    assert balance.available == 4
    assert (await asyncio.to_thread(verify_application, app)).ok


async def test_an_order_nobody_pays_in_time_is_expired_by_the_sweeper(payment: Payment) -> None:
    store = payment.store()
    now = datetime.now(UTC)
    order = await store.call(
        store.app.open_order,
        uuid.uuid4(),
        Product("nft", "ipo_shares", str(uuid.uuid4())),
        title="1 share of “Blue”",
        quantity=1,
        unit_amount=500,
        currency="USD",
        buyer_id=FAN,
        seller_id=ARTIST,
        expires_at=now + timedelta(seconds=1),
        at=now,
    )
    async with httpx.AsyncClient(base_url=payment.url) as c:
        first = await c.post(
            "/payments/checkout", json={"orderId": str(order.id)}, headers=payment.headers(FAN)
        )
        assert first.status_code == 201, first.text

        async def expired() -> bool:
            shown = await c.get(f"/orders/{order.id}", headers=payment.headers(FAN))
            return shown.status_code == 200 and shown.json()["status"] == "expired"

        await eventually(expired, within=20, what="the order expired by the sweeper")
        late = await _pay(first.json()["url"])  # its checkout was expired at Stripe too
        assert late.status_code != 303
