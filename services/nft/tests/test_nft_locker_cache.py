"""Hot lockers cached (adapters/locker_cache.py), in memory and in the real Redis: what a fan
sees through HTTP follows uploads, reschedules and subscriptions as the view does, an item
still to come is never served before the lockers' clock passes its date, a reader's stale
write after an invalidation is never read, a Redis outage costs no read, and the Python rule
the cache decides with is the SQL rule, on random lockers in the real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from audifi_events.payment import SubscriptionCanceled, SubscriptionStarted
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.chain.platform import PlatformChain
from audifi_kit.settings import Settings
from audifi_kit.testing import TokenSigner, drop_databases, eventually, served
from audifi_nft.adapters.locker_cache import (
    FanFacts,
    ItemFacts,
    LockerCache,
    LockerFacts,
    MemoryLockerCache,
    RedisLockerCache,
    ViewFacts,
    locker_cache,
)
from audifi_nft.api.dependencies import CONTEXT_STATE_KEY
from audifi_nft.app import create_app
from audifi_nft.domain.locker import TierRank
from audifi_nft.projections.locker import OPENS, VISIBLE, Locker, access_sql
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar, get
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from test_nft_http import ARTIST, Clock, Nft, png, wav
from test_nft_locker_http import GOLD, MP4, SUBSCRIBER, _facts, _tier, _upload

FAN = str(uuid.uuid4())


# -- the served app, with each cache --------------------------------------------------------


@dataclass
class Served:
    nft: Nft
    cache: LockerCache | None


@pytest.fixture(params=["memory", "redis", "view"])
async def served_nft(
    request: pytest.FixtureRequest, postgres_url: str, redis_url: str, tmp_path: Path
) -> AsyncIterator[Served]:
    """The nft app with its locker cache in memory, in Redis, or none (`view`: every read
    asks the view with the rule in SQL: the reference the caches must equal)."""
    signer = TokenSigner()

    @get("/.well-known/jwks.json", sync_to_thread=False)
    def jwks() -> dict[str, Any]:
        return signer.jwks()

    prefix = f"audifi_lc{uuid.uuid4().hex[:8]}_"
    async with served(Litestar([jwks])) as auth:
        settings = Settings(
            database_url=postgres_url,
            db_prefix=prefix,
            var_dir=tmp_path,
            poll_interval=0.2,
            jwks_url=f"{auth}/.well-known/jwks.json",
            pool_size=3,
            extra={"NFT_CLOCK_SECONDS": "0.2"},
            redis_url=redis_url if request.param == "redis" else None,
            sole_writer=request.param != "view",  # replicas without Redis: no cache
        )
        chain = PlatformChain(settings)
        await chain.start()
        bus = InProcessBus()
        clock = Clock()
        app = create_app(settings, bus, chain=chain, clock=clock)
        cache = app.state[CONTEXT_STATE_KEY].locker_cache
        assert (
            type(cache)
            is {
                "memory": MemoryLockerCache,
                "redis": RedisLockerCache,
                "view": type(None),
            }[request.param]
        )
        try:
            async with served(app) as url:
                yield Served(Nft(url, signer, tmp_path / "nft-media", chain, bus, clock), cache)
        finally:
            await chain.close()
            await drop_databases(postgres_url, prefix)
            await _drop_keys(redis_url, f"{prefix}nft:locker")


async def _drop_keys(redis_url: str, prefix: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


async def test_a_cached_locker_follows_the_events_and_the_lockers_clock(
    served_nft: Served,
) -> None:
    nft, cache = served_nft.nft, served_nft.cache
    artist = nft.headers(ARTIST, "artist")
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        await c.put(f"/artists/{ARTIST}", json={"name": "Nova Lane"}, headers=artist)
        await nft.publish(_tier(GOLD, "Gold", 1_500))
        now = nft.clock()

        async def gold_item() -> httpx.Response | None:  # once nft knows the tier
            made = await _upload(
                c,
                nft,
                kind="video",
                content=MP4,
                title="backstage",
                unlock=now - timedelta(hours=1),
                tier=GOLD,
            )
            return made if made.status_code == 201 else None

        backstage = (await eventually(gold_item)).json()["id"]
        demo = await _upload(
            c, nft, kind="audio", content=wav(), title="demo", unlock=now - timedelta(days=1)
        )
        soon = await _upload(
            c, nft, kind="image", content=png(), title="soon", unlock=now + timedelta(hours=1)
        )
        soon_id = soon.json()["id"]

        async def seen(fan: str = FAN, status: str = "all") -> dict[str, str]:
            page = await c.get(
                f"/artists/{ARTIST}/content", params={"status": status}, headers=nft.headers(fan)
            )
            assert page.status_code == 200, page.text
            return {i["title"]: i["status"] for i in page.json()["items"]}

        async def seen_as(expected: dict[str, str], fan: str = FAN, status: str = "all") -> bool:
            return await seen(fan, status) == expected

        async def all_three_in_the_view() -> bool:  # the artist sees every item
            return set(await seen(ARTIST)) == {"demo", "backstage", "soon"}

        # Every upload applied first: a later one's invalidation would turn the read below
        # into a miss.
        await eventually(all_three_in_the_view)
        await eventually(lambda: seen_as({"demo": "unlocked", "backstage": "locked"}))
        if cache is not None:  # read again: from the cache
            await seen()  # (the read that passed may have raced the last invalidation)
            hits = cache.hits
            assert await seen() == {"demo": "unlocked", "backstage": "locked"}
            assert cache.hits > hits

        # An upload: the cached locker shows it once the view has it.
        await _upload(c, nft, kind="image", content=png(), title="new", unlock=now)
        await eventually(
            lambda: seen_as({"new": "unlocked", "demo": "unlocked", "backstage": "locked"})
        )

        # A reschedule into the future hides it from fans; back into the past shows it again.
        later = (now + timedelta(days=1)).isoformat()
        moved = await c.patch(
            f"/content/{demo.json()['id']}", json={"unlockDate": later}, headers=artist
        )
        assert moved.status_code == 200, moved.text
        await eventually(lambda: seen_as({"new": "unlocked", "backstage": "locked"}))
        earlier = (now - timedelta(days=1)).isoformat()
        await c.patch(f"/content/{demo.json()['id']}", json={"unlockDate": earlier}, headers=artist)
        await eventually(
            lambda: seen_as({"new": "unlocked", "demo": "unlocked", "backstage": "locked"})
        )

        # A subscription at Gold opens the tiered item; canceled, it closes again.
        await seen(SUBSCRIBER)  # cached before the subscription
        await nft.publish(
            SubscriptionStarted(**_facts("sub_c", GOLD, 1_500), started_at=datetime.now(UTC))
        )
        await eventually(
            lambda: seen_as(
                {"new": "unlocked", "demo": "unlocked", "backstage": "unlocked"},
                SUBSCRIBER,
                "unlocked",
            )
        )
        download = await c.get(f"/content/{backstage}/download", headers=nft.headers(SUBSCRIBER))
        assert (download.status_code, download.content) == (200, MP4)
        await nft.publish(
            SubscriptionCanceled(**_facts("sub_c", GOLD, 1_500), canceled_at=datetime.now(UTC))
        )
        await eventually(
            lambda: seen_as({"new": "unlocked", "demo": "unlocked"}, SUBSCRIBER, "unlocked")
        )
        gone = await c.get(f"/content/{backstage}/download", headers=nft.headers(SUBSCRIBER))
        assert gone.status_code == 404
        assert (await c.get(f"/content/{backstage}", headers=nft.headers(SUBSCRIBER))).json()[
            "status"
        ] == "locked"

        # The item still to come is cached with the rest, and never served before its time:
        # not listed, not readable, not downloadable...
        assert "soon" not in await seen()
        assert (await c.get(f"/content/{soon_id}", headers=nft.headers(FAN))).status_code == 404
        early = await c.get(f"/content/{soon_id}/download", headers=nft.headers(FAN))
        assert early.status_code == 404
        # ...until the lockers' clock passes its date: at once, no event needed.
        nft.clock.advance(timedelta(hours=2))
        hits = cache.hits if cache is not None else 0
        assert (await seen())["soon"] == "unlocked"
        opened = await c.get(f"/content/{soon_id}/download", headers=nft.headers(FAN))
        assert (opened.status_code, opened.content) == (200, png())
        if cache is not None:
            assert cache.hits > hits  # decided on the cached facts, with the clock

        # Paging and filters as without the cache; the artist sees everything.
        first = await c.get(
            f"/artists/{ARTIST}/content", params={"limit": 2}, headers=nft.headers(FAN)
        )
        rest = await c.get(
            f"/artists/{ARTIST}/content",
            params={"limit": 2, "cursor": first.json()["nextCursor"]},
            headers=nft.headers(FAN),
        )
        titles = [i["title"] for i in first.json()["items"] + rest.json()["items"]]
        assert titles == ["new", "soon", "demo", "backstage"] and rest.json()["nextCursor"] is None
        assert await seen(FAN, "locked") == {"backstage": "locked"}
        mine = await seen(ARTIST)
        assert set(mine) == {"soon", "new", "demo", "backstage"} and set(mine.values()) == {
            "unlocked"
        }
        assert await seen(ARTIST, "locked") == {}

        if isinstance(cache, RedisLockerCache):  # Redis gone: reads still answer, from the view
            redis, read = cache.redis, cache._read
            cache.redis = _Down()  # type: ignore[assignment]
            cache._read = _Down()  # type: ignore[assignment]
            cache._local.clear()
            try:
                assert (await seen())["soon"] == "unlocked"
                item = await c.get(f"/content/{soon_id}", headers=nft.headers(FAN))
                assert item.status_code == 200
            finally:
                cache.redis, cache._read = redis, read


class _Down:
    """A Redis client whose every call fails as when the server is gone."""

    def __getattr__(self, name: str) -> Any:
        raise RedisConnectionError("Redis is down")

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RedisConnectionError("Redis is down")


# -- the race: a reader's stale write after an invalidation ---------------------------------


T0 = datetime(2027, 1, 1, tzinfo=UTC)


def _item(title: str) -> ItemFacts:
    return ItemFacts(
        id=uuid.UUID(int=1),
        artist_id=ARTIST,
        media_type="image",
        title=title,
        description="",
        metadata={},
        unlock_date=T0,
        min_tier_id=None,
        tier_name=None,
        tier=None,
        file_key="k",
        mime="image/png",
        size=1,
        uploaded_at=T0,
        updated_at=T0,
    )


class _View:
    """The facts as a view would answer them; a read may be held after it read (as a reader
    that read PostgreSQL before a commit and writes the cache after the invalidation)."""

    def __init__(self) -> None:
        self.title = "old"
        self.tier = 100
        self.hold: asyncio.Event | None = None
        self.read = asyncio.Event()

    async def _held(self) -> None:
        self.read.set()
        if self.hold is not None:
            await self.hold.wait()

    async def locker(self, artist_id: str) -> LockerFacts:
        title = self.title
        await self._held()
        return LockerFacts(artist_id, (_item(title),))

    async def fan(self, artist_id: str, fan_id: str) -> FanFacts:
        tier = self.tier
        await self._held()
        return FanFacts((TierRank("USD", tier),))

    async def artist_of(self, item_id: uuid.UUID) -> str | None:
        return ARTIST


@pytest.fixture(params=["memory", "redis"])
async def bare_cache(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[LockerCache]:
    prefix = f"audifi_lc{uuid.uuid4().hex[:8]}_nft:locker"
    cache: LockerCache = (
        MemoryLockerCache()
        if request.param == "memory"
        else RedisLockerCache.from_url(redis_url, prefix, retry_after=0.05)
    )
    await cache.start()
    try:
        yield cache
    finally:
        await cache.close()
        await _drop_keys(redis_url, prefix)


async def test_a_readers_stale_write_after_the_invalidation_is_never_read(
    bare_cache: LockerCache,
) -> None:
    cache, view = bare_cache, _View()
    # The locker: the reader holds its old facts past the commit and the invalidation.
    view.hold, view.read = asyncio.Event(), asyncio.Event()
    reader = asyncio.create_task(cache.facts(ARTIST, None, view))
    await view.read.wait()  # it read the view before the commit...
    view.title = "new"  # ...the commit...
    await cache.invalidate({ARTIST}, set())  # ...its invalidation...
    release, view.hold = view.hold, None
    release.set()
    old, _ = await reader  # ...and only then it keeps what it read
    assert old.items[0].title == "old"  # (its own answer: the view as it read it)
    if isinstance(cache, RedisLockerCache):  # it was written, under the stamp it read
        keys = [k async for k in cache.redis.scan_iter(match=f"{cache.prefix}:locker:*")]
        assert len(keys) == 1
    for _ in range(2):  # never read again: the next reads get the committed facts
        new, _ = await cache.facts(ARTIST, None, view)
        assert new.items[0].title == "new"

    # A fan's subscriptions (not cached yet): the same, with the fan's generation alone.
    view.hold, view.read = asyncio.Event(), asyncio.Event()
    reader = asyncio.create_task(cache.facts(ARTIST, FAN, view))
    await view.read.wait()
    view.tier = 0  # canceled, say: the fan's subscriptions changed
    await cache.invalidate(set(), {(ARTIST, FAN)})
    release, view.hold = view.hold, None
    release.set()
    _, stale = await reader
    assert stale is not None and stale.tiers == (TierRank("USD", 100),)
    for _ in range(2):
        locker, fan = await cache.facts(ARTIST, FAN, view)
        assert fan is not None and fan.tiers == (TierRank("USD", 0),)
        assert locker.items[0].title == "new"  # the locker's entry untouched


async def test_a_cold_locker_read_by_many_at_once_is_read_from_the_view_once(
    bare_cache: LockerCache,
) -> None:
    view = _View()
    reads = 0
    original = view.locker

    async def counted(artist_id: str) -> LockerFacts:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.2)
        return await original(artist_id)

    view.locker = counted  # type: ignore[method-assign]
    if isinstance(bare_cache, RedisLockerCache):
        # The pool's connections opened first: 20 opened at once on a loaded machine can take
        # longer than the cache's 0.5 s connect timeout, which it rightly reads as Redis down
        # (PostgreSQL for everyone); this test is about one read for many, on a Redis that is up.
        for _attempt in range(5):  # a connect that timed out is opened again
            pinged = await asyncio.gather(
                *(bare_cache.redis.ping() for _ in range(20)), return_exceptions=True
            )
            if all(p is True for p in pinged):
                break
        else:
            pytest.fail(f"Redis did not take 20 connections: {pinged}")
    answers = await asyncio.gather(*(bare_cache.facts(ARTIST, None, view) for _ in range(20)))
    assert reads == 1 and {a[0].items[0].title for a in answers} == {"old"}


async def test_redis_down_costs_no_read_and_a_lost_invalidation_is_made_good(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = f"audifi_lc{uuid.uuid4().hex[:8]}_nft:locker"
    cache = RedisLockerCache.from_url(redis_url, prefix, retry_after=0.05)
    view = _View()
    await cache.start()
    try:
        assert (await cache.facts(ARTIST, FAN, view))[0].items[0].title == "old"  # cached
        redis, read = cache.redis, cache._read
        cache.redis = _Down()  # type: ignore[assignment]
        cache._read = _Down()  # type: ignore[assignment]
        view.title = "new"
        await cache.invalidate({ARTIST}, set())  # lost: Redis did not take it
        locker, fan = await cache.facts(ARTIST, FAN, view)  # from the view, not a failure
        assert locker.items[0].title == "new" and fan is not None
        assert "Redis failed" in caplog.text
        cache.redis, cache._read = redis, read
        await asyncio.sleep(0.06)
        # Back: Redis still holds the old entry under the old generation, but a new epoch
        # comes first, so it is never read.
        assert (await cache.facts(ARTIST, FAN, view))[0].items[0].title == "new"
        assert (await cache.facts(ARTIST, FAN, view))[0].items[0].title == "new"
    finally:
        await cache.close()
        await _drop_keys(redis_url, prefix)


async def test_the_settings_choose_the_cache() -> None:
    """Redis with REDIS_URL (keys named after the view's version: a view whose code changed
    never reads an older shape), memory for a sole writer, none for replicas without Redis."""
    settings_ = Settings(redis_url="redis://127.0.0.1:6379/0", db_prefix="audifi_x_")
    cache = locker_cache(settings_)
    assert isinstance(cache, RedisLockerCache)
    assert cache.prefix == f"audifi_x_nft:locker:v{Locker.version}"
    await cache.close()
    assert isinstance(locker_cache(replace(settings_, redis_url=None)), MemoryLockerCache)
    assert locker_cache(replace(settings_, redis_url=None, sole_writer=False)) is None


# -- the Python rule is the SQL rule ---------------------------------------------------------

ARTISTS = ["artist-a", "artist-b"]
FANS = ["fan-1", "fan-2", "fan-3"]
TIER_IDS = ["t0", "t1", "t2", "t3"]
NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)
MOMENTS = st.integers(-3, 3).map(lambda us: NOW + timedelta(microseconds=us))

TIERS = st.lists(
    st.tuples(
        st.sampled_from(TIER_IDS),
        st.sampled_from(ARTISTS),
        st.sampled_from(["USD", "EUR"]),
        st.integers(0, 3).map(lambda n: n * 6_000),
        st.booleans(),
    ),
    max_size=4,
    unique_by=lambda t: t[0],
)
SUBSCRIPTIONS = st.lists(
    st.tuples(
        st.sampled_from(FANS),
        st.sampled_from(ARTISTS),
        st.sampled_from([*TIER_IDS, "unknown"]),
        st.sampled_from(["active", "active", "past_due", "canceled"]),
    ),
    max_size=6,
)
ITEMS = st.lists(
    st.tuples(st.sampled_from(ARTISTS), MOMENTS, st.sampled_from([None, *TIER_IDS, "unknown"])),
    max_size=6,
)


async def _compare(
    conn: asyncpg.Connection, tiers: list, subscriptions: list, items: list, now: datetime
) -> int:
    tx = conn.transaction()
    await tx.start()
    try:
        for tier_id, artist, currency, price, archived in tiers:
            await conn.execute(
                "INSERT INTO locker.tiers (seen_id, id, artist_id, name, currency, "
                "annual_price, archived) VALUES ($1, $2, $3, $2, $4, $5, $6)",
                uuid.uuid4(),
                tier_id,
                artist,
                currency,
                price,
                archived,
            )
        for n, (fan, artist, tier_id, status) in enumerate(subscriptions):
            await conn.execute(
                "INSERT INTO locker.subscriptions (seen_id, id, fan_id, artist_id, tier_id, "
                "status) VALUES ($1, $2, $3, $4, $5, $6)",
                uuid.uuid4(),
                f"sub_{n}",
                fan,
                artist,
                tier_id,
                status,
            )
        for artist, unlock, tier_id in items:
            await conn.execute(
                "INSERT INTO locker.items (id, artist_id, media_type, title, description, "
                "metadata, unlock_date, min_tier_id, file_key, mime, size, sha256, uploaded_at, "
                "updated_at) VALUES ($1, $2, 'image', 't', '', '{}', $3, $4, 'k', 'image/png', "
                "1, 's', $5, $5)",
                uuid.uuid4(),
                artist,
                unlock,
                tier_id,
                NOW,
            )
        facts = ViewFacts(conn)  # type: ignore[arg-type]  (a connection reads as a pool does)
        rule = access_sql(
            f"SELECT i.id, {OPENS} AS opens, {VISIBLE} AS visible FROM locker.items i "
            "WHERE i.artist_id = $3",
            viewer=1,
            now=2,
        )
        compared = 0
        for viewer in FANS:
            for artist in ARTISTS:
                sql = {
                    r["id"]: (r["visible"], r["opens"])
                    for r in await conn.fetch(rule, viewer, now, artist)
                }
                locker = await facts.locker(artist)
                fan = await facts.fan(artist, viewer)
                python = {i.id: (i.shown(now), i.opens(fan, now)) for i in locker.items}
                assert python == sql, (viewer, artist)
                compared += len(sql)
        return compared
    finally:
        await tx.rollback()


def test_the_python_rule_is_the_sql_rule_on_random_lockers(postgres_url: str) -> None:
    prefix = f"audifi_lr{uuid.uuid4().hex[:8]}_"

    async def open_view() -> asyncpg.Connection:
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute(f'CREATE DATABASE "{prefix}nft"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(postgres_url.rsplit("/", 1)[0] + f"/{prefix}nft")
        async with conn.transaction():
            await conn.execute("CREATE SCHEMA locker; SET LOCAL search_path TO locker")
            await Locker().create(conn)
        return conn

    with asyncio.Runner() as runner:
        conn = runner.run(open_view())
        compared = 0
        try:

            @settings(
                max_examples=150,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture],
            )
            @given(tiers=TIERS, subscriptions=SUBSCRIPTIONS, items=ITEMS, now=MOMENTS)
            def same(tiers: list, subscriptions: list, items: list, now: datetime) -> None:
                nonlocal compared
                compared += runner.run(_compare(conn, tiers, subscriptions, items, now))

            same()
        finally:
            runner.run(conn.close())
            runner.run(drop_databases(postgres_url, prefix))
    assert compared > 100  # items of every kind were compared, not only empty lockers
