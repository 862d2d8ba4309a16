"""Payment's published language: sellers' order requests are refused unless they can be charged
exactly, and every payment event reads back as it was published, documented in AsyncAPI."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgspec
import pytest
from audifi_events import UndecodableEvent, encode, registry
from audifi_events.asyncapi import asyncapi_document
from audifi_events.payment import (
    LedgerLeg,
    LedgerTransactionRecorded,
    OrderExpired,
    OrderFailed,
    OrderPaid,
    OrderRefunded,
    OrderRequest,
    Product,
    SubscriptionCanceled,
    SubscriptionPastDue,
    SubscriptionRenewed,
    SubscriptionStarted,
    TierArchived,
    TierDefined,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SHARES = Product(service="nft", kind="ipo_shares", reference="master-42")
FACTS = {
    "subscription_id": "s-1",
    "fan_id": "f-1",
    "artist_id": "a-1",
    "tier_id": "t-1",
    "price_cents": 500,
    "currency": "USD",
    "interval": "month",
    "current_period_end": NOW,
}
REQUEST = {
    "orderId": "6a0e9b8e-0b4e-4c55-9d6b-6f0c1f3b9a10",
    "product": {"service": "nft", "kind": "ipo_shares", "reference": "master-42"},
    "title": "3 shares of Blue",
    "quantity": 3,
    "unitAmountCents": 1250,
    "currency": "USD",
    "buyerId": "b-1",
    "sellerId": "s-1",
    "expiresAt": "2026-05-01T12:30:00+00:00",
}

EVENTS = [
    OrderPaid(
        order_id="o-1",
        product=SHARES,
        buyer_id="b-1",
        seller_id="s-1",
        quantity=3,
        amount_cents=3750,
        currency="USD",
        payment_intent_id="pi_1",
        paid_at=NOW,
        ledger_transaction_id="t-1",
    ),
    OrderExpired(order_id="o-1", product=SHARES, buyer_id="b-1", seller_id="s-1", expired_at=NOW),
    OrderFailed(
        order_id="o-1",
        product=SHARES,
        buyer_id="b-1",
        seller_id="s-1",
        reason="checkout refused",
        failed_at=NOW,
    ),
    OrderRefunded(
        order_id="o-1",
        product=SHARES,
        buyer_id="b-1",
        payment_intent_id="pi_2",
        refund_id="re_1",
        amount_cents=3750,
        currency="USD",
        reason="expired",
        refunded_at=NOW,
        ledger_transaction_id=None,
    ),
    TierDefined(
        tier_id="t-1",
        artist_id="a-1",
        name="Backstage",
        price_cents=500,
        currency="USD",
        interval="month",
        defined_at=NOW,
    ),
    TierArchived(tier_id="t-1", artist_id="a-1", archived_at=NOW),
    SubscriptionStarted(**FACTS, started_at=NOW),
    SubscriptionRenewed(**FACTS, renewed_at=NOW),
    SubscriptionPastDue(**FACTS, fell_past_due_at=NOW),
    SubscriptionCanceled(**FACTS, canceled_at=NOW),
    LedgerTransactionRecorded(
        txn_id="t-1",
        currency="USD",
        legs=[
            LedgerLeg(
                account="stripe:clearing",
                direction="debit",
                amount_cents=3750,
                event_source="stripe_charge",
            ),
            LedgerLeg(
                account="user:a-1:available",
                direction="credit",
                amount_cents=3750,
                event_source="split",
            ),
        ],
        event_source="stripe_charge",
        reference_id="ch_1",
        reverses=None,
        created_at=NOW,
    ),
]


def test_an_order_request_reads_as_the_seller_published_it() -> None:
    request = registry.decode("payment.order.requested", 1, json.dumps(REQUEST).encode())

    assert request == OrderRequest(
        order_id=REQUEST["orderId"],
        product=SHARES,
        title="3 shares of Blue",
        quantity=3,
        unit_amount_cents=1250,
        currency="USD",
        buyer_id="b-1",
        seller_id="s-1",
        expires_at=datetime(2026, 5, 1, 12, 30, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    "broken",
    [
        {"unitAmountCents": 12.5},
        {"unitAmountCents": -1250},
        {"unitAmountCents": 0},
        {"unitAmountCents": 2**53},
        {"quantity": 0},
        {"currency": "usd"},
        {"currency": "USD\n"},
        {"product": {"service": "vstudio", "kind": "votes", "reference": "x"}},
        {"product": {"service": "nft", "kind": "IPO shares", "reference": "x"}},
        {"product": {"service": "nft", "kind": "ipo_shares", "reference": ""}},
        {"title": ""},
    ],
)
def test_an_order_request_that_cannot_be_charged_exactly_is_undecodable(
    broken: dict[str, object],
) -> None:
    body = json.dumps(REQUEST | broken).encode()

    with pytest.raises(UndecodableEvent, match=r"payment\.order\.requested"):
        registry.decode("payment.order.requested", 1, body)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_every_payment_event_reads_back_as_published_in_camel_case(event: object) -> None:
    event_type = registry.type_of(event)  # type: ignore[arg-type]
    body = encode(event)  # type: ignore[arg-type]

    assert registry.decode(event_type.routing_key, event_type.schema_version, body) == event
    assert all("_" not in key for key in json.loads(body))
    assert event_type.routing_key.startswith("payment.")


def test_the_routing_keys_payment_publishes() -> None:
    keys = {t.routing_key for t in registry if t.producer == "payment"}

    assert keys == {
        "payment.order.requested",
        "payment.order.paid",
        "payment.order.expired",
        "payment.order.failed",
        "payment.order.refunded",
        "payment.tier.defined",
        "payment.tier.archived",
        "payment.subscription.started",
        "payment.subscription.renewed",
        "payment.subscription.past_due",
        "payment.subscription.canceled",
        "payment.ledger.transaction_recorded",
    }


def test_money_is_integer_cents_in_the_asyncapi_document() -> None:
    schemas = asyncapi_document(registry)["components"]["schemas"]

    assert schemas["OrderPaid"]["properties"]["amountCents"] == {"type": "integer"}
    assert schemas["OrderRequest"]["properties"]["unitAmountCents"]["type"] == "integer"
    assert schemas["LedgerLeg"]["properties"]["amountCents"] == {"type": "integer"}
    contract = asyncapi_document(registry)["components"]["messages"]["payment.order.paid.v1"]
    assert "fulfils" in contract["summary"]


def test_a_paid_order_names_what_was_sold_and_whose_split_applies() -> None:
    body = json.loads(encode(EVENTS[0]))

    assert body["product"] == {"service": "nft", "kind": "ipo_shares", "reference": "master-42"}
    assert (body["sellerId"], body["amountCents"], body["currency"]) == ("s-1", 3750, "USD")
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(json.dumps(body | {"amountCents": 37.5}).encode(), type=OrderPaid)


def test_an_order_request_is_documented_as_sent_by_the_sellers_and_taken_by_payment() -> None:
    document = asyncapi_document(registry)
    operations = document["operations"]
    key = "payment.order.requested"
    assert operations[f"nft.send.{key}"]["action"] == "send"
    assert operations[f"coin.send.{key}"]["action"] == "send"
    assert operations[f"payment.receive.{key}"]["action"] == "receive"
    assert f"payment.send.{key}" not in operations  # payment never publishes a request
    assert "sent to the payment service by nft, coin" in document["channels"][key]["description"]
    assert operations["payment.send.payment.order.paid"]["action"] == "send"


def test_a_tier_is_documented_with_how_nft_ranks_it() -> None:
    document = asyncapi_document(registry)
    messages = document["components"]["messages"]
    defined = messages["payment.tier.defined.v1"]
    assert "price per year" in defined["description"]
    assert "within one artist and currency" in " ".join(defined["description"].split())
    schema = document["components"]["schemas"]["TierDefined"]
    assert schema["properties"]["priceCents"] == {"type": "integer"}
    assert schema["properties"]["interval"]["enum"] == ["month", "year"]
    assert set(schema["required"]) == {
        "tierId",
        "artistId",
        "name",
        "priceCents",
        "currency",
        "interval",
        "definedAt",
    }
    archived = " ".join(messages["payment.tier.archived.v1"]["summary"].split())
    assert "Existing subscriptions to it go on and keep their access" in archived
    assert document["operations"]["payment.send.payment.tier.archived"]["action"] == "send"

    body = json.loads(encode(EVENTS[4]))
    with pytest.raises(UndecodableEvent, match=r"payment\.tier\.defined"):
        registry.decode("payment.tier.defined", 1, json.dumps(body | {"interval": "week"}).encode())
