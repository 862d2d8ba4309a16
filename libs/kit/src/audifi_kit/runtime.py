"""One service's moving parts, started and stopped together.

A `ServiceRuntime` opens the service's event store and read-model pool, then runs its outbox
relay, projection runners and inbox workers (from its `ServiceSpec`) until stopped. It also
gives the HTTP app its readiness checks (database, broker, projections) and keeps the lag
gauges current. `lifespan()` plugs all of it into the service's Litestar app.

The `projections` check reports, for each projection, the position this process applied, the
log's head, the lag (events committed after that position), the events it parked, and
whether its runner is `stalled`
(behind the log with no step finished for `projection_stall_seconds`: blocked on a lock, or
failing on a transient error) or not `running` (its task died). A stalled or dead runner fails
readiness: the reads that wait for it would time out. Parked events do not — the view moves
on and serves — but they mark the check `degraded`, so the gateway's admin health shows the
service degraded until an operator retries or discards them (`audifi projections ...`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from audifi_kit import metrics
from audifi_kit.app_state import DB_POOL_STATE_KEY
from audifi_kit.bus import Bus, parking_queue
from audifi_kit.eventstore import EventStore, GroupCommit, open_event_store
from audifi_kit.inbox import InboxWorker
from audifi_kit.projections import ProjectionRunner, parked_counts
from audifi_kit.readiness import CheckFailed, CheckReport
from audifi_kit.relay import OutboxRelay
from audifi_kit.settings import Settings
from audifi_kit.spec import ServiceSpec

log = logging.getLogger(__name__)
RUNTIME_STATE_KEY = "runtime"
# Lag is counted, not subtracted (ids have gaps), up to this: beyond it the number only says
# "far behind", and counting further would slow the readiness probe down.
LAG_COUNT_CAP = 1_000_000


class ServiceRuntime:
    def __init__(
        self,
        spec: ServiceSpec,
        settings: Settings,
        bus: Bus,
        *,
        gauge_interval: float = 5.0,
        stall_after: float | None = None,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.bus = bus
        self.gauge_interval = gauge_interval
        self.stall_after = settings.projection_stall_seconds if stall_after is None else stall_after
        self._store: EventStore[Any] | None = None
        self._pool: asyncpg.Pool | None = None
        self.relay: OutboxRelay | None = None
        self.projections: dict[str, ProjectionRunner] = {}
        self.workers: list[InboxWorker] = []
        self._group: GroupCommit | None = None
        self._gauges: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def store(self) -> EventStore[Any]:
        if self._store is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._store

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._pool

    @property
    def group_commit(self) -> GroupCommit:
        """The service's batcher for hot write paths (created on first use)."""
        if self._group is None:
            self._group = GroupCommit(self.store)
        return self._group

    async def start(self) -> None:
        """Connect the bus (the runtime owns it: connected on the loop that serves the app)."""
        await self.bus.connect()
        self._store = await open_event_store(self.name, self.spec.application, self.settings)
        self._pool = await self._store.create_pool(max_size=self.settings.pool_size)
        for projection in self.spec.projections:
            runner = ProjectionRunner(self._store, projection())
            await runner.start()
            self.projections[runner.name] = runner
        if self.spec.outbox is not None:
            self.relay = OutboxRelay(self._store, self.bus, self.spec.outbox)
            await self.relay.start()
        for consumer in self.spec.consumers:
            worker = InboxWorker(
                consumer, self.bus, self._pool, store=self._store, prefetch=self.settings.prefetch
            )
            await worker.start()
            self.workers.append(worker)
        self._gauges = asyncio.create_task(self._keep_gauges(), name=f"gauges-{self.name}")
        log.info("service %s started", self.name)

    async def stop(self) -> None:
        if self._gauges is not None:
            self._gauges.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gauges
        for worker in reversed(self.workers):
            await worker.stop()
        self.workers.clear()
        if self.relay is not None:
            await self.relay.stop()
        for runner in self.projections.values():
            await runner.stop()
        self.projections.clear()
        if self._group is not None:
            await self._group.close()
        if self._pool is not None:
            await self._pool.close()
        if self._store is not None:
            await asyncio.to_thread(self._store.close)
        self._store = self._pool = self._group = None
        await self.bus.close()

    async def check_database(self) -> None:
        await self.pool.fetchval("SELECT 1")

    async def check_broker(self) -> None:
        for worker in self.workers:  # a consumer's queue answers only if the broker does
            await self.bus.queue_depth(worker.consumer.name)
            return
        await self.bus.queue_depth(f"{self.name}.readiness-probe")

    async def projection_report(self) -> dict[str, dict[str, Any]]:
        """Each projection's position, the log's head, lag, parked count, stalled, running.

        Head and lag count every committed event, also those a follower may not read yet
        (behind an open transaction, with the recorder's horizon): a runner that holds that
        transaction itself, blocked, must show behind.
        """
        if not self.projections:
            return {}
        table = '"' + self.store.table.replace('"', '""') + '"'
        head = await self.pool.fetchval(f"SELECT coalesce(max(notification_id), 0) FROM {table}")
        parked = await parked_counts(self.pool)
        now = time.monotonic()
        report: dict[str, dict[str, Any]] = {}
        for name, runner in self.projections.items():
            lag = await self.pool.fetchval(
                f"SELECT count(*) FROM (SELECT FROM {table} WHERE notification_id > $1 "
                "LIMIT $2) AS behind",
                runner.position,
                LAG_COUNT_CAP,
            )
            report[name] = {
                "position": runner.position,
                "head": head,
                "lag": lag,
                "parked": parked.get(name, 0),
                "stalled": lag > 0 and now - runner.last_step_at > self.stall_after,
                "running": runner.running,
            }
        return report

    async def check_projections(self) -> CheckReport:
        report = await self.projection_report()
        failing = sorted(n for n, r in report.items() if r["stalled"] or not r["running"])
        details = {"projections": report}
        if failing:
            raise CheckFailed(f"projections stalled or stopped: {', '.join(failing)}", details)
        return CheckReport(details, degraded=any(r["parked"] for r in report.values()))

    def readiness_checks(self) -> dict[str, Callable[[], Any]]:
        checks: dict[str, Callable[[], Any]] = {
            "database": self.check_database,
            "broker": self.check_broker,
        }
        if self.spec.projections:
            checks["projections"] = self.check_projections
        return checks

    async def refresh_gauges(self) -> None:
        for name, state in (await self.projection_report()).items():
            metrics.projection_lag.labels(self.name, name).set(state["lag"])
            metrics.projection_parked.labels(self.name, name).set(state["parked"])
        if self.relay is not None:
            metrics.relay_lag.labels(self.name, "outbox").set(self.relay.lag)
        for worker in self.workers:
            queue = worker.consumer.name
            metrics.consumer_lag.labels(self.name, queue).set(await self.bus.queue_depth(queue))
            parked = await self.bus.queue_depth(parking_queue(queue))
            metrics.parked_messages.labels(self.name, queue).set(parked)

    async def _keep_gauges(self) -> None:
        while True:
            try:
                await self.refresh_gauges()
            except Exception as exc:  # the broker or database is away: readiness reports it
                log.debug("gauges of %s not refreshed: %s", self.name, exc)
            await asyncio.sleep(self.gauge_interval)

    @asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        """Litestar lifespan: everything runs while the app serves."""
        await self.start()
        app.state[DB_POOL_STATE_KEY] = self.pool
        app.state[RUNTIME_STATE_KEY] = self
        try:
            yield
        finally:
            await self.stop()
