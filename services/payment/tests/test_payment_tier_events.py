"""Tiers as payment publishes them, read off its log as the relay reads it: defining a tier
publishes `payment.tier.defined` with its facts (nft ranks it for the content locker), archiving
it publishes `payment.tier.archived` once, and who defined or archived it stays private."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from audifi_events import encode, registry
from audifi_events import payment as published
from audifi_payment.bootstrap import InMemoryPayments, in_memory_payments
from audifi_payment.domain.tier import Tier
from audifi_payment.outbox import outbox

ARTIST, ADMIN = str(uuid4()), str(uuid4())
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=3)


def _bodies(p: InMemoryPayments) -> list[tuple[str, bytes]]:
    """Every integration event of the log, as (routing key, body) the relay would publish."""
    out = []
    for n in p.app.recorder.select_notifications(start=1, limit=10_000):
        if not outbox.publishes(n.topic):
            continue
        event = outbox.to_integration_event(n.topic, p.app.mapper.to_domain_event(n))
        if event is not None:
            out.append((registry.type_of(event).routing_key, encode(event)))
    return out


def _published(p: InMemoryPayments) -> list:
    """Every integration event of the log, encoded and decoded as the bus carries it."""
    return [registry.decode(key, 1, body) for key, body in _bodies(p)]


def test_defining_a_tier_publishes_its_facts_and_archiving_it_publishes_once() -> None:
    p = in_memory_payments()
    backstage = p.app.define_tier(ARTIST, "Backstage", 1_000, "usd", "month", at=NOW, by=ARTIST)
    patron = p.app.define_tier(ARTIST, "Patron", 10_000, "USD", "year", at=NOW, by=ARTIST)
    p.app.archive_tier(backstage.id, at=LATER, by=ARTIST)
    p.app.archive_tier(backstage.id, at=LATER + timedelta(days=1), by=ARTIST)  # already archived

    events = _published(p)
    assert events == [
        published.TierDefined(
            tier_id=str(backstage.id),
            artist_id=ARTIST,
            name="Backstage",
            price_cents=1000,
            currency="USD",
            interval="month",
            defined_at=NOW,
        ),
        published.TierDefined(
            tier_id=str(patron.id),
            artist_id=ARTIST,
            name="Patron",
            price_cents=10_000,
            currency="USD",
            interval="year",
            defined_at=NOW,
        ),
        published.TierArchived(tier_id=str(backstage.id), artist_id=ARTIST, archived_at=LATER),
    ]
    # What nft ranks by (its price per year), within one artist and currency: the monthly
    # Backstage (12 x 10.00) ranks above the yearly Patron (100.00).
    yearly = {
        e.name: e.price_cents * (12 if e.interval == "month" else 1)
        for e in events
        if isinstance(e, published.TierDefined)
    }
    assert yearly == {"Backstage": 12_000, "Patron": 10_000}


def test_nothing_private_leaves_with_a_tier() -> None:
    p = in_memory_payments()
    tier = p.app.define_tier(ARTIST, "Gold", 500, "EUR", "month", at=NOW, by=ADMIN, admin=True)
    p.app.archive_tier(tier.id, at=LATER, by=ADMIN, admin=True)

    bodies = _bodies(p)
    assert [key for key, _ in bodies] == ["payment.tier.defined", "payment.tier.archived"]
    defined, archived = (json.loads(body) for _, body in bodies)
    assert set(defined) == {
        "tierId",
        "artistId",
        "name",
        "priceCents",
        "currency",
        "interval",
        "definedAt",
    }
    assert set(archived) == {"tierId", "artistId", "archivedAt"}
    # Who defined or archived it (here an admin) is never published.
    assert not [body for _, body in bodies if ADMIN.encode() in body]


def test_an_archive_stored_before_it_named_its_artist_replays_and_is_not_published() -> None:
    p = in_memory_payments()
    tier = p.app.define_tier(ARTIST, "Gold", 500, "USD", "month", at=NOW, by=ARTIST)
    p.app.archive_tier(tier.id, at=LATER, by=ARTIST)
    defined, archived = p.app.recorder.select_notifications(start=1, limit=10)
    assert archived.topic.endswith("Tier.Archived")
    transcoder = p.app.mapper.transcoder
    state = transcoder.decode(archived.state)
    del state["artist_id"]  # as Archived was stored before it carried the artist
    old = p.app.mapper.to_domain_event(
        dataclasses.replace(archived, state=transcoder.encode(state))
    )

    assert outbox.to_integration_event(archived.topic, old) is None
    replayed = old.mutate(p.app.mapper.to_domain_event(defined).mutate(None))
    assert isinstance(replayed, Tier)
    assert (replayed.archived, replayed.archived_at, replayed.artist_id) == (True, LATER, ARTIST)
