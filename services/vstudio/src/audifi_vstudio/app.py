"""Wiring: settings and bus -> the vstudio service's Litestar app and background tasks.

Session rooms are in memory (embedded) or in Redis (REDIS_URL: any replica takes any socket,
frames fan out over pub/sub). `Studio` (studio.py) runs while the app serves: its vote
updates (coalesced per decision) and a clock every `VSTUDIO_CLOCK_SECONDS` (1) closing the
decisions whose `closesAt` came (from the `sessions` read model; closing twice is harmless,
so replicas may run it together). nft is asked about masters and holders at
`settings.service_url("nft")`.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import asyncpg
from audifi_kit.bus import Bus
from audifi_kit.launch import AppSpec, service_app
from audifi_kit.media.storage import LocalStorage, MediaStorage, opened
from audifi_kit.periodic import every
from audifi_kit.runtime import RUNTIME_STATE_KEY, ServiceRuntime
from audifi_kit.settings import Settings
from audifi_kit.spec import ServiceSpec
from litestar import Litestar

from audifi_vstudio.adapters.masters_nft import NftMasters
from audifi_vstudio.adapters.rooms import rooms_for
from audifi_vstudio.api.sessions import ContributionsController, SessionsController
from audifi_vstudio.api.ws import (
    LIMITS_STATE_KEY,
    PRESENCE_STATE_KEY,
    ROOMS_STATE_KEY,
    STUDIO_STATE_KEY,
    ConnectionLimits,
    session_room,
)
from audifi_vstudio.application import VstudioApplication
from audifi_vstudio.outbox import outbox
from audifi_vstudio.presence import PresenceAnnouncer
from audifi_vstudio.projections import PROJECTIONS
from audifi_vstudio.projections.sessions import DECISIONS_DUE
from audifi_vstudio.studio import Masters, Studio, pseudonym_key

log = logging.getLogger(__name__)

CLOCK_ENV = "VSTUDIO_CLOCK_SECONDS"
TRIM_SECONDS = 60.0

spec = ServiceSpec(
    name="vstudio", application=VstudioApplication, projections=PROJECTIONS, outbox=outbox
)


async def close_due(studio: Studio) -> None:
    """The decisions whose `closesAt` came: closed, and their rooms told."""
    assert studio.pool is not None
    try:
        due = await studio.pool.fetch(DECISIONS_DUE, studio.clock())
    except asyncpg.UndefinedTableError:  # the read model is being created
        return
    for row in due:
        try:
            await studio.close_if_due(UUID(str(row["id"])))
        except Exception as exc:  # one decision's failure stops no other
            log.warning("vstudio clock: decision %s not closed (%s)", row["id"], exc)


def _libc_trim() -> Callable[[], object] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc: nothing to hand back this way
        return None


_MALLOC_TRIM = _libc_trim()


async def trim_memory() -> None:
    """Hand freed heap back to the system: after thousands of sockets closed, glibc kept it
    (1.6 GiB of 2.0 GiB after 19,500 sockets, rooms_bench) though nothing used it."""
    if _MALLOC_TRIM is not None:
        await asyncio.to_thread(_MALLOC_TRIM, 0)


def create_app(
    settings: Settings,
    bus: Bus,
    *,
    limits: ConnectionLimits | None = None,
    masters: Masters | None = None,
    clock: Callable[[], datetime] | None = None,
    storage: MediaStorage | None = None,
) -> Litestar:
    """`masters` defaults to nft over HTTP; `clock` (decisions' `closesAt`) to the wall's;
    `storage` (producers' takes) to `media_storage(settings)`."""
    interval = float(settings.extra.get(CLOCK_ENV) or os.environ.get(CLOCK_ENV) or 1)

    @asynccontextmanager
    async def studio_running(app: Litestar) -> AsyncIterator[None]:
        runtime: ServiceRuntime = app.state[RUNTIME_STATE_KEY]
        nft = masters or NftMasters(settings.service_url("nft"))
        studio = Studio(
            runtime.store,
            runtime.group_commit,
            nft,
            app.state[ROOMS_STATE_KEY],
            pseudonym_key(settings),
            clock=clock or (lambda: datetime.now(UTC)),
            pool=runtime.pool,
            storage=storage or media_storage(settings),
        )
        try:
            async with opened(studio.storage):
                await studio.start()
                app.state[STUDIO_STATE_KEY] = studio
                try:
                    async with (
                        every(interval, functools.partial(close_due, studio), name="vstudio clock"),
                        every(TRIM_SECONDS, trim_memory, name="vstudio memory trim"),
                    ):
                        yield
                finally:
                    app.state.pop(STUDIO_STATE_KEY, None)
                    await studio.stop()
        finally:
            if masters is None:
                await nft.close()  # type: ignore[attr-defined]

    return service_app(
        spec,
        settings,
        bus,
        route_handlers=[SessionsController, ContributionsController, session_room],
        lifespan=[session_rooms(settings), studio_running],
        state={LIMITS_STATE_KEY: limits or ConnectionLimits()},
    )


def media_storage(settings: Settings) -> MediaStorage:
    """Producers' takes: in an S3 bucket when AUDIFI_VSTUDIO_S3_BUCKET names one (endpoint
    AUDIFI_VSTUDIO_S3_ENDPOINT, region AUDIFI_VSTUDIO_S3_REGION), else files under
    AUDIFI_VSTUDIO_MEDIA_DIR (default `vstudio-media` in the settings' var_dir)."""

    def setting(name: str) -> str | None:
        return settings.extra.get(name) or os.environ.get(name) or None

    bucket = setting("AUDIFI_VSTUDIO_S3_BUCKET")
    if bucket is not None:
        from audifi_kit.media.s3 import S3Storage

        return S3Storage(
            bucket,
            endpoint_url=setting("AUDIFI_VSTUDIO_S3_ENDPOINT"),
            region=setting("AUDIFI_VSTUDIO_S3_REGION") or "us-east-1",
        )
    folder = setting("AUDIFI_VSTUDIO_MEDIA_DIR")
    return LocalStorage(Path(folder) if folder else Path(settings.var_dir) / "vstudio-media")


def session_rooms(settings: Settings) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The rooms (Redis or in-memory, by settings) open while the app serves."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with rooms_for(settings) as rooms:
            app.state[ROOMS_STATE_KEY] = rooms
            announcer = PresenceAnnouncer(rooms)
            app.state[PRESENCE_STATE_KEY] = announcer
            try:
                yield
            finally:
                await announcer.close()

    return lifespan


# glibc's allocator in vstudio's own process: the memory of closed sockets goes back to the
# system (pymalloc kept +150 % of the baseline after 19,500 closed; rooms_bench).
app = AppSpec(name="vstudio", factory=create_app, environment={"PYTHONMALLOC": "malloc"})
