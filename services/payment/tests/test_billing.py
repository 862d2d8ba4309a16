"""Tiers and subscriptions on the in-memory application: what an artist may sell, and a
subscription that follows Stripe's object state whatever order its webhooks arrive in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from audifi_kit.errors import DomainError
from audifi_payment.bootstrap import in_memory
from audifi_payment.domain.subscription import StripeSubscriptionState, Subscription
from audifi_payment.domain.tier import Tier

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
P1, P2, P3 = (NOW + timedelta(days=30 * n) for n in (1, 2, 3))
ARTIST, OTHER_ARTIST, FAN, OTHER_FAN, ADMIN = (str(uuid4()) for _ in range(5))


@pytest.fixture
def app() -> Any:
    return in_memory()


def gold(app: Any, artist: str = ARTIST) -> Tier:
    return app.define_tier(artist, "Gold", 500, "usd", "month", at=NOW, by=artist)


def refusal(call: Any, *args: Any, **kwargs: Any) -> DomainError:
    with pytest.raises(DomainError) as info:
        call(*args, **kwargs)
    return info.value


def stripe(
    status: str,
    period_end: datetime | None,
    invoice: str | None = None,
    paid: bool = False,
    *,
    cancel_at_period_end: bool = False,
    canceled_at: datetime | None = None,
) -> StripeSubscriptionState:
    return StripeSubscriptionState(
        stripe_subscription_id="sub_1",
        stripe_customer_id="cus_1",
        status=status,
        current_period_end=period_end,
        cancel_at_period_end=cancel_at_period_end,
        latest_invoice_id=invoice,
        latest_invoice_paid=paid,
        canceled_at=canceled_at,
    )


def history(app: Any, aggregate_id: UUID) -> list[str]:
    """The subscription's domain events, by name, in order."""
    return [type(e).__name__ for e in app.events.get(aggregate_id)]


def subscribed(app: Any, fan: str = FAN, artist: str = ARTIST) -> Subscription:
    return app.open_subscription(fan, gold(app, artist).id, at=NOW)


# --- tiers --------------------------------------------------------------------------------


def test_an_artist_defines_a_monthly_tier_priced_in_cents(app: Any) -> None:
    tier = gold(app)

    stored = app.tier(tier.id)
    assert (stored.artist_id, stored.name, stored.price_cents) == (ARTIST, "Gold", 500)
    assert (stored.currency, stored.interval, stored.archived) == ("USD", "month", False)


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("priceCents", {"price_cents": -500}),
        ("priceCents", {"price_cents": 0}),
        ("priceCents", {"price_cents": 5.0}),
        ("priceCents", {"price_cents": 4.99}),
        ("priceCents", {"price_cents": True}),
        ("priceCents", {"price_cents": "500"}),
        ("priceCents", {"price_cents": 10**8 + 1}),
        ("currency", {"currency": "US"}),
        ("currency", {"currency": "USDT"}),
        ("currency", {"currency": "U$D"}),
        ("interval", {"interval": "week"}),
        ("name", {"name": ""}),
        ("name", {"name": "x" * 61}),
    ],
)
def test_a_tier_with_a_bad_price_currency_interval_or_name_is_a_400_naming_it(
    app: Any, field: str, overrides: dict[str, Any]
) -> None:
    values = {"name": "Gold", "price_cents": 500, "currency": "USD", "interval": "month"}
    values |= overrides

    error = refusal(app.define_tier, ARTIST, **values, at=NOW, by=ARTIST)

    assert (error.status_code, error.code) == (400, "VALIDATION_ERROR")
    assert error.details["fields"][0]["field"] == field


def test_an_unknown_tier_is_a_404_tier_not_found(app: Any) -> None:
    unknown = uuid4()
    for call in (
        lambda: app.tier(unknown),
        lambda: app.open_subscription(FAN, unknown, at=NOW),
        lambda: app.archive_tier(unknown, at=NOW, by=ARTIST),
    ):
        error = refusal(call)
        assert (error.status_code, error.code) == (404, "TIER_NOT_FOUND")
        assert error.details == {"tierId": str(unknown)}


def test_only_the_artist_or_an_admin_defines_or_archives_the_artists_tiers(app: Any) -> None:
    defined = refusal(app.define_tier, ARTIST, "Fake", 100, "USD", "month", at=NOW, by=FAN)
    tier = gold(app)
    archived = refusal(app.archive_tier, tier.id, at=NOW, by=OTHER_ARTIST)
    assert (defined.status_code, archived.status_code) == (403, 403)
    assert app.tier(tier.id).archived is False

    by_admin = app.define_tier(ARTIST, "Silver", 300, "eur", "year", at=NOW, by=ADMIN, admin=True)
    app.archive_tier(by_admin.id, at=NOW, by=ADMIN, admin=True)
    assert app.tier(by_admin.id).archived is True


def test_an_archived_tier_takes_no_new_subscriber_but_keeps_its_subscriptions(app: Any) -> None:
    tier = gold(app)
    kept = app.open_subscription(FAN, tier.id, at=NOW)
    app.sync_subscription(kept.id, stripe("active", P1, "in_1", True), at=NOW)

    app.archive_tier(tier.id, at=NOW, by=ARTIST)

    error = refusal(app.open_subscription, OTHER_FAN, tier.id, at=NOW)
    assert (error.status_code, error.code) == (409, "TIER_ARCHIVED")
    assert app.subscription(kept.id).status == "active"
    assert app.tier(tier.id).name == "Gold"  # archived, never deleted


# --- the subscription's life, from Stripe's state -----------------------------------------


def test_a_new_subscription_copies_the_tier_and_awaits_stripe(app: Any) -> None:
    tier = gold(app)

    subscription = app.open_subscription(FAN, tier.id, at=NOW)

    stored = app.subscription(subscription.id)
    assert (stored.fan_id, stored.artist_id, stored.tier_id) == (FAN, ARTIST, tier.id)
    assert (stored.price_cents, stored.currency, stored.interval) == (500, "USD", "month")
    assert stored.status == "incomplete"
    assert stored.stripe_subscription_id is None


def test_paid_renewed_past_due_recovered_and_canceled_as_stripe_reports_it(app: Any) -> None:
    s = subscribed(app)
    app.attach_stripe_ids(s.id, "sub_1", "cus_1")

    app.sync_subscription(s.id, stripe("active", P1, "in_1", True), at=NOW)
    assert (app.subscription(s.id).status, app.subscription(s.id).current_period_end) == (
        "active",
        P1,
    )
    app.sync_subscription(s.id, stripe("active", P2, "in_2", True), at=P1)
    app.sync_subscription(s.id, stripe("past_due", P3, "in_3", False), at=P2)
    assert app.subscription(s.id).status == "past_due"
    app.sync_subscription(s.id, stripe("active", P3, "in_3", True), at=P2)  # the retry paid
    app.sync_subscription(s.id, stripe("canceled", P3, "in_3", True, canceled_at=P3), at=P3)

    final = app.subscription(s.id)
    assert (final.status, final.canceled_at, final.current_period_end) == ("canceled", P3, P3)
    assert final.started_at == NOW
    assert history(app, s.id) == [
        "Opened",
        "StripeAttached",
        "Started",
        "Renewed",
        "FellPastDue",
        "Renewed",
        "Canceled",
    ]


def test_invoice_paid_read_before_subscription_created_starts_it_once(app: Any) -> None:
    s = subscribed(app)

    # invoice.paid's handler read the subscription already active...
    app.sync_subscription(s.id, stripe("active", P1, "in_1", True), at=NOW)
    # ...then customer.subscription.created arrives carrying the object as it was created.
    app.sync_subscription(s.id, stripe("incomplete", P1, "in_1", False), at=NOW)
    app.sync_subscription(s.id, stripe("active", P1, "in_1", True), at=NOW)

    assert app.subscription(s.id).status == "active"
    assert history(app, s.id) == ["Opened", "StripeAttached", "Started"]


def test_a_snapshot_older_than_what_is_known_changes_nothing(app: Any) -> None:
    s = subscribed(app)
    app.sync_subscription(s.id, stripe("active", P1, "in_1", True), at=NOW)
    app.sync_subscription(s.id, stripe("active", P2, "in_2", True), at=P1)
    before = history(app, s.id)

    app.sync_subscription(s.id, stripe("past_due", P1, "in_1", False), at=P1)  # older period
    app.sync_subscription(s.id, stripe("past_due", P2, "in_2", False), at=P1)  # in_2 is paid
    app.sync_subscription(s.id, stripe("active", P1, "in_1", True), at=P1)

    after = app.subscription(s.id)
    assert (after.status, after.current_period_end) == ("active", P2)
    assert history(app, s.id) == before


def test_nothing_moves_a_canceled_subscription_again(app: Any) -> None:
    s = subscribed(app)
    app.sync_subscription(s.id, stripe("active", P1, "in_1", True), at=NOW)
    app.sync_subscription(s.id, stripe("canceled", P1, "in_1", True), at=NOW)

    app.sync_subscription(s.id, stripe("active", P2, "in_2", True), at=P1)
    app.sync_subscription(s.id, stripe("past_due", P2, "in_2", False), at=P1)

    assert app.subscription(s.id).status == "canceled"
    assert history(app, s.id)[-1] == "Canceled"


def test_a_renewal_counts_when_its_invoice_is_paid_not_when_the_period_rolls_over(
    app: Any,
) -> None:
    s = subscribed(app)
    app.sync_subscription(s.id, stripe("active", P1, "in_1", True), at=NOW)

    app.sync_subscription(s.id, stripe("active", P2, "in_2", False), at=P1)  # invoice.created
    assert "Renewed" not in history(app, s.id)
    assert app.subscription(s.id).current_period_end == P1

    app.sync_subscription(s.id, stripe("active", P2, "in_2", True), at=P1)  # invoice.paid
    assert history(app, s.id)[-1] == "Renewed"
    assert app.subscription(s.id).current_period_end == P2


def test_a_first_payment_that_never_comes_expires_the_subscription(app: Any) -> None:
    s = subscribed(app)

    app.sync_subscription(s.id, stripe("incomplete_expired", P1, "in_1", False), at=P1)

    assert app.subscription(s.id).status == "incomplete_expired"
    assert history(app, s.id)[-1] == "Expired"


def test_a_checkout_that_expires_unpaid_frees_the_fans_slot_for_the_artist(app: Any) -> None:
    s = subscribed(app)

    app.abandon_subscription(s.id, at=P1)
    again = app.open_subscription(FAN, s.tier_id, at=P1)

    assert app.subscription(s.id).status == "incomplete_expired"
    assert again.id != s.id and again.status == "incomplete"


def test_a_subscription_stripe_has_created_is_not_abandoned_locally(app: Any) -> None:
    s = subscribed(app)
    app.attach_stripe_ids(s.id, "sub_1", "cus_1")

    app.abandon_subscription(s.id, at=P1)

    assert app.subscription(s.id).status == "incomplete"
    assert refusal(app.open_subscription, FAN, s.tier_id, at=P1).code == "ALREADY_SUBSCRIBED"


def test_a_subscription_is_bound_to_one_stripe_subscription_and_knows_stripes_statuses(
    app: Any,
) -> None:
    s = subscribed(app)
    app.attach_stripe_ids(s.id, "sub_1", "cus_1")
    app.attach_stripe_ids(s.id, "sub_1", "cus_1")  # the same again: nothing

    other = refusal(app.attach_stripe_ids, s.id, "sub_2", "cus_1")
    unknown = refusal(app.sync_subscription, s.id, stripe("zombie", P1), at=NOW)

    assert other.status_code == 409
    assert (unknown.status_code, unknown.details["fields"][0]["field"]) == (400, "status")
    assert app.subscription(s.id).stripe_subscription_id == "sub_1"


def test_an_unknown_subscription_is_a_404(app: Any) -> None:
    error = refusal(app.subscription, uuid4())

    assert (error.status_code, error.code) == (404, "SUBSCRIPTION_NOT_FOUND")


# --- one live subscription per fan and artist ---------------------------------------------


def test_a_fan_holds_one_live_subscription_per_artist_but_may_follow_several_artists(
    app: Any,
) -> None:
    first = subscribed(app)
    app.sync_subscription(first.id, stripe("active", P1, "in_1", True), at=NOW)
    platinum = app.define_tier(ARTIST, "Platinum", 2000, "USD", "month", at=NOW, by=ARTIST)

    error = refusal(app.open_subscription, FAN, platinum.id, at=NOW)
    other_artist = subscribed(app, artist=OTHER_ARTIST)

    assert (error.status_code, error.code) == (409, "ALREADY_SUBSCRIBED")
    assert error.details == {"subscriptionId": str(first.id)}
    assert [s.id for s in app.subscriptions_of(FAN)] == [first.id, other_artist.id]


def test_coming_back_to_the_same_tier_before_paying_reopens_the_same_subscription(
    app: Any,
) -> None:
    tier = gold(app)
    first = app.open_subscription(FAN, tier.id, at=NOW)

    again = app.open_subscription(FAN, tier.id, at=NOW + timedelta(minutes=5))

    assert again.id == first.id
    assert len(app.subscriptions_of(FAN)) == 1


def test_after_a_subscription_ends_the_fan_may_subscribe_to_the_artist_again(app: Any) -> None:
    first = subscribed(app)
    app.sync_subscription(first.id, stripe("active", P1, "in_1", True), at=NOW)
    app.sync_subscription(first.id, stripe("canceled", P1, "in_1", True), at=P1)

    second = app.open_subscription(FAN, first.tier_id, at=P1)

    assert second.id != first.id
    assert [s.status for s in app.subscriptions_of(FAN)] == ["canceled", "incomplete"]


# --- cancellation -------------------------------------------------------------------------


def test_a_fan_cancels_their_only_active_subscription_at_period_end(app: Any) -> None:
    s = subscribed(app)
    app.sync_subscription(s.id, stripe("active", P1, "in_1", True), at=NOW)

    app.request_cancel(FAN, at=NOW)
    app.request_cancel(FAN, s.id, at=NOW)  # again: nothing more

    stored = app.subscription(s.id)
    assert (stored.status, stored.cancel_at_period_end) == ("active", True)
    assert history(app, s.id).count("CancellationScheduled") == 1


def test_cancel_without_naming_one_needs_exactly_one_active_subscription(app: Any) -> None:
    none = refusal(app.request_cancel, FAN, at=NOW)
    for artist in (ARTIST, OTHER_ARTIST):
        s = subscribed(app, artist=artist)
        app.sync_subscription(s.id, stripe("active", P1, "in_1", True), at=NOW)
    two = refusal(app.request_cancel, FAN, at=NOW)

    for error in (none, two):
        assert (error.status_code, error.details["fields"][0]["field"]) == (400, "subscriptionId")
    assert "0 active" in none.details["fields"][0]["message"]
    assert "2 active" in two.details["fields"][0]["message"]
    assert not any(s.cancel_at_period_end for s in app.subscriptions_of(FAN))


def test_a_fan_cannot_cancel_another_fans_subscription_but_an_admin_can(app: Any) -> None:
    s = subscribed(app)
    app.sync_subscription(s.id, stripe("active", P1, "in_1", True), at=NOW)

    error = refusal(app.request_cancel, OTHER_FAN, s.id, at=NOW)
    assert error.status_code == 403
    assert app.subscription(s.id).cancel_at_period_end is False

    app.request_cancel(ADMIN, s.id, at=NOW, admin=True)
    assert app.subscription(s.id).cancel_at_period_end is True


def test_an_ended_or_unpaid_subscription_cannot_be_canceled(app: Any) -> None:
    unpaid = subscribed(app)
    ended = subscribed(app, artist=OTHER_ARTIST)
    app.sync_subscription(ended.id, stripe("active", P1, "in_1", True), at=NOW)
    app.sync_subscription(ended.id, stripe("canceled", P1, "in_1", True), at=NOW)

    for subscription_id in (unpaid.id, ended.id):
        error = refusal(app.request_cancel, FAN, subscription_id, at=NOW)
        assert error.status_code == 409


def test_a_cancellation_made_or_withdrawn_in_stripes_portal_is_followed(app: Any) -> None:
    s = subscribed(app)
    app.sync_subscription(s.id, stripe("active", P1, "in_1", True), at=NOW)

    app.sync_subscription(
        s.id, stripe("active", P1, "in_1", True, cancel_at_period_end=True), at=NOW
    )
    assert app.subscription(s.id).cancel_at_period_end is True
    app.sync_subscription(s.id, stripe("active", P1, "in_1", True), at=NOW)

    assert app.subscription(s.id).cancel_at_period_end is False
    assert history(app, s.id)[-2:] == ["CancellationScheduled", "CancellationWithdrawn"]
