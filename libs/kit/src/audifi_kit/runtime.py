"""One service's moving parts, started and stopped together.

A `ServiceRuntime` opens the service's event store and read-model pool, then runs its outbox
relay, projection runners and inbox workers (from its `ServiceSpec`) until stopped. It also
gives the HTTP app its readiness checks (database, broker) and keeps the lag gauges current.
`lifespan()` plugs all of it into the service's Litestar app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from audifi_kit.bus import Bus, parking_queue
from audifi_kit.eventstore import EventStore, GroupCommit, open_event_store
from audifi_kit.http import metrics
from audifi_kit.http.idempotency import DB_POOL_STATE_KEY
from audifi_kit.inbox import InboxWorker
from audifi_kit.projections import ProjectionRunner
from audifi_kit.relay import OutboxRelay
from audifi_kit.settings import Settings
from audifi_kit.spec import ServiceSpec

log = logging.getLogger(__name__)
RUNTIME_STATE_KEY = "runtime"


class ServiceRuntime:
    def __init__(
        self, spec: ServiceSpec, settings: Settings, bus: Bus, *, gauge_interval: float = 5.0
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.bus = bus
        self.gauge_interval = gauge_interval
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

    def readiness_checks(self) -> dict[str, Callable[[], Any]]:
        return {"database": self.check_database, "broker": self.check_broker}

    async def refresh_gauges(self) -> None:
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
            except Exception as exc:  # the broker is away: readiness reports it, not us
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
