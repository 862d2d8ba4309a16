"""`make bench` for nft's lockers: reads of one hot locker, cached vs the view, in one process.

    locker reads  pages of one artist's locker (`GET /artists/{id}/content`, the handler's
                  work without HTTP: default limit, status=all) read per second by 16
                  concurrent readers, each read as a random fan among `--subscribers` (a
                  tenth of them without a subscription), the locker holding `--items` items
                  (a third public, a third per tier, a tenth still to come):
                    - from the locker cache in memory (embedded) and in Redis (REDIS_URL), the
                      rule applied in Python with the clock, every fan's entry warm;
                    - vs the baseline, the view with the rule in SQL (no cache), in this run.

The locker is made through the application (profile, tiers, subscriptions, uploads: events in
the event store) and the `locker` projection follows it, as in the service. Before timing,
each cached page is checked equal to the view's for a sample of fans. Printed, never asserted
beyond that. Uses DATABASE_URL and REDIS_URL (else the local servers).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
from audifi_kit.eventstore import EventStore, open_event_store
from audifi_kit.http import Identity
from audifi_kit.paging import DEFAULT_LIMIT
from audifi_kit.projections import ProjectionRunner
from audifi_kit.settings import Settings
from audifi_kit.testing import LOCAL_DEFAULTS, drop_databases
from audifi_nft.adapters.locker_cache import (
    LockerCache,
    MemoryLockerCache,
    RedisLockerCache,
)
from audifi_nft.adapters.storage_local import LocalStorage
from audifi_nft.api.dependencies import NftContext
from audifi_nft.api.locker import cached_page, view_page
from audifi_nft.application import NftApplication
from audifi_nft.domain.locker import ACTIVE, CANCELED
from audifi_nft.projections.locker import Locker
from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table

console = Console()
rows: list[tuple[str, str, str, str]] = []
READERS = 16
ARTIST = uuid.uuid4()
TIERS = (("basic", "Basic", 500), ("gold", "Gold", 1_500))


def record(name: str, figure: str, baseline: str, ratio: float | None) -> None:
    rows.append((name, figure, baseline, "" if ratio is None else f"{ratio:.2f}"))
    console.print(
        f"[bold]{name}[/bold]: {figure}  |  baseline {baseline}  |  ratio {ratio or 0:.2f}"
    )


async def make_locker(store: EventStore[NftApplication], items: int, subscribers: int) -> list:
    """The hot locker, through the application; the fans who read it."""
    app = store.app
    now = datetime.now(UTC)
    artist = str(ARTIST)
    await store.call(
        app.save_profile,
        ARTIST,
        actor_id=artist,
        actor_is_admin=False,
        name="Bench",
        bio=None,
        avatar_url=None,
        now=now,
    )
    for tier_id, name, cents in TIERS:
        await store.call(
            lambda t=tier_id, n=name, c=cents: app.save(
                app.decide_tier(
                    tier_id=t,
                    artist_id=artist,
                    name=n,
                    currency="USD",
                    price_cents=c,
                    interval="month",
                    at=now,
                )
            )
        )
    chooser = random.Random(7)
    fans = [str(uuid.uuid4()) for _ in range(subscribers)]
    for n, fan in enumerate(fans):
        if n % 10 == 0:
            continue  # no subscription
        status = CANCELED if n % 10 == 1 else ACTIVE
        tier = TIERS[n % 2][0]
        await store.call(
            lambda f=fan, s=status, t=tier, k=n: app.save(
                app.decide_subscription(
                    subscription_id=f"sub_{k}",
                    fan_id=f,
                    artist_id=artist,
                    tier_id=t,
                    status=s,
                    as_of=now,
                )
            )
        )
    for n in range(items):
        unlock = now + timedelta(days=30) if n % 10 == 0 else now - timedelta(hours=n)
        await store.call(
            app.upload_content,
            uuid.uuid4(),
            artist_id=ARTIST,
            actor_id=artist,
            actor_is_admin=False,
            media_type="image",
            title=f"Item {n}",
            description="A bench item " * 4,
            file={
                "key": f"locker/{artist}/{n}",
                "mime": "image/png",
                "size": 1000 + n,
                "sha256": "ab",
            },
            unlock_date=unlock,
            min_tier_id=(None, "basic", "gold")[n % 3],
            metadata={"n": n, "tags": ["bench", "locker"]},
            now=now - timedelta(seconds=items - n),
        )
    chooser.shuffle(fans)
    return fans


async def rate(read: Any, fans: list[str], reads: int) -> float:
    """Pages read per second by READERS concurrent readers, each read as the next fan."""
    per_reader = reads // READERS

    async def reader(r: int) -> None:
        for k in range(per_reader):
            await read(fans[(r * per_reader + k) % len(fans)])

    t = time.perf_counter()
    await asyncio.gather(*(reader(r) for r in range(READERS)))
    return per_reader * READERS / (time.perf_counter() - t)


async def bench_reads(settings: Settings, redis_url: str, args: argparse.Namespace) -> None:
    store = await open_event_store("nft", NftApplication, settings)
    pool = await store.create_pool(max_size=settings.pool_size)
    runner = ProjectionRunner(store, Locker())
    redis_prefix = f"{settings.db_prefix}nft:locker:v{Locker.version}"
    caches: dict[str, LockerCache] = {}
    try:
        await runner.start()
        t = time.perf_counter()
        fans = await make_locker(store, args.items, args.subscribers)
        last = await pool.fetchval(f'SELECT max(notification_id) FROM "{store.table}"')
        await runner.wait(last, timeout=120)
        made = time.perf_counter() - t
        context = NftContext(
            settings=settings,
            storage=LocalStorage(Path(settings.var_dir) / "nft-media"),
            runtime=SimpleNamespace(pool=pool, store=store),  # type: ignore[arg-type]
        )
        artist = str(ARTIST)

        def as_fan(fan: str) -> Identity:
            return Identity(fan, frozenset({"fan"}))

        async def from_view(fan: str) -> Any:
            return await view_page(context, as_fan(fan), artist, "all", DEFAULT_LIMIT, None)

        def from_cache(cache: LockerCache) -> Any:
            async def read(fan: str) -> Any:
                return await cached_page(
                    context, cache, as_fan(fan), artist, "all", DEFAULT_LIMIT, None
                )

            return read

        caches["memory"] = MemoryLockerCache()
        caches["Redis"] = RedisLockerCache.from_url(redis_url, redis_prefix)
        runner.projection.listen(caches["memory"].invalidate)  # type: ignore[attr-defined]
        runner.projection.listen(caches["Redis"].invalidate)  # type: ignore[attr-defined]
        for cache in caches.values():
            await cache.start()
            for fan in fans:  # hot: every fan's entry warm
                await from_cache(cache)(fan)
            for fan in fans[:50]:  # the same pages as the view's
                cached = msgspec.json.encode(await from_cache(cache)(fan))
                assert cached == msgspec.json.encode(await from_view(fan)), fan
        page = await from_view(fans[0])
        console.print(
            f"locker: {args.items} items, {args.subscribers} fans (made and projected in "
            f"{made:.1f} s); a page holds {len(page.items)} items"
        )

        baseline = await rate(from_view, fans, args.reads)
        for name, cache in caches.items():
            hits = cache.hits
            figure = await rate(from_cache(cache), fans, args.reads)
            assert cache.hits - hits >= args.reads // READERS * READERS  # all from the cache
            record(
                f"hot locker pages read, cached in {name} ({READERS} readers)",
                f"{figure:,.0f} pages/s",
                f"the view, rule in SQL {baseline:,.0f} pages/s",
                figure / baseline,
            )
    finally:
        for cache in caches.values():
            await cache.close()
        await runner.stop()
        await pool.close()
        store.close()
        redis = Redis.from_url(redis_url)
        try:
            keys = [k async for k in redis.scan_iter(match=f"{redis_prefix}:*", count=1000)]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=1_000)
    parser.add_argument("--reads", type=int, default=8_000, help="pages read per measurement")
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL") or LOCAL_DEFAULTS["DATABASE_URL"][0]
    redis_url = os.environ.get("REDIS_URL") or LOCAL_DEFAULTS["REDIS_URL"][0]
    prefix = f"audifi_lbench{uuid.uuid4().hex[:6]}_"
    gc.freeze()
    try:
        settings = Settings(
            database_url=server,
            db_prefix=prefix,
            var_dir=Path("var/bench"),
            pool_size=int(os.environ.get("AUDIFI_POOL_SIZE", "8")),
        )
        await bench_reads(settings, redis_url, args)
    finally:
        await drop_databases(server, prefix)
    table = Table("benchmark", "figure", "baseline (same run)", "ratio", title="audifi nft lockers")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
