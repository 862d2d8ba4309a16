"""Wiring: settings and bus -> the vstudio service's Litestar app and background tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from audifi_kit.bus import Bus
from audifi_kit.launch import AppSpec, service_app
from audifi_kit.settings import Settings
from audifi_kit.spec import ServiceSpec
from litestar import Litestar

from audifi_vstudio.adapters.rooms import rooms_for
from audifi_vstudio.api.ws import LIMITS_STATE_KEY, ROOMS_STATE_KEY, ConnectionLimits, session_room
from audifi_vstudio.application import VstudioApplication

spec = ServiceSpec(name="vstudio", application=VstudioApplication)


def create_app(settings: Settings, bus: Bus, *, limits: ConnectionLimits | None = None) -> Litestar:
    return service_app(
        spec,
        settings,
        bus,
        route_handlers=[session_room],
        lifespan=[session_rooms(settings)],
        state={LIMITS_STATE_KEY: limits or ConnectionLimits()},
    )


def session_rooms(settings: Settings) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """The rooms (Redis or in-memory, by settings) open while the app serves."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with rooms_for(settings) as rooms:
            app.state[ROOMS_STATE_KEY] = rooms
            yield

    return lifespan


app = AppSpec(name="vstudio", factory=create_app)
