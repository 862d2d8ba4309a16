"""Rate limits per caller and route class, shared by every gateway replica (§7).

The caller is the verified user (`sub` of the access token) on authenticated routes, else the
client's IP address. Each route draws on the budget of its class (`routes.Route.rate_class`);
budgets are counted apart, so logging in does not eat into the budget for reading masters.

Limits come from `AUDIFI_RATE_LIMITS`: comma-separated `class=amount/seconds` pairs, e.g.
`AUDIFI_RATE_LIMITS="default=300/60,auth=20/60"` (300 requests per rolling 60 seconds); the
classes named there replace their defaults below, the others keep them.

The counting is the `limits` package's sliding window counter: the current and the previous
window's counts, the previous one weighted by how much of it still overlaps the rolling window.
Two counters per caller and class whatever the limit (a moving window keeps one entry per
request and reads O(limit) of them on every hit), at the cost of an approximate `Retry-After`.
Its storage is Redis (`REDIS_URL`; keys under `<AUDIFI_GATEWAY_KEY_PREFIX>:ratelimit`) so all
replicas share one count, or process memory when REDIS_URL is unset (embedded mode: one gateway
process).

When Redis fails the request is let through and the failure logged: an outage of the limiter
must not become an outage of the API.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from audifi_kit.errors import RateLimited
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio import ConnectionPool

from audifi_gateway import metrics

log = structlog.get_logger("audifi.gateway.ratelimit")


@dataclass(frozen=True, slots=True)
class RateLimit:
    amount: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.amount}/{self.seconds}"


DEFAULT_LIMITS: Mapping[str, RateLimit] = {
    "default": RateLimit(300, 60),
    "auth": RateLimit(20, 60),
    "write": RateLimit(60, 60),
    "ingest": RateLimit(1200, 60),
    "webhook": RateLimit(600, 60),
}


def parse_rate_limits(text: str) -> dict[str, RateLimit]:
    """`"default=300/60,auth=20/60"` -> {"default": RateLimit(300, 60), ...}."""
    limits: dict[str, RateLimit] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = pair.partition("=")
        amount, _, seconds = value.partition("/")
        try:
            limit = RateLimit(int(amount), int(seconds))
        except ValueError:
            raise ValueError(f"AUDIFI_RATE_LIMITS: {pair!r} is not class=amount/seconds") from None
        if not name.strip() or limit.amount < 1 or limit.seconds < 1:
            raise ValueError(f"AUDIFI_RATE_LIMITS: {pair!r} needs a class and positive numbers")
        limits[name.strip()] = limit
    return limits


class RateLimiter:
    """Counts a caller's requests per class; `hit` raises 429 RATE_LIMITED past the limit."""

    def __init__(self, storage: Storage, limits: Mapping[str, RateLimit]) -> None:
        self.storage = storage
        self._strategy = SlidingWindowCounterRateLimiter(storage)
        self._items: dict[str, RateLimitItem] = {
            name: RateLimitItemPerSecond(limit.amount, limit.seconds, namespace="rl")
            for name, limit in limits.items()
        }
        if "default" not in self._items:
            raise ValueError("the rate limits must name a `default` class")

    @classmethod
    def in_memory(cls, limits: Mapping[str, RateLimit]) -> RateLimiter:
        return cls(MemoryStorage(), limits)

    @classmethod
    def on_redis(
        cls, url: str, pool: ConnectionPool, key_prefix: str, limits: Mapping[str, RateLimit]
    ) -> RateLimiter:
        storage = RedisStorage(
            f"async+{url}",
            implementation="redispy",
            key_prefix=f"{key_prefix}:ratelimit",
            connection_pool=pool,  # the gateway's one Redis pool, not one of its own
        )
        return cls(storage, limits)

    async def hit(self, rate_class: str, caller: str) -> None:
        item = self._items.get(rate_class) or self._items["default"]
        try:
            if await self._strategy.hit(item, rate_class, caller):
                return
            stats = await self._strategy.get_window_stats(item, rate_class, caller)
        except Exception as exc:
            log.warning("rate_limiter_unavailable", error=repr(exc))
            return
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        metrics.rate_limited.labels(rate_class).inc()
        raise RateLimited(
            "Too many requests; retry later",
            details={"limit": item.amount, "windowSeconds": item.get_expiry()},
            headers={"Retry-After": str(retry_after)},
        )
