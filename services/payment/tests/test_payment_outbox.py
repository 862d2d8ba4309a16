"""What payment publishes, read off its log as the relay reads it: the integration events of a
paid order, a late payment's refund and a subscription's life, and nothing private."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from audifi_events import payment as published
from audifi_events import registry
from audifi_payment.bootstrap import InMemoryPayments, in_memory_payments
from audifi_payment.domain.order import Product
from audifi_payment.outbox import outbox

ARTIST, FAN = str(uuid4()), str(uuid4())


def _published(p: InMemoryPayments) -> list:
    """Every integration event of the log, encoded and decoded as the bus carries it."""
    out = []
    for n in p.app.recorder.select_notifications(start=1, limit=10_000):
        if not outbox.publishes(n.topic):
            continue
        event = outbox.to_integration_event(n.topic, p.app.mapper.to_domain_event(n))
        if event is not None:
            kind = registry.type_of(event)
            out.append(registry.decode(kind.routing_key, kind.schema_version, _encode(event)))
    return out


def _encode(event) -> bytes:
    from audifi_events import encode

    return encode(event)


async def _feed(p: InMemoryPayments, events: list[dict]) -> None:
    for e in events:
        await p.payments.handle_event(e)


async def test_a_paid_order_publishes_what_was_sold_to_whom_and_its_transaction() -> None:
    p = in_memory_payments()
    now = datetime.now(UTC)
    order = p.app.open_order(
        uuid4(),
        Product("coin", "lottery_tickets", "round-2026-12"),
        title="4 tickets",
        quantity=4,
        unit_amount=250,
        currency="USD",
        buyer_id=FAN,
        seller_id=ARTIST,
        expires_at=now + timedelta(hours=1),
        at=now,
    )
    session = await p.payments.checkout_order(FAN, order.id)
    await _feed(p, p.stripe.pay(session.id))

    events = _published(p)
    [paid] = [e for e in events if isinstance(e, published.OrderPaid)]
    assert (paid.order_id, paid.buyer_id, paid.seller_id) == (str(order.id), FAN, ARTIST)
    assert (paid.product.service, paid.product.kind, paid.product.reference) == (
        "coin",
        "lottery_tickets",
        "round-2026-12",
    )
    assert (paid.quantity, paid.amount_cents, paid.currency) == (4, 1000, "USD")
    [recorded] = [e for e in events if isinstance(e, published.LedgerTransactionRecorded)]
    assert recorded.txn_id == paid.ledger_transaction_id
    assert sum(leg.amount_cents for leg in recorded.legs if leg.direction == "debit") == 1000
    # Only public facts: no guard, no receipt, no Stripe link, no split rule.
    assert {type(e) for e in events} == {
        published.OrderPaid,
        published.LedgerTransactionRecorded,
    }


async def test_a_refunded_late_payment_and_an_expiry_are_published() -> None:
    p = in_memory_payments()
    now = datetime.now(UTC)
    order = p.app.open_order(
        uuid4(),
        Product("nft", "ipo_shares", "master-9"),
        title="1 share",
        quantity=1,
        unit_amount=1_500,
        currency="USD",
        buyer_id=FAN,
        seller_id=ARTIST,
        expires_at=now + timedelta(minutes=5),
        at=now,
    )
    session = await p.payments.checkout_order(FAN, order.id)
    await _feed(p, p.stripe.pay(session.id, at=now + timedelta(minutes=10)))

    events = _published(p)
    [expired] = [e for e in events if isinstance(e, published.OrderExpired)]
    [refunded] = [e for e in events if isinstance(e, published.OrderRefunded)]
    assert expired.order_id == refunded.order_id == str(order.id)
    assert (refunded.amount_cents, refunded.currency, refunded.reason) == (1500, "USD", "expired")
    assert refunded.refund_id.startswith("re_")
    assert not [e for e in events if isinstance(e, published.OrderPaid)]


async def test_a_subscription_s_life_is_published_with_its_tier_and_a_never_started_one_is_not():
    p = in_memory_payments()
    now = datetime.now(UTC)
    tier = p.app.define_tier(ARTIST, "Backstage", 1_000, "USD", "month", at=now, by=ARTIST)
    subscription, session = await p.payments.subscribe(FAN, tier.id)
    await _feed(p, p.stripe.pay(session.id))
    stripe_id = p.app.subscription(subscription.id).stripe_subscription_id
    await _feed(p, p.stripe.renew(stripe_id, paid=False))
    await p.payments.cancel_subscription(FAN, subscription.id)
    await _feed(p, p.stripe.renew(stripe_id))

    life = [
        e
        for e in _published(p)
        if isinstance(e, published.SubscriptionFacts) and e.subscription_id == str(subscription.id)
    ]
    assert [type(e) for e in life] == [
        published.SubscriptionStarted,
        published.SubscriptionPastDue,
        published.SubscriptionCanceled,
    ]
    assert {(e.fan_id, e.artist_id, e.tier_name, e.price_cents) for e in life} == {
        (FAN, ARTIST, "Backstage", 1000)
    }

    # A checkout abandoned before any payment: canceled, never started, nothing to tell.
    other = in_memory_payments()
    tier = other.app.define_tier(ARTIST, "Early", 500, "USD", "month", at=now, by=ARTIST)
    _, session = await other.payments.subscribe(FAN, tier.id)
    await _feed(other, other.stripe.expire(session.id))
    assert not [e for e in _published(other) if isinstance(e, published.SubscriptionFacts)]
