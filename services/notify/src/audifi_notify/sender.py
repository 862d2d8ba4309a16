"""The sender: hands every due notification to the application's `deliver`, as they fall due.

It follows the `notification_history` read model (woken whenever it moves, or when the next
retry is due) and attempts each due notification; what an attempt does is the application's
(`Notifier.deliver`): the aggregate, the claim, the address, the template, the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import structlog
from audifi_kit.projections import ProjectionRunner

from audifi_notify.application import Notifier
from audifi_notify.projections.history import TABLE

log = structlog.get_logger("audifi.notify.sender")


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
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notify-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                seen = self.history.position
                await self.send_due()
                await self._wait(seen)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notify sender failed; going on")
                await asyncio.sleep(self.poll_interval)

    async def _wait(self, seen: int) -> None:
        """Until the read model moves or the next retry is due (the poll interval at most)."""
        timeout = self.poll_interval
        next_due = await self.pool.fetchval(
            f"SELECT min(next_attempt_at) FROM {TABLE} "
            "WHERE status = 'pending' AND next_attempt_at > now()"
        )
        if next_due is not None:
            timeout = max(0.01, min(timeout, (next_due - datetime.now(UTC)).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await self.history.wait(seen + 1, timeout=timeout)

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
