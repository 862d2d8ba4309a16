"""Wiring: settings and bus -> the notify service's Litestar app and background tasks."""

from __future__ import annotations

from audifi_kit.bus import Bus
from audifi_kit.launch import AppSpec, service_app
from audifi_kit.settings import Settings
from audifi_kit.spec import ServiceSpec
from litestar import Litestar

from audifi_notify.application import NotifyApplication

spec = ServiceSpec(name="notify", application=NotifyApplication)


def create_app(settings: Settings, bus: Bus) -> Litestar:
    return service_app(spec, settings, bus)


app = AppSpec(name="notify", factory=create_app)
