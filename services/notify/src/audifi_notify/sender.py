"""The sender: hands every due notification to the application's `deliver`, as they fall due.

It follows the `notification_history` read model (woken whenever it moves, or when the next
retry is due) and attempts each due notification; what an attempt does is the application's
(`Notifier.deliver`): the aggregate, the claim, the address, the template, the transport.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
from audifi_kit.follower import LogFollower
from audifi_kit.projections import ProjectionRunner

from audifi_notify.application import Notifier
from audifi_notify.projections.history import TABLE


class Sender:
    def __init__(
        self,
        notifier: Notifier,
        pool: asyncpg.Pool,
        history: ProjectionRunner,
        *,
        batch: int = 50,
        concurrency: int = 4,
        poll_interval: float = 1.0,
    ) -> None:
        self.notifier = notifier
        self.pool = pool
        self.history = history
        self.batch = batch
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self._follower = LogFollower(
            "notify sender",
            self._step,
            idle_timeout=self._next_due_in,
            poll_interval=poll_interval,
            retry_delay=poll_interval,
            max_retry_delay=10 * poll_interval,
        )
        history.notify_moves(self._follower.wakeup)

    async def start(self) -> None:
        await self._follower.start()

    async def stop(self) -> None:
        await self._follower.stop()

    async def _step(self) -> int:
        await self.send_due()
        # An attempt shows in the read model only once the history projection applies it:
        # until then the same rows still look due, so wait for the view to move (it wakes
        # the follower) or the next retry to fall due, never step again at once.
        return 0

    async def _next_due_in(self) -> float:
        """Seconds until the next retry is due (the poll interval at most)."""
        next_due = await self.pool.fetchval(
            f"SELECT min(next_attempt_at) FROM {TABLE} "
            "WHERE status = 'pending' AND next_attempt_at > now()"
        )
        if next_due is None:
            return self.poll_interval
        return max(0.01, min(self.poll_interval, (next_due - datetime.now(UTC)).total_seconds()))

    async def send_due(self) -> int:
        """Attempt what is due now; returns how many notifications were attempted."""
        rows = await self.pool.fetch(
            f"SELECT id FROM {TABLE} WHERE status = 'pending' AND next_attempt_at <= now() "
            "ORDER BY next_attempt_at LIMIT $1",
            self.batch,
        )
        slots = asyncio.Semaphore(self.concurrency)

        async def attempt(notification_id: UUID) -> None:
            async with slots:
                await self.notifier.deliver(notification_id)

        await asyncio.gather(*(attempt(row["id"]) for row in rows))
        return len(rows)
