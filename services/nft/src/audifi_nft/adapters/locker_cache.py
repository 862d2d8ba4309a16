"""Hot lockers cached: in Redis when REDIS_URL is set (shared by the service's replicas), else in
this process's memory; invalidated by the locker view's events once they committed.

**Facts, never decisions.** The cache keeps what the `locker` view says, as `LOCKER_FACTS` and
`FAN_TIERS` read it (projections/locker.py): per artist, the locker's items newest first, each
with the name and rank (currency, price per year) of the tier it needs; per (artist, fan), the
ranks of the fan's active subscriptions' tiers. Whether an item is shown or opens is decided at
every read, in Python (`domain.locker.shown` / `opens`, the same rule as the SQL's `VISIBLE` /
`OPENS`, tested against it), with the app's clock: an item whose unlock date is still to come
is in the cache but is never served before its time, and no cached entry says "open".

**Invalidation.** The `Locker` projection's handlers tell which artists' lockers (an item
uploaded, rescheduled or described; a tier seen or archived) and which fans' subscriptions to
which artist (seen, changed) they changed; after the page's transaction commits the runner
hands that to `invalidate` (the kit's after-commit hook), before its position moves, so a read
that waited for the event finds the cache already invalidated: a canceled or past-due
subscription closes access within one consumer round trip, as without the cache.

**The race, and why generations.** A reader that missed the cache reads PostgreSQL, then writes
what it read. If the view's transaction commits and the invalidation runs between those two
steps, the reader writes the old rows *after* the invalidation, and they would stay until their
TTL. Deleting keys cannot stop that; compare-and-set on the value (WATCH/MULTI, or a Lua check
per write) would, at the price of a transaction per write. Instead every key a reader reads or
writes carries generation tokens read *before* the database: an epoch (the whole cache), the
artist's generation (their locker) and the (artist, fan) generation (that fan's
subscriptions). Invalidation sets a new random token; a late writer then writes under the
token it read, which nobody reads any more (it expires by its TTL). Readers fetch the tokens
and both entries in one Lua round trip; a missing token is created in that script. Tokens are
random, not counters, so a token lost (evicted, expired: one day) and created again never
repeats an old one. In memory the same check is a comparison before the write.

An artist's generation covers their fans' entries too (a fan's entry holds tier ranks, which a
tier seen changes): a tier is its artist's (payment's tiers, and nft checks an item's tier is
the artist's). Bounds: every entry expires after `ttl` (60 s) whatever happens — a backstop
for what no event tells (an operator's `audifi replay`, a process killed between commit and
invalidation); key names carry the view's version, so a view whose code changed never reads
an old shape; a process starting (whose runner may have applied events before it listened)
sets a new epoch.

**Redis down.** Reads fall back to PostgreSQL (the facts from the view, the same rule), logged
once per outage, and skip Redis for `retry_after` seconds. An invalidation Redis did not take
is made good by a new epoch before this process reads Redis again; until then it reads
PostgreSQL. (Another replica reading a Redis this one cannot reach may serve what the lost
invalidation should have removed, for at most the TTL.)

**Memory** is right only where the process that serves is the one whose runner applies the
view: embedded, or a sole writer (one replica; AUDIFI_STORE_SOLE_WRITER). Replicas without
Redis get no cache (each would miss the invalidations applied by the others).

Standalone Redis: the read script builds entry keys from the tokens it reads (not for Redis
Cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

import asyncpg
import msgspec
from audifi_kit.runtime import RUNTIME_STATE_KEY
from audifi_kit.settings import Settings

from audifi_nft.domain.locker import TierRank, opens, shown
from audifi_nft.projections.locker import FAN_TIERS, ITEM_ARTIST, LOCKER_FACTS, Locker

if TYPE_CHECKING:
    from litestar import Litestar
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

TTL_SECONDS = 60.0
TOKEN_TTL_SECONDS = 86_400
RETRY_AFTER_SECONDS = 5.0


# -- the facts -------------------------------------------------------------------------------


class FanFacts(msgspec.Struct, frozen=True, array_like=True):
    """A fan's active subscriptions to one artist: their tiers' ranks."""

    tiers: tuple[TierRank, ...] = ()


NO_SUBSCRIPTION = FanFacts()


class ItemFacts(msgspec.Struct, frozen=True, array_like=True):
    """One item as the view has it, with the name and rank of the tier it needs (None: it needs
    none, or nft does not know that tier)."""

    id: UUID
    artist_id: str
    media_type: str
    title: str
    description: str
    metadata: dict[str, Any]
    unlock_date: datetime
    min_tier_id: str | None
    tier_name: str | None
    tier: TierRank | None
    file_key: str
    mime: str
    size: int
    uploaded_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, r: Any) -> ItemFacts:
        """From a row of `LOCKER_FACTS` (or any row with its columns)."""
        currency = r["tier_currency"]
        return cls(
            id=UUID(bytes=r["id"].bytes),  # a plain UUID, not asyncpg's
            artist_id=r["artist_id"],
            media_type=r["media_type"],
            title=r["title"],
            description=r["description"],
            metadata=msgspec.json.decode(r["metadata"]),
            unlock_date=r["unlock_date"],
            min_tier_id=r["min_tier_id"],
            tier_name=r["tier_name"],
            tier=None if currency is None else TierRank(currency, r["tier_annual_price"]),
            file_key=r["file_key"],
            mime=r["mime"],
            size=r["size"],
            uploaded_at=r["uploaded_at"],
            updated_at=r["updated_at"],
        )

    def shown(self, now: datetime) -> bool:
        return shown(self.unlock_date, now)

    def opens(self, fan: FanFacts, now: datetime) -> bool:
        return opens(self.unlock_date, self.min_tier_id, self.tier, fan.tiers, now)


class LockerFacts(msgspec.Struct, frozen=True, array_like=True):
    """An artist's locker: their items, newest first (uploaded_at, id descending)."""

    artist_id: str
    items: tuple[ItemFacts, ...]

    def item(self, item_id: UUID) -> ItemFacts | None:
        return next((i for i in self.items if i.id == item_id), None)


class FactsSource(Protocol):
    """Where the facts come from on a miss (the view, in PostgreSQL)."""

    async def locker(self, artist_id: str) -> LockerFacts: ...

    async def fan(self, artist_id: str, fan_id: str) -> FanFacts: ...

    async def artist_of(self, item_id: UUID) -> str | None: ...


class ViewFacts:
    """The facts as the `locker` view holds them."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def locker(self, artist_id: str) -> LockerFacts:
        rows = await self.pool.fetch(LOCKER_FACTS, artist_id)
        return LockerFacts(artist_id, tuple(ItemFacts.of(r) for r in rows))

    async def fan(self, artist_id: str, fan_id: str) -> FanFacts:
        rows = await self.pool.fetch(FAN_TIERS, fan_id, artist_id)
        if not rows:
            return NO_SUBSCRIPTION
        return FanFacts(tuple(TierRank(r["currency"], r["annual_price"]) for r in rows))

    async def artist_of(self, item_id: UUID) -> str | None:
        return await self.pool.fetchval(ITEM_ARTIST, item_id)


# -- the port ---------------------------------------------------------------------------------


class LockerCache:
    """The port: the facts of a locker (and of a fan's subscriptions to its artist), from the
    cache or else from `source` (then kept, unless invalidated meanwhile)."""

    def __init__(self, *, ttl: float, timer: Callable[[], float]) -> None:
        self.ttl = ttl
        self.timer = timer
        self.closed = False
        self._loading: dict[tuple[str, Any], asyncio.Future[LockerFacts]] = {}
        self.hits = self.misses = 0

    async def facts(
        self, artist_id: str, fan_id: str | None, source: FactsSource
    ) -> tuple[LockerFacts, FanFacts | None]:
        """The artist's locker and, for a fan (None: the artist or an admin, who see all), the
        fan's subscriptions to that artist."""
        raise NotImplementedError

    async def artist_of(self, item_id: UUID, source: FactsSource) -> str | None:
        """The artist of an item (immutable: kept long), None when the view has no such item
        (never kept)."""
        raise NotImplementedError

    async def invalidate(self, artists: Iterable[str], fans: Iterable[tuple[str, str]]) -> None:
        """The `Locker` projection's listener: these lockers, and these (artist, fan)
        subscriptions, changed (and committed)."""
        raise NotImplementedError

    async def start(self) -> None:
        """Before the first read: a new epoch (what was applied before we listened)."""

    async def close(self) -> None:
        self.closed = True

    async def _load(self, artist_id: str, stamp: Any, source: FactsSource) -> LockerFacts:
        """One read of the view per (locker, generation) in this process at a time: a hot
        locker just invalidated is read once, not by every waiting request."""
        key = (artist_id, stamp)
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(source.locker(artist_id))
            self._loading[key] = loading

            def done(f: asyncio.Future[LockerFacts], key: tuple[str, Any] = key) -> None:
                if self._loading.get(key) is f:
                    del self._loading[key]
                if not f.cancelled():
                    f.exception()  # retrieved: its waiters may all be gone

            loading.add_done_callback(done)
        self.misses += 1
        return await asyncio.shield(loading)


def _bounded_put(entries: dict[Any, Any], key: Any, value: Any, limit: int) -> None:
    entries.pop(key, None)
    entries[key] = value
    if len(entries) > limit:
        del entries[next(iter(entries))]  # the oldest written


class MemoryLockerCache(LockerCache):
    """This process's memory: the embedded platform, or a sole writer."""

    def __init__(
        self,
        *,
        ttl: float = TTL_SECONDS,
        max_lockers: int = 10_000,
        max_fans: int = 200_000,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(ttl=ttl, timer=timer)
        self.max_lockers = max_lockers
        self.max_fans = max_fans
        self._epoch = 0
        self._generations = itertools.count(1)
        self._gens: dict[str, int] = {}
        self._fan_gens: dict[tuple[str, str], int] = {}
        self._lockers: dict[str, tuple[tuple[int, int], LockerFacts, float]] = {}
        self._fans: dict[tuple[str, str], tuple[tuple[int, int, int], FanFacts, float]] = {}
        self._artists: dict[UUID, str] = {}

    def _stamp(self, artist_id: str) -> tuple[int, int]:
        return (self._epoch, self._gens.get(artist_id, 0))

    def _fan_stamp(self, artist_id: str, fan_id: str) -> tuple[int, int, int]:
        return (*self._stamp(artist_id), self._fan_gens.get((artist_id, fan_id), 0))

    async def facts(
        self, artist_id: str, fan_id: str | None, source: FactsSource
    ) -> tuple[LockerFacts, FanFacts | None]:
        stamp = self._stamp(artist_id)
        now = self.timer()
        kept = self._lockers.get(artist_id)
        if kept is not None and kept[0] == stamp and kept[2] > now:
            self.hits += 1
            locker = kept[1]
        else:
            locker = await self._load(artist_id, stamp, source)
            if self._stamp(artist_id) == stamp:  # not invalidated while we read
                _bounded_put(
                    self._lockers,
                    artist_id,
                    (stamp, locker, self.timer() + self.ttl),
                    self.max_lockers,
                )
        if fan_id is None:
            return locker, None
        fan_stamp = self._fan_stamp(artist_id, fan_id)
        fan_kept = self._fans.get((artist_id, fan_id))
        if fan_kept is not None and fan_kept[0] == fan_stamp and fan_kept[2] > now:
            return locker, fan_kept[1]
        fan = await source.fan(artist_id, fan_id)
        if self._fan_stamp(artist_id, fan_id) == fan_stamp:
            _bounded_put(
                self._fans,
                (artist_id, fan_id),
                (fan_stamp, fan, self.timer() + self.ttl),
                self.max_fans,
            )
        return locker, fan

    async def artist_of(self, item_id: UUID, source: FactsSource) -> str | None:
        artist_id = self._artists.get(item_id)
        if artist_id is None:
            artist_id = await source.artist_of(item_id)
            if artist_id is not None:
                _bounded_put(self._artists, item_id, artist_id, self.max_fans)
        return artist_id

    async def invalidate(self, artists: Iterable[str], fans: Iterable[tuple[str, str]]) -> None:
        if len(self._gens) + len(self._fan_gens) > self.max_fans:
            self._forget_generations()
        for artist_id in artists:
            self._gens[artist_id] = next(self._generations)
            self._lockers.pop(artist_id, None)
        for pair in fans:
            self._fan_gens[pair] = next(self._generations)
            self._fans.pop(pair, None)

    async def start(self) -> None:
        self._forget_generations()

    def _forget_generations(self) -> None:
        """A new epoch: every stamp read before is stale, so the generations may go."""
        self._epoch += 1
        self._gens.clear()
        self._fan_gens.clear()
        self._lockers.clear()
        self._fans.clear()


# -- Redis ------------------------------------------------------------------------------------

# KEYS: the epoch's token, the artist's, [the (artist, fan)'s]. ARGV: a fresh token (for any
# of them missing), the tokens' TTL, the locker entry's key without its stamp, the stamp whose
# locker the caller holds already ('' none: then it is not sent again), the fan entry's key
# without its stamp. Returns the stamp ("epoch.artist"), the locker entry (nil when missing or
# when the caller holds it), the fan's token, the fan entry.
_READ = """
local function token(key)
  local t = redis.call('GET', key)
  if not t then
    t = ARGV[1]
    redis.call('SET', key, t, 'EX', ARGV[2])
  end
  return t
end
local stamp = token(KEYS[1]) .. '.' .. token(KEYS[2])
local locker = false
if stamp ~= ARGV[4] then locker = redis.call('GET', ARGV[3] .. stamp) end
local fan_token = false
local fan = false
if #KEYS > 2 then
  fan_token = token(KEYS[3])
  fan = redis.call('GET', ARGV[5] .. stamp .. ':' .. fan_token)
end
return {stamp, locker, fan_token, fan}
"""

_locker_decoder = msgspec.msgpack.Decoder(LockerFacts)
_fan_decoder = msgspec.msgpack.Decoder(FanFacts)
_encoder = msgspec.msgpack.Encoder()


def _token() -> str:
    return secrets.token_hex(8)


class RedisLockerCache(LockerCache):
    """Redis (shared by the replicas), keys under `prefix`; a locker read there is also kept
    decoded in this process under its stamp (`max_local` of them), so a hot locker's items
    cross the network only when its generation changes."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        ttl: float = TTL_SECONDS,
        token_ttl: int = TOKEN_TTL_SECONDS,
        retry_after: float = RETRY_AFTER_SECONDS,
        max_local: int = 1_000,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(ttl=ttl, timer=timer)
        self.redis = redis
        self.prefix = prefix
        self.token_ttl = token_ttl
        self.retry_after = retry_after
        self.max_local = max_local
        self._read = redis.register_script(_READ)
        self._local: dict[str, tuple[str, LockerFacts, float]] = {}
        self._artists: dict[UUID, str] = {}
        self._down_until = 0.0
        self._down = False
        # Invalidations Redis did not take, and how many of them a new epoch made good: while
        # some are not, this process sets a new epoch before it reads Redis again.
        self._lost = 0
        self._made_good = 0

    @classmethod
    def from_url(cls, url: str, prefix: str, **kwargs: Any) -> RedisLockerCache:
        from redis.asyncio import Redis

        # Short timeouts: a Redis outage must cost a read milliseconds before PostgreSQL.
        return cls(
            Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5), prefix, **kwargs
        )

    # keys
    def _epoch_key(self) -> str:
        return f"{self.prefix}:epoch"

    def _gen_key(self, artist_id: str) -> str:
        return f"{self.prefix}:gen:{artist_id}"

    def _fan_gen_key(self, artist_id: str, fan_id: str) -> str:
        return f"{self.prefix}:fgen:{artist_id}:{fan_id}"

    def _locker_key(self, artist_id: str) -> str:  # + stamp
        return f"{self.prefix}:locker:{artist_id}:"

    def _fan_key(self, artist_id: str, fan_id: str) -> str:  # + stamp:fan token
        return f"{self.prefix}:fan:{artist_id}:{fan_id}:"

    def _item_key(self, item_id: UUID) -> str:
        return f"{self.prefix}:item:{item_id}"

    # health
    def _usable(self) -> bool:
        return not self.closed and self.timer() >= self._down_until

    def _failed(self, what: str, exc: BaseException) -> None:
        self._down_until = self.timer() + self.retry_after
        if not self._down:
            self._down = True
            log.warning(
                "locker cache: Redis failed (%s: %s) %s; reading PostgreSQL, trying again in "
                "%.0f s",
                type(exc).__name__,
                exc,
                what,
                self.retry_after,
            )

    def _answered(self) -> None:
        if self._down:
            self._down = False
            log.warning("locker cache: Redis answers again")

    async def _new_epoch(self) -> None:
        lost = self._lost
        self._local.clear()
        await self.redis.set(self._epoch_key(), _token(), ex=self.token_ttl)
        self._made_good = lost  # (one lost meanwhile is made good by the next epoch)

    # the port
    async def facts(
        self, artist_id: str, fan_id: str | None, source: FactsSource
    ) -> tuple[LockerFacts, FanFacts | None]:
        if not self._usable():
            return await self._uncached(artist_id, fan_id, source)
        try:
            if self._lost > self._made_good:
                await self._new_epoch()
            local = self._local.get(artist_id)
            if local is not None and local[2] <= self.timer():
                local = None
            keys = [self._epoch_key(), self._gen_key(artist_id)]
            if fan_id is not None:
                keys.append(self._fan_gen_key(artist_id, fan_id))
            raw_stamp, raw_locker, raw_fan_token, raw_fan = await self._read(
                keys=keys,
                args=[
                    _token(),
                    self.token_ttl,
                    self._locker_key(artist_id),
                    "" if local is None else local[0],
                    "" if fan_id is None else self._fan_key(artist_id, fan_id),
                ],
            )
        except Exception as exc:  # Redis down, or slow: never a failed read
            self._failed("reading a locker", exc)
            return await self._uncached(artist_id, fan_id, source)
        self._answered()
        stamp = raw_stamp.decode()
        writes: list[tuple[str, bytes]] = []
        if local is not None and local[0] == stamp:
            self.hits += 1
            locker = local[1]
        elif raw_locker is not None:
            self.hits += 1
            locker = _locker_decoder.decode(raw_locker)
            self._keep_local(artist_id, stamp, locker)
        else:
            locker = await self._load(artist_id, stamp, source)
            writes.append((self._locker_key(artist_id) + stamp, _encoder.encode(locker)))
            self._keep_local(artist_id, stamp, locker)
        fan: FanFacts | None = None
        if fan_id is not None:
            if raw_fan is not None:
                fan = _fan_decoder.decode(raw_fan)
            else:
                fan = await source.fan(artist_id, fan_id)
                key = f"{self._fan_key(artist_id, fan_id)}{stamp}:{raw_fan_token.decode()}"
                writes.append((key, _encoder.encode(fan)))
        if writes:
            await self._write(writes)
        return locker, fan

    def _keep_local(self, artist_id: str, stamp: str, locker: LockerFacts) -> None:
        _bounded_put(
            self._local, artist_id, (stamp, locker, self.timer() + self.ttl), self.max_local
        )

    async def _write(self, writes: list[tuple[str, bytes]]) -> None:
        """Entries under the stamps read before the view was: if invalidated meanwhile, under
        stamps nobody reads any more."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, value in writes:
                    pipe.set(key, value, px=int(self.ttl * 1000))
                await pipe.execute()
        except Exception as exc:
            self._failed("keeping a locker", exc)

    async def _uncached(
        self, artist_id: str, fan_id: str | None, source: FactsSource
    ) -> tuple[LockerFacts, FanFacts | None]:
        locker = await source.locker(artist_id)
        return locker, None if fan_id is None else await source.fan(artist_id, fan_id)

    async def artist_of(self, item_id: UUID, source: FactsSource) -> str | None:
        artist_id = self._artists.get(item_id)
        if artist_id is not None:
            return artist_id
        if self._usable():
            try:
                raw = await self.redis.get(self._item_key(item_id))
            except Exception as exc:
                self._failed("reading an item's artist", exc)
            else:
                self._answered()
                if raw is not None:
                    artist_id = raw.decode()
                    _bounded_put(self._artists, item_id, artist_id, 100_000)
                    return artist_id
        artist_id = await source.artist_of(item_id)
        if artist_id is not None:
            _bounded_put(self._artists, item_id, artist_id, 100_000)
            if self._usable():
                with contextlib.suppress(Exception):
                    await self.redis.set(self._item_key(item_id), artist_id, ex=self.token_ttl)
        return artist_id

    async def invalidate(self, artists: Iterable[str], fans: Iterable[tuple[str, str]]) -> None:
        artists, fans = list(artists), list(fans)
        for artist_id in artists:
            self._local.pop(artist_id, None)
        if self.closed or not (artists or fans):
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for artist_id in artists:
                    pipe.set(self._gen_key(artist_id), _token(), ex=self.token_ttl)
                for artist_id, fan_id in fans:
                    pipe.set(self._fan_gen_key(artist_id, fan_id), _token(), ex=self.token_ttl)
                await pipe.execute()
        except Exception as exc:
            # Made good by a new epoch before this process reads Redis again.
            self._lost += 1
            self._local.clear()
            self._failed("invalidating lockers", exc)

    async def start(self) -> None:
        try:
            await self._new_epoch()
        except Exception as exc:
            self._lost += 1
            self._failed("starting", exc)

    async def close(self) -> None:
        await super().close()
        await self.redis.aclose()


# -- wiring -----------------------------------------------------------------------------------


def locker_cache(settings: Settings) -> LockerCache | None:
    """The cache the settings choose (see the module): Redis when REDIS_URL is set, memory for
    a sole writer, else none."""
    prefix = f"{settings.db_prefix}nft:locker:v{Locker.version}"
    if settings.redis_url:
        return RedisLockerCache.from_url(settings.redis_url, prefix)
    if settings.sole_writer:
        return MemoryLockerCache()
    log.warning(
        "locker cache off: replicas (AUDIFI_STORE_SOLE_WRITER=n) need REDIS_URL to share one"
    )
    return None


def caching_lockers(cache: LockerCache | None) -> Callable[[Litestar], Any]:
    """A lifespan: while the app serves, the locker view's commits invalidate `cache`, opened
    with a new epoch (the view's runner started before it listened) and closed at the end."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if cache is None:
            yield
            return
        locker: Locker = app.state[RUNTIME_STATE_KEY].projections[Locker.name].projection
        locker.listen(cache.invalidate)
        await cache.start()
        try:
            yield
        finally:
            locker.listeners.remove(cache.invalidate)
            await cache.close()

    return lifespan
