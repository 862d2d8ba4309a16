"""Bucket's artist locker served for real: the nft app on PostgreSQL, payment's tiers and
subscriptions arriving on the bus as payment publishes them, the lockers' clock moved by the
test (never slept on). What an artist and their fans see and may open."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from audifi_events.nft import ContentUnlocked
from audifi_events.payment import (
    SubscriptionCanceled,
    SubscriptionPastDue,
    SubscriptionRenewed,
    SubscriptionStarted,
    TierDefined,
)
from audifi_kit.inbox import Consumer
from audifi_kit.testing import eventually
from test_nft_http import ADMIN, ARTIST, Nft, png, wav
from test_nft_http import nft as nft  # the served app, as a fixture of this module

FAN, SUBSCRIBER = str(uuid.uuid4()), str(uuid.uuid4())
BASIC, GOLD = str(uuid.uuid4()), str(uuid.uuid4())
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(200)


def _tier(tier_id: str, name: str, cents: int) -> TierDefined:
    return TierDefined(
        tier_id=tier_id,
        artist_id=ARTIST,
        name=name,
        price_cents=cents,
        currency="USD",
        interval="month",
        defined_at=datetime.now(UTC),
    )


def _facts(subscription: str, tier: str, cents: int) -> dict[str, Any]:
    return {
        "subscription_id": subscription,
        "fan_id": SUBSCRIBER,
        "artist_id": ARTIST,
        "tier_id": tier,
        "price_cents": cents,
        "currency": "USD",
        "interval": "month",
        "current_period_end": datetime.now(UTC) + timedelta(days=30),
    }


async def _upload(
    c: httpx.AsyncClient,
    nft: Nft,
    *,
    kind: str,
    content: bytes,
    title: str,
    unlock: datetime,
    tier: str | None = None,
) -> httpx.Response:
    form = {"type": kind, "title": title, "unlockDate": unlock.isoformat()}
    if tier is not None:
        form["minTierId"] = tier
    return await c.post(
        f"/artists/{ARTIST}/content",
        data=form,
        files={"file": (f"{title}.bin", content, "application/octet-stream")},
        headers=nft.headers(ARTIST, "artist"),
    )


async def test_a_fan_sees_what_their_subscription_opens_and_loses_it_when_it_ends(
    nft: Nft,
) -> None:
    artist = nft.headers(ARTIST, "artist")
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        profile = await c.put(
            f"/artists/{ARTIST}", json={"name": "Nova Lane", "bio": "Ambient."}, headers=artist
        )
        assert profile.status_code == 200, profile.text
        await nft.publish(_tier(BASIC, "Basic", 500))
        await nft.publish(_tier(GOLD, "Gold", 1_500))

        async def tiers_known() -> bool:  # an item may need a tier once nft knows it
            shown = await _upload(
                c, nft, kind="image", content=png(), title="probe", unlock=nft.clock(), tier=GOLD
            )
            return shown.status_code == 201

        await eventually(tiers_known)
        now = nft.clock()
        public = await _upload(
            c, nft, kind="audio", content=wav(), title="demo", unlock=now - timedelta(days=1)
        )
        basic = await _upload(
            c, nft, kind="video", content=MP4, title="backstage", unlock=now, tier=BASIC
        )
        soon = await _upload(
            c,
            nft,
            kind="image",
            content=png(),
            title="cover-reveal",
            unlock=now + timedelta(days=2),
        )
        for answer in (public, basic, soon):
            assert answer.status_code == 201, answer.text
        ids = {a.json()["title"]: a.json()["id"] for a in (public, basic, soon)}

        async def seen(fan: str, status: str = "all") -> dict[str, str]:
            page = await c.get(
                f"/artists/{ARTIST}/content", params={"status": status}, headers=nft.headers(fan)
            )
            assert page.status_code == 200, page.text
            return {i["title"]: i["status"] for i in page.json()["items"]}

        # Without a subscription: the public item opens, the tiered ones show as locked, the
        # one still to come is hidden from every fan.
        lone = await eventually(lambda: _with(seen(FAN), "demo"))
        assert lone == {"demo": "unlocked", "backstage": "locked", "probe": "locked"}
        assert await seen(FAN, "unlocked") == {"demo": "unlocked"}
        locked = await c.get(f"/content/{ids['backstage']}/download", headers=nft.headers(FAN))
        assert locked.status_code == 404  # a locked item's file is never served
        opened = await c.get(f"/content/{ids['demo']}/download", headers=nft.headers(FAN))
        assert (opened.status_code, opened.content) == (200, wav())

        # Subscribed at Basic: Basic's items open, Gold's stay locked.
        await nft.publish(
            SubscriptionStarted(**_facts("sub_1", BASIC, 500), started_at=datetime.now(UTC))
        )
        basic_view = await eventually(
            lambda: _when(seen(SUBSCRIBER), lambda v: v.get("backstage") == "unlocked")
        )
        assert basic_view == {"demo": "unlocked", "backstage": "unlocked", "probe": "locked"}
        video = await c.get(
            f"/content/{ids['backstage']}/download", headers=nft.headers(SUBSCRIBER)
        )
        assert (video.status_code, video.headers["content-type"]) == (200, "video/mp4")

        # Upgraded to Gold (a dearer tier): everything released opens.
        await nft.publish(
            SubscriptionRenewed(**_facts("sub_1", GOLD, 1_500), renewed_at=datetime.now(UTC))
        )
        await eventually(lambda: _when(seen(SUBSCRIBER), lambda v: v.get("probe") == "unlocked"))

        # Past due: access closes at once; paid again: it opens; canceled: it closes for good.
        await nft.publish(
            SubscriptionPastDue(**_facts("sub_1", GOLD, 1_500), fell_past_due_at=datetime.now(UTC))
        )
        await eventually(lambda: _when(seen(SUBSCRIBER), lambda v: v["backstage"] == "locked"))
        await nft.publish(
            SubscriptionRenewed(**_facts("sub_1", GOLD, 1_500), renewed_at=datetime.now(UTC))
        )
        await eventually(lambda: _when(seen(SUBSCRIBER), lambda v: v["probe"] == "unlocked"))
        await nft.publish(
            SubscriptionCanceled(**_facts("sub_1", GOLD, 1_500), canceled_at=datetime.now(UTC))
        )
        ended = await eventually(lambda: _when(seen(SUBSCRIBER), lambda v: v["probe"] == "locked"))
        assert ended["backstage"] == "locked" and ended["demo"] == "unlocked"

        # The scheduled item appears to fans when its day comes.
        nft.clock.advance(timedelta(days=3))
        assert (await seen(FAN))["cover-reveal"] == "unlocked"

        # The artist and admins see and open everything, scheduled or tiered.
        mine = await seen(ARTIST)
        assert set(mine.values()) == {"unlocked"} and len(mine) == 4
        admin = nft.headers(ADMIN, "admin")
        got = await c.get(f"/content/{ids['backstage']}/download", headers=admin)
        assert got.status_code == 200


async def _with(view: Any, title: str) -> dict[str, str] | None:
    shown = await view
    return shown if title in shown else None


async def _when(view: Any, ready: Any) -> dict[str, str] | None:
    shown = await view
    return shown if ready(shown) else None


async def test_an_artist_reschedules_and_retiers_an_item_and_fans_follow(nft: Nft) -> None:
    artist = nft.headers(ARTIST, "artist")
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        await c.put(f"/artists/{ARTIST}", json={"name": "Nova Lane"}, headers=artist)
        later = nft.clock() + timedelta(days=7)
        made = await _upload(c, nft, kind="image", content=png(), title="poster", unlock=later)
        item = made.json()["id"]
        hidden = await c.get(f"/content/{item}", headers=nft.headers(FAN))
        assert hidden.status_code == 404  # not before its day
        moved = await c.patch(
            f"/content/{item}",
            json={
                "unlockDate": (nft.clock() - timedelta(minutes=1)).isoformat(),
                "metadata": {"k": 1},
            },
            headers=artist,
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["metadata"] == {"k": 1}

        async def visible() -> dict | None:
            shown = await c.get(f"/content/{item}", headers=nft.headers(FAN))
            return shown.json() if shown.status_code == 200 else None

        assert (await eventually(visible))["status"] == "unlocked"
        by_fan = await c.patch(f"/content/{item}", json={"title": "mine"}, headers=nft.headers(FAN))
        assert by_fan.status_code == 403


async def test_bad_uploads_are_refused_and_change_nothing(nft: Nft) -> None:
    artist = nft.headers(ARTIST, "artist")
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        unknown = await _upload(c, nft, kind="image", content=png(), title="x", unlock=nft.clock())
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "ARTIST_NOT_FOUND")
        await c.put(f"/artists/{ARTIST}", json={"name": "Nova Lane"}, headers=artist)
        video_as_image = await _upload(
            c, nft, kind="image", content=MP4, title="x", unlock=nft.clock()
        )
        assert video_as_image.status_code == 415
        assert "video/mp4" in video_as_image.json()["error"]["message"]
        by_fan = await c.post(
            f"/artists/{ARTIST}/content",
            data={"type": "image", "title": "x", "unlockDate": nft.clock().isoformat()},
            files={"file": ("x.png", png(), "image/png")},
            headers=nft.headers(FAN, "artist"),  # an artist, but not this one
        )
        assert by_fan.status_code == 403
        no_tier = await _upload(
            c,
            nft,
            kind="image",
            content=png(),
            title="x",
            unlock=nft.clock(),
            tier=str(uuid.uuid4()),
        )
        assert no_tier.json()["error"]["details"]["fields"][0]["field"] == "minTierId"
        long_title = await _upload(
            c, nft, kind="image", content=png(), title="x" * 201, unlock=nft.clock()
        )
        assert long_title.json()["error"]["details"]["fields"][0]["field"] == "title"
        naive = await c.post(
            f"/artists/{ARTIST}/content",
            data={"type": "image", "title": "x", "unlockDate": "2027-01-01T00:00:00"},
            files={"file": ("x.png", png(), "image/png")},
            headers=artist,
        )
        assert naive.json()["error"]["details"]["fields"][0]["field"] == "unlockDate"
        page = await c.get(f"/artists/{ARTIST}/content", headers=artist)
        assert page.json()["items"] == []
        kept = [p for p in nft.media.rglob("*") if p.is_file() and "locker" in p.parts]
        assert kept == []  # a refused upload stores nothing
        nobody = await c.get(f"/artists/{uuid.uuid4()}/content", headers=artist)
        assert nobody.status_code == 404


async def test_subscribers_are_told_when_an_item_unlocks_and_only_they(nft: Nft) -> None:
    told: list[ContentUnlocked] = []
    listener = Consumer("probe", "unlocks")

    @listener.handler("nft.content.unlocked")  # binds the probe's queue to what nft tells
    async def unlocked(e: ContentUnlocked, ctx: Any) -> None:
        told.append(e)  # (deliveries are read off the queue below, as a consumer gets them)

    async def deliver(delivery: Any) -> None:
        message = delivery.message
        told.append(listener.registry.decode(message.routing_key, 1, message.body))
        await delivery.ack()

    await nft.bus.declare_queue(listener.spec)
    await nft.bus.consume(listener.name, deliver)
    artist = nft.headers(ARTIST, "artist")
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        await c.put(f"/artists/{ARTIST}", json={"name": "Nova Lane"}, headers=artist)
        await nft.publish(_tier(GOLD, "Gold", 1_500))
        await nft.publish(
            SubscriptionStarted(**_facts("sub_9", GOLD, 1_500), started_at=datetime.now(UTC))
        )
        later = nft.clock() + timedelta(days=1)

        async def uploaded() -> httpx.Response | None:  # once nft knows the tier
            made = await _upload(
                c, nft, kind="image", content=png(), title="reveal", unlock=later, tier=GOLD
            )
            return made if made.status_code == 201 else None

        item = (await eventually(uploaded)).json()
        nft.clock.advance(timedelta(days=2))  # the day comes: the locker clock tells

        async def announced() -> list[ContentUnlocked] | None:
            return [t for t in told if t.content_id == item["id"]] or None

        [news] = await eventually(announced)
        assert (news.title, news.artist_name, news.subscribers) == (
            "reveal",
            "Nova Lane",
            [SUBSCRIBER],
        )
