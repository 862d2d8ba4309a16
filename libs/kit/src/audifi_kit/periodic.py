"""A service's periodic chores (payment's order sweeper, nft's IPO clock): a step run every
`interval` seconds while an app is up, in its lifespan.

A step that raises is logged and the next one runs (a chore's failure must not end it); leaving
the context cancels the step under way and waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

log = logging.getLogger(__name__)


@asynccontextmanager
async def every(
    interval: float, step: Callable[[], Awaitable[object]], *, name: str
) -> AsyncIterator[asyncio.Task[None]]:
    async def loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await step()
            except Exception as exc:
                log.warning(
                    "%s failed (%s: %s); trying again in %s s",
                    name,
                    type(exc).__name__,
                    exc,
                    interval,
                )

    task = asyncio.create_task(loop(), name=name)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
