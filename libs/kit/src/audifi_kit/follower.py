"""The one loop that follows a log: the outbox relay, the projection runners, notify's sender
and the chain indexer each supply a step, and this runs it.

A `LogFollower` repeats its user's `step()` (which reads from the user's stored position and
returns how far it moved) until stopped:

- moved: step again at once (a backlog is drained without waiting);
- not moved, but the last read was *held back* (committed events lie behind a transaction still
  open in this database, recorder.py): look again after 2 ms, doubling up to 50 ms. That
  transaction's end sends no NOTIFY when it wrote no events, so waiting for one would leave the
  follower a whole poll interval behind;
- otherwise: wait for a wake-up — `wakeup` set (by a NOTIFY on the store's channel, by anyone
  else who knows the log moved, or by `stop()`) — or the poll interval (or `idle_timeout()`).

With a `store`, each session opens a connection of its own (`conn`, for the step), LISTENs on
the store's channel, and, with a `leader_lock`, first takes that PostgreSQL advisory lock on
its connection: one follower of that name leads, the others stand by, and when the leader's
connection dies the lock is freed with it and a standby takes over. A failed step ends the
session: it is logged once per streak of failures (the first with its traceback unless it is
one of `expected_errors`), the connection is closed, and a new session starts after a backoff
(`retry_delay`, doubling up to `max_retry_delay`).

`stop()` lets a running step finish (up to `stop_grace` seconds, then cancels it), closes the
session and leaves no task behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import asyncpg

from audifi_kit.eventstore import EventStore
from audifi_kit.notifications import LogWatcher

log = logging.getLogger(__name__)

HELD_BACK_FIRST_WAIT = 0.002
HELD_BACK_MAX_WAIT = 0.05

Step = Callable[[], Awaitable[int]]


class LogFollower:
    def __init__(
        self,
        name: str,
        step: Step,
        *,
        store: EventStore[Any] | None = None,
        begin: Callable[[asyncpg.Connection | None], Awaitable[None]] | None = None,
        leader_lock: str | None = None,
        held_back: Callable[[], bool] | None = None,
        idle_timeout: Callable[[], Awaitable[float]] | None = None,
        poll_interval: float | None = None,
        retry_delay: float = 0.5,
        max_retry_delay: float = 10.0,
        expected_errors: tuple[type[BaseException], ...] = (),
        leader_poll: float = 1.0,
        stop_grace: float = 2.0,
        logger: logging.Logger | None = None,
    ) -> None:
        """`begin(conn)` runs at the start of every session, once leading, before the first
        step (load the stored position there). `conn` is None without a `store`."""
        if leader_lock is not None and store is None:
            raise ValueError("a leader lock is taken on the store's database: pass `store`")
        self.name = name
        self.step = step
        self.store = store
        self.begin = begin
        self.leader_lock = leader_lock
        self.held_back = held_back
        self.idle_timeout = idle_timeout
        if poll_interval is None:
            poll_interval = store.settings.poll_interval if store is not None else 1.0
        self.poll_interval = poll_interval
        self.retry_delay = retry_delay
        self.max_retry_delay = max(max_retry_delay, retry_delay)
        self.expected_errors = expected_errors
        self.leader_poll = leader_poll
        self.stop_grace = stop_grace
        self.log = logger or log
        self.wakeup = asyncio.Event()
        self.conn: asyncpg.Connection | None = None
        self.leading = False
        self.failures = 0  # sessions failed in a row
        self.last_step_at = time.monotonic()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """The follower's task is alive (it ends only when stopped, or by a bug)."""
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Step now rather than at the end of the wait (something says the log moved)."""
        self.wakeup.set()

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self.run(), name=f"follow-{self.name}")

    def request_stop(self) -> None:
        """Ask `run()` to return after the current step (for a caller that owns the task)."""
        self._stopping.set()
        self.wakeup.set()

    async def stop(self, grace: float | None = None) -> None:
        task, self._task = self._task, None
        self.request_stop()
        if task is None:
            return
        try:
            await asyncio.wait({task}, timeout=self.stop_grace if grace is None else grace)
        finally:
            if not task.done():
                task.cancel()  # a step that will not finish (e.g. a broker that is away)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def run(self) -> None:
        """Follow the log until `stop()`: survives database, broker and node outages."""
        while not self._stopping.is_set():
            try:
                await self._session()
            except Exception as exc:
                self._failed(exc)
            else:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._retry_in()):
                    await self._stopping.wait()

    def _retry_in(self) -> float:
        return min(self.retry_delay * 2 ** max(self.failures - 1, 0), self.max_retry_delay)

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        if self.failures > 1:
            self.log.debug("%s failed again (%d in a row): %r", self.name, self.failures, exc)
            return
        expected = isinstance(exc, self.expected_errors)
        self.log.log(
            logging.WARNING if expected else logging.ERROR,
            "%s failed: %s; retrying (every %.2fs at first, backing off to %.1fs)",
            self.name,
            repr(exc) if expected else type(exc).__name__,
            self.retry_delay,
            self.max_retry_delay,
            exc_info=None if expected else exc,
        )

    async def _session(self) -> None:
        async with contextlib.AsyncExitStack() as session:
            session.push_async_callback(self._end_session)
            if self.store is not None:
                self.conn = await self.store.connect()
                if self.leader_lock is not None and not await self._lead():
                    return
                watcher = LogWatcher(
                    self.store.location.asyncpg_dsn,
                    self.store.channel,
                    poll_interval=self.poll_interval,
                    wakeup=self.wakeup,
                )
                await watcher.start()
                session.push_async_callback(watcher.close)
            if self.begin is not None:
                await self.begin(self.conn)
            await self._follow()

    async def _follow(self) -> None:
        held = HELD_BACK_FIRST_WAIT
        while not self._stopping.is_set():
            self.wakeup.clear()  # what arrives during the step makes the next wait return
            moved = await self.step()
            self.last_step_at = time.monotonic()
            if self.failures:
                self.log.info("%s going again after %d failures", self.name, self.failures)
                self.failures = 0
            if moved:
                held = HELD_BACK_FIRST_WAIT
                continue
            if self.held_back is not None and self.held_back():
                timeout = held
                held = min(held * 2, HELD_BACK_MAX_WAIT)
            elif self.idle_timeout is not None:
                timeout = await self.idle_timeout()
            else:
                timeout = self.poll_interval
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.wakeup.wait()

    async def _lead(self) -> bool:
        """Until this follower holds the leader lock (True), or is stopped (False)."""
        assert self.conn is not None and self.leader_lock is not None
        key = zlib.crc32(self.leader_lock.encode())
        while not await self.conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.leader_poll):  # another replica leads
                    await self._stopping.wait()
            if self._stopping.is_set():
                return False
        self.leading = True
        return True

    async def _end_session(self) -> None:
        self.leading = False
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2.0)


class _Moves(Protocol):
    def notify_moves(self, event: asyncio.Event) -> None: ...


class QueueFollower:
    """Drives, one at a time, what a read model lists as waiting: nft's minter (paid
    allocations to mint) and escrow operator (chain projects whose escrow lacks a step).

    Each step fetches `query` (its one argument: `batch`) and awaits `drive(row)` for each
    row, in order; it then waits for the read model to move (`runner.notify_moves`: what was
    driven shows there once applied) or the poll interval. One replica drives at a time (the
    advisory lock `name`): one signer, one nonce sequence. A step that fails on one of
    `expected_errors` (a node out of reach, a race lost) is retried after a short backoff,
    logged without a traceback.
    """

    def __init__(
        self,
        name: str,
        query: str,
        drive: Callable[[asyncpg.Record], Awaitable[object]],
        *,
        store: EventStore[Any],
        pool: asyncpg.Pool,
        runner: _Moves,
        batch: int = 50,
        poll_interval: float = 1.0,
        expected_errors: tuple[type[BaseException], ...] = (),
        logger: logging.Logger | None = None,
    ) -> None:
        self.query = query
        self.drive = drive
        self.pool = pool
        self.batch = batch
        self._follower = LogFollower(
            name,
            self._step,
            store=store,
            leader_lock=name,
            poll_interval=poll_interval,
            retry_delay=poll_interval,
            max_retry_delay=10 * poll_interval,
            expected_errors=expected_errors,
            logger=logger or log,
        )
        runner.notify_moves(self._follower.wakeup)

    async def start(self) -> None:
        await self._follower.start()

    def wake(self) -> None:
        self._follower.wake()

    async def stop(self) -> None:
        await self._follower.stop()

    async def _step(self) -> int:
        try:
            rows = await self.pool.fetch(self.query, self.batch)
        except asyncpg.UndefinedTableError:  # the read model is being created
            return 0
        for row in rows:
            await self.drive(row)
        # Stepping again at once would read the same rows as waiting: the read model's move
        # wakes this follower once what was driven is applied.
        return 0
