"""Bucket's lockers on the in-memory application: profiles, items, and what nft keeps of
payment's subscriptions and tiers."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from audifi_events.nft import ContentUnlocked
from audifi_kit.errors import ValidationFailed
from audifi_nft.bootstrap import in_memory
from audifi_nft.domain.locker import (
    ACTIVE,
    CANCELED,
    PAST_DUE,
    ArtistNotFound,
    NotYourLocker,
    subscription_seen_id,
)
from nft_support import T0
from test_nft_orders import published

ARTIST = uuid.UUID(int=11)
OTHER = str(uuid.UUID(int=12))
FILE = {"key": "locker/x/ab.png", "mime": "image/png", "size": 10, "sha256": "ab"}


def _profile(app, **kw):
    return app.save_profile(
        ARTIST,
        actor_id=kw.pop("actor_id", str(ARTIST)),
        actor_is_admin=kw.pop("actor_is_admin", False),
        name=kw.pop("name", "Nova Lane"),
        bio=kw.pop("bio", None),
        avatar_url=kw.pop("avatar_url", None),
        now=T0,
    )


def _upload(app, **kw):
    return app.upload_content(
        uuid.uuid4(),
        artist_id=ARTIST,
        actor_id=kw.pop("actor_id", str(ARTIST)),
        actor_is_admin=False,
        media_type="image",
        title="poster",
        description=None,
        file=FILE,
        unlock_date=T0,
        min_tier_id=kw.pop("min_tier_id", None),
        metadata=None,
        now=T0,
    )


def _subscription(app, status: str, at_minutes: int, tier: str = "tier_1") -> bool:
    seen = app.decide_subscription(
        subscription_id="sub_1",
        fan_id=OTHER,
        artist_id=str(ARTIST),
        tier_id=tier,
        status=status,
        as_of=T0 + timedelta(minutes=at_minutes),
    )
    changed = bool(seen.pending_events)
    if changed:
        app.save(seen)
    return changed


def test_an_artist_keeps_one_profile_and_edits_what_is_given() -> None:
    app = in_memory()
    created = _profile(app, bio="Ambient, mostly.")
    edited = _profile(app, name=None, avatar_url="https://cdn.example/nova.png")
    assert (edited.id, edited.name, edited.bio) == (created.id, "Nova Lane", "Ambient, mostly.")
    assert edited.avatar_url == "https://cdn.example/nova.png"
    with pytest.raises(NotYourLocker):
        _profile(app, actor_id=OTHER)
    with pytest.raises(ValidationFailed) as refused:
        _profile(app, avatar_url="http://insecure.example/a.png")
    assert refused.value.details["fields"][0]["field"] == "avatarUrl"


def test_content_needs_the_artists_profile_its_owner_and_a_known_tier() -> None:
    app = in_memory()
    with pytest.raises(ArtistNotFound):
        _upload(app)
    _profile(app)
    with pytest.raises(NotYourLocker):
        _upload(app, actor_id=OTHER)
    with pytest.raises(ValidationFailed) as refused:
        _upload(app, min_tier_id="tier_unknown")
    assert refused.value.details["fields"][0]["field"] == "minTierId"
    app.save(
        app.decide_tier(
            tier_id="tier_1",
            artist_id=str(ARTIST),
            name="Gold",
            currency="USD",
            price_cents=1_500,
            interval="month",
            at=T0,
        )
    )
    item = _upload(app, min_tier_id="tier_1")
    assert app.content(item.id).min_tier_id == "tier_1"


def test_a_subscription_changes_only_with_newer_facts_and_a_canceled_one_stays_canceled() -> None:
    app = in_memory()
    assert _subscription(app, ACTIVE, 0)
    assert _subscription(app, PAST_DUE, 10)
    assert not _subscription(app, ACTIVE, 5)  # an older renewal, delivered late: no change
    assert app.repository.get(subscription_seen_id("sub_1")).status == PAST_DUE
    assert _subscription(app, ACTIVE, 20, tier="tier_2")  # paid again, at another tier
    assert _subscription(app, CANCELED, 30, tier="tier_2")
    assert not _subscription(app, ACTIVE, 40)  # nothing reopens a canceled subscription
    seen = app.repository.get(subscription_seen_id("sub_1"))
    assert (seen.status, seen.tier_id) == (CANCELED, "tier_2")


def test_a_tier_is_ranked_by_its_price_per_year() -> None:
    app = in_memory()
    monthly = app.decide_tier(
        tier_id="m",
        artist_id="a",
        name="M",
        currency="USD",
        price_cents=500,
        interval="month",
        at=T0,
    )
    yearly = app.decide_tier(
        tier_id="y",
        artist_id="a",
        name="Y",
        currency="USD",
        price_cents=5_000,
        interval="year",
        at=T0,
    )
    assert (monthly.annual_price, yearly.annual_price) == (6_000, 5_000)


def test_an_item_tells_its_subscribers_once_when_its_unlock_date_comes() -> None:
    app = in_memory()
    _profile(app)
    item = _upload(app)  # unlocks at T0
    early = app.announce_unlocked(item.id, subscribers=[OTHER], now=T0 - timedelta(seconds=1))
    assert not early  # not before its date
    assert app.announce_unlocked(item.id, subscribers=[OTHER], now=T0)
    assert not app.announce_unlocked(item.id, subscribers=[OTHER], now=T0 + timedelta(days=1))
    [told] = [e for e in published(app) if isinstance(e, ContentUnlocked)]
    assert (told.content_id, told.artist_id, told.artist_name) == (
        str(item.id),
        str(ARTIST),
        "Nova Lane",
    )
    assert (told.title, told.media_type, told.subscribers) == ("poster", "image", [OTHER])
