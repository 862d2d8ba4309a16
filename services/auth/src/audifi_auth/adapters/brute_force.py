"""Brute-force limits on the credential endpoints: per account (or address) and per client IP.

Fixed windows counted in Redis (INCR + EXPIRE, shared by every replica) when REDIS_URL is set,
else in this process's memory. A key past its limit answers 429 RATE_LIMITED with
Retry-After until its window ends. Keys hold digests, never an e-mail or wallet address.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from audifi_kit.errors import RateLimited


@dataclass(frozen=True, slots=True)
class Budget:
    """`limit` counted events of `name` for `subject` per window."""

    name: str
    subject: str
    limit: int

    def key(self, prefix: str) -> str:
        return f"{prefix}:{self.name}:{self.subject}"


class _Memory:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = asyncio.Lock()

    async def get(self, key: str) -> tuple[int, float]:
        count, until = self._counts.get(key, (0, 0.0))
        now = time.monotonic()
        return (count, until - now) if until > now else (0, 0.0)

    async def incr(self, key: str, window: int) -> tuple[int, float]:
        async with self._lock:
            now = time.monotonic()
            count, until = self._counts.get(key, (0, 0.0))
            if until <= now:
                count, until = 0, now + window
                if len(self._counts) > 100_000:
                    self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            self._counts[key] = (count + 1, until)
            return count + 1, until - now

    async def close(self) -> None:
        pass


class _Redis:
    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url)

    async def get(self, key: str) -> tuple[int, float]:
        async with self._redis.pipeline(transaction=False) as pipe:
            count, ttl = await pipe.get(key).pttl(key).execute()
        return int(count or 0), max(ttl, 0) / 1000

    async def incr(self, key: str, window: int) -> tuple[int, float]:
        async with self._redis.pipeline(transaction=True) as pipe:
            count, _, ttl = await pipe.incr(key).expire(key, window, nx=True).pttl(key).execute()
        return int(count), max(ttl, 0) / 1000

    async def close(self) -> None:
        await self._redis.aclose()


class BruteForceGuard:
    def __init__(self, redis_url: str | None, *, window: int, prefix: str) -> None:
        self.window = window
        self.prefix = prefix
        self._store = _Redis(redis_url) if redis_url else _Memory()

    @staticmethod
    def _refuse(retry_after: float) -> RateLimited:
        seconds = max(1, math.ceil(retry_after))
        return RateLimited(
            "Too many attempts; try again later",
            headers={"Retry-After": str(seconds)},
            details={"retryAfter": seconds},
        )

    async def check(self, *budgets: Budget) -> None:
        """Refuses when a budget is spent already (failures counted by `fail`)."""
        for budget in budgets:
            count, ttl = await self._store.get(budget.key(self.prefix))
            if count >= budget.limit:
                raise self._refuse(ttl)

    async def fail(self, *budgets: Budget) -> None:
        for budget in budgets:
            await self._store.incr(budget.key(self.prefix), self.window)

    async def spend(self, *budgets: Budget) -> None:
        """Counts one attempt against each budget; refuses once one is over its limit."""
        for budget in budgets:
            count, ttl = await self._store.incr(budget.key(self.prefix), self.window)
            if count > budget.limit:
                raise self._refuse(ttl)

    async def close(self) -> None:
        await self._store.close()
