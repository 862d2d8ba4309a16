"""Wiring: settings and bus -> the auth service's Litestar app and background tasks."""

from __future__ import annotations

import os

from audifi_kit.bus import Bus
from audifi_kit.launch import AppSpec, service_app
from audifi_kit.settings import Settings
from audifi_kit.spec import ServiceSpec
from litestar import Litestar

from audifi_auth.api.jwks import KEYS_STATE_KEY, jwks
from audifi_auth.api.session import current_session
from audifi_auth.application import AuthApplication
from audifi_auth.keys import SigningKeys

spec = ServiceSpec(name="auth", application=AuthApplication)


def create_app(settings: Settings, bus: Bus) -> Litestar:
    keys = SigningKeys.load(os.environ, settings.var_dir)
    return service_app(
        spec, settings, bus, route_handlers=[jwks, current_session], state={KEYS_STATE_KEY: keys}
    )


app = AppSpec(name="auth", factory=create_app)
