"""Money in, end to end in memory: checkout, Stripe's events (in any order, any number of
times), the ledger they leave, subscriptions' lifecycle, late payments refunded, Connect."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from audifi_kit.errors import Forbidden
from audifi_payment.bootstrap import InMemoryPayments, in_memory_payments
from audifi_payment.domain.ledger import transaction_id_for
from audifi_payment.domain.order import Product
from audifi_payment.ledger_verify import verify_application

ARTIST, BAND, FAN = str(uuid4()), str(uuid4()), str(uuid4())


def _legs(p: InMemoryPayments, charge_id: str) -> dict[tuple[str, str], int]:
    txn = p.app.ledger_transaction(transaction_id_for("stripe_charge", charge_id))
    return {(leg.account, str(leg.direction)): leg.amount for leg in txn.legs}


def _verified(p: InMemoryPayments) -> None:
    report = verify_application(p.app)
    assert report.ok, report.problems


async def _feed(p: InMemoryPayments, events: list[dict]) -> list[str]:
    return [await p.payments.handle_event(e) for e in events]


def _order(p: InMemoryPayments, *, minutes: int = 60, quantity: int = 2, unit: int = 2_500):
    now = datetime.now(UTC)
    return p.app.open_order(
        uuid4(),
        Product("nft", "ipo_shares", "master-1"),
        title="2 shares of Master One",
        quantity=quantity,
        unit_amount=unit,
        currency="USD",
        buyer_id=FAN,
        seller_id=ARTIST,
        expires_at=now + timedelta(minutes=minutes),
        at=now,
    )


async def test_a_paid_order_books_gross_fee_platform_fee_and_the_split_once_whatever_replays():
    p = in_memory_payments()
    p.app.define_split_rule(
        ARTIST,
        "band",
        [(ARTIST, 7_000), (BAND, 3_000)],
        is_default=True,
        at=datetime.now(UTC),
        by=ARTIST,
    )
    order = _order(p)
    session = await p.payments.checkout_order(FAN, order.id)
    events = p.stripe.pay(session.id)

    outcomes = await _feed(p, events)

    assert "order paid" in outcomes
    paid = p.app.order(order.id)
    assert paid.status == "paid"
    [charge_id] = [e["data"]["object"]["id"] for e in events if e["type"] == "charge.succeeded"]
    # 50.00 gross; Stripe 2.9 % + 30 = 175; platform 5 % = 250; 4,575 split 70/30.
    assert _legs(p, charge_id) == {
        ("stripe:clearing", "debit"): 5_000,
        ("stripe:fees", "credit"): 175,
        ("platform:fees", "credit"): 250,
        (f"user:{ARTIST}:available", "credit"): 3_203,  # 3,202.5 floored, + the 1 remainder
        (f"user:{BAND}:available", "credit"): 1_372,
    }
    assert p.app.guarded_balance(f"user:{BAND}:available", "USD").available == 1_372
    _verified(p)

    # Every event again, five times, in shuffled orders: duplicates, nothing booked twice.
    again = [e for _ in range(5) for e in events]
    random.Random(7).shuffle(again)
    assert set(await _feed(p, again)) == {"duplicate"}
    assert p.app.guarded_balance(f"user:{BAND}:available", "USD").available == 1_372
    _verified(p)


async def test_the_same_events_under_new_ids_still_book_once():
    """Stripe retries with the same event id, but a charge may be announced by several events
    (and a replayed delivery of an old payload): booking is idempotent by the charge."""
    p = in_memory_payments()
    order = _order(p)
    session = await p.payments.checkout_order(FAN, order.id)
    events = p.stripe.pay(session.id)
    await _feed(p, events)
    renamed = [{**e, "id": f"evt_again_{i}"} for i, e in enumerate(events)]
    outcomes = await _feed(p, renamed)
    assert "order paid" not in outcomes
    assert all("refund" not in o for o in outcomes)
    assert p.app.guarded_balance(f"user:{ARTIST}:available", "USD").available == 4_575
    _verified(p)


async def test_a_declined_card_books_nothing_and_the_checkout_can_still_be_paid():
    p = in_memory_payments()
    order = _order(p)
    session = await p.payments.checkout_order(FAN, order.id)
    outcomes = await _feed(p, p.stripe.decline(session.id))
    assert "payment failed: nothing booked" in outcomes
    assert set(outcomes) <= {"payment failed: nothing booked", "ignored"}
    assert p.app.order(order.id).status == "checkout_started"
    assert verify_application(p.app).transactions == 0

    await _feed(p, p.stripe.pay(session.id))
    assert p.app.order(order.id).status == "paid"


async def test_a_payment_after_the_order_expired_is_refunded_and_booked_back():
    p = in_memory_payments()
    order = _order(p, minutes=5)
    session = await p.payments.checkout_order(FAN, order.id)
    late = datetime.now(UTC) + timedelta(minutes=10)  # Stripe's session (30 min) outlives it

    outcomes = await _feed(p, p.stripe.pay(session.id, at=late))

    assert "order refund_required, refunded" in outcomes
    refunded = p.app.order(order.id)
    assert refunded.status == "expired"
    assert refunded.refunds_due == []
    assert p.app.guarded_balance(f"user:{ARTIST}:available", "USD").available == 0
    report = verify_application(p.app)
    assert report.ok, report.problems
    # The buyer got 50.00 back; Stripe kept its fee, which the refunds account now owes.
    assert report.balances[("platform:refunds", "USD")].credits_posted == 5_000 - 175
    assert report.balances[("platform:refunds", "USD")].debits_posted == 5_000


async def test_another_buyer_cannot_check_out_an_order():
    p = in_memory_payments()
    order = _order(p)
    with pytest.raises(Forbidden):
        await p.payments.checkout_order(str(uuid4()), order.id)


async def _subscribed(p: InMemoryPayments):
    now = datetime.now(UTC)
    tier = p.app.define_tier(ARTIST, "Backstage", 1_000, "usd", "month", at=now, by=ARTIST)
    p.app.define_split_rule(
        ARTIST, "band", [(ARTIST, 7_000), (BAND, 3_000)], is_default=True, at=now, by=ARTIST
    )
    subscription, session = await p.payments.subscribe(FAN, tier.id)
    return subscription, session


async def test_invoice_paid_before_the_subscription_exists_starts_it_and_books_the_charge():
    p = in_memory_payments()
    subscription, session = await _subscribed(p)
    events = p.stripe.pay(session.id)
    # invoice.paid first, customer.subscription.created last: the worst order.
    ordered = sorted(events, key=lambda e: e["type"] != "invoice.paid")
    ordered.sort(key=lambda e: e["type"] == "customer.subscription.created")

    await _feed(p, ordered)

    started = p.app.subscription(subscription.id)
    assert started.status == "active"
    assert started.current_period_end is not None
    # 10.00: Stripe 59, platform 50, 891 split 70/30 (623.7 -> 623 + 1, 267.3 -> 267).
    assert p.app.guarded_balance(f"user:{ARTIST}:available", "USD").available == 624
    assert p.app.guarded_balance(f"user:{BAND}:available", "USD").available == 267
    _verified(p)


async def test_a_renewal_books_again_and_a_failed_one_falls_past_due_then_recovers():
    p = in_memory_payments()
    subscription, session = await _subscribed(p)
    await _feed(p, p.stripe.pay(session.id))
    stripe_id = p.app.subscription(subscription.id).stripe_subscription_id
    first_end = p.app.subscription(subscription.id).current_period_end

    await _feed(p, p.stripe.renew(stripe_id))
    renewed = p.app.subscription(subscription.id)
    assert renewed.status == "active" and renewed.current_period_end > first_end
    assert p.app.guarded_balance(f"user:{ARTIST}:available", "USD").available == 2 * 624

    await _feed(p, p.stripe.renew(stripe_id, paid=False))
    assert p.app.subscription(subscription.id).status == "past_due"
    assert p.app.guarded_balance(f"user:{ARTIST}:available", "USD").available == 2 * 624
    _verified(p)


async def test_cancel_at_period_end_then_the_period_ends():
    p = in_memory_payments()
    subscription, session = await _subscribed(p)
    await _feed(p, p.stripe.pay(session.id))

    canceled = await p.payments.cancel_subscription(FAN, None)
    assert canceled.cancel_at_period_end and canceled.status == "active"
    stripe_id = canceled.stripe_subscription_id
    await _feed(p, p.stripe.renew(stripe_id))
    assert p.app.subscription(subscription.id).status == "canceled"


async def test_the_portal_needs_a_payment_on_record():
    p = in_memory_payments()
    with pytest.raises(Forbidden):
        await p.payments.portal(FAN)
    _, session = await _subscribed(p)
    await _feed(p, p.stripe.pay(session.id))
    assert (await p.payments.portal(FAN)).startswith("http")


async def test_connect_onboarding_follows_stripe():
    p = in_memory_payments()
    account, link = await p.payments.onboard(ARTIST, email=None)
    assert account.status == "pending" and link.startswith("http")
    again, _ = await p.payments.onboard(ARTIST, email=None)
    assert again.stripe_account_id == account.stripe_account_id  # created once
    outcomes = await _feed(p, p.stripe.complete_onboarding(account.stripe_account_id))
    assert outcomes == ["connect account completed"]
    assert p.app.connect_account(ARTIST).status == "completed"


async def test_an_event_naming_an_order_this_service_never_had_is_ignored_once():
    p = in_memory_payments()
    order = _order(p)
    session = await p.payments.checkout_order(FAN, order.id)
    events = p.stripe.pay(session.id)
    stranger = uuid4()
    for e in events:  # as if another system's checkout named an order id unknown here
        metadata = e["data"]["object"].get("metadata")
        if metadata and "order_id" in metadata:
            metadata["order_id"] = str(stranger)
    p.stripe._objects[session.id]["metadata"]["order_id"] = str(stranger)
    outcomes = await _feed(p, events)
    assert "ignored: ORDER_NOT_FOUND" in outcomes
    assert set(await _feed(p, events)) == {"duplicate"}  # answered 200 once and for all
    assert verify_application(p.app).transactions == 0


# --- orders nobody paid in time ------------------------------------------------------------


async def test_an_overdue_order_has_its_checkout_expired_at_stripe_then_is_expired() -> None:
    p = in_memory_payments()
    order = _order(p, minutes=5)
    session = await p.payments.checkout_order(FAN, order.id)
    assert await p.payments.expire_overdue_order(order.id) == "order checkout_started"  # not yet

    p.payments.clock = lambda: datetime.now(UTC) + timedelta(minutes=6)
    assert await p.payments.expire_overdue_order(order.id) == "order expired"
    assert (await p.stripe.checkout_session(session.id)).status == "expired"  # nobody pays it now
    assert p.app.order(order.id).status == "expired"
    assert await p.payments.expire_overdue_order(order.id) == "order expired"  # once


async def test_an_overdue_order_without_a_checkout_is_expired() -> None:
    p = in_memory_payments()
    order = _order(p, minutes=5)
    p.payments.clock = lambda: datetime.now(UTC) + timedelta(minutes=6)
    assert await p.payments.expire_overdue_order(order.id) == "order expired"


@pytest.mark.parametrize("minutes", [5, 60 * 25])
async def test_a_checkout_reaching_stripe_a_second_later_is_still_accepted(minutes: int) -> None:
    """Stripe judges a checkout's expiry by its own clock in whole seconds: an order due in
    5 minutes (asked 30 minutes) or in 25 hours (asked 24) read at x.9 s and arriving at
    x+1 s must not be refused at the edge."""
    ours = datetime(2026, 12, 8, 12, 0, 0, 900_000, tzinfo=UTC)
    p = in_memory_payments(clock=lambda: ours)
    p.stripe.now = lambda: ours + timedelta(milliseconds=150)
    order = p.app.open_order(
        uuid4(),
        Product("nft", "ipo_shares", "master-1"),
        title="2 shares of Master One",
        quantity=2,
        unit_amount=2_500,
        currency="USD",
        buyer_id=FAN,
        seller_id=ARTIST,
        expires_at=ours + timedelta(minutes=minutes),
        at=ours,
    )
    session = await p.payments.checkout_order(FAN, order.id)
    assert session.status == "open"


async def test_an_overdue_order_whose_checkout_was_paid_in_time_is_paid_not_expired() -> None:
    p = in_memory_payments()
    order = _order(p, minutes=5)
    session = await p.payments.checkout_order(FAN, order.id)
    p.stripe.pay(session.id, at=datetime.now(UTC) + timedelta(minutes=1))  # webhooks not in yet
    p.payments.clock = lambda: datetime.now(UTC) + timedelta(minutes=6)
    assert await p.payments.expire_overdue_order(order.id) == "order paid"
    assert p.app.order(order.id).status == "paid"
    _verified(p)
