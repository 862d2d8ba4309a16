"""Wiring: settings and bus -> the auth service's Litestar app and background tasks."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from audifi_kit.bus import Bus
from audifi_kit.launch import AppSpec, service_app
from audifi_kit.runtime import RUNTIME_STATE_KEY
from audifi_kit.settings import Settings
from audifi_kit.spec import ServiceSpec
from litestar import Litestar

from audifi_auth.api.accounts import AccountController
from audifi_auth.api.dependencies import CONTEXT_STATE_KEY, AuthContext
from audifi_auth.api.jwks import KEYS_STATE_KEY, jwks
from audifi_auth.api.magic_link import MagicLinkController
from audifi_auth.api.preferences import PreferencesController
from audifi_auth.api.session import SessionController
from audifi_auth.api.two_factor import TwoFactorController
from audifi_auth.api.wallets import WalletController
from audifi_auth.application import AuthApplication
from audifi_auth.brute_force import BruteForceGuard
from audifi_auth.config import AuthConfig
from audifi_auth.keys import SigningKeys
from audifi_auth.outbox import outbox
from audifi_auth.projections.accounts import Accounts
from audifi_auth.projections.sessions import Sessions
from audifi_auth.seal_key import NotifySealKey

spec = ServiceSpec(
    name="auth", application=AuthApplication, projections=(Accounts, Sessions), outbox=outbox
)


def create_app(settings: Settings, bus: Bus) -> Litestar:
    keys = SigningKeys.load(os.environ, settings.var_dir)
    config = AuthConfig.from_env(settings)
    context = AuthContext(
        config=config,
        keys=keys,
        guard=BruteForceGuard(
            settings.redis_url,
            window=config.limit_window_seconds,
            prefix=f"{settings.db_prefix}auth:bf",
        ),
        seal_key=NotifySealKey(config.notify_url),
    )

    @asynccontextmanager
    async def configured(app: Litestar) -> AsyncIterator[None]:
        context.runtime = app.state[RUNTIME_STATE_KEY]
        context.app.configure(config)
        try:
            yield
        finally:
            await context.guard.close()
            await context.seal_key.close()

    return service_app(
        spec,
        settings,
        bus,
        route_handlers=[
            jwks,
            AccountController,
            SessionController,
            MagicLinkController,
            WalletController,
            TwoFactorController,
            PreferencesController,
        ],
        lifespan=[configured],
        state={KEYS_STATE_KEY: keys, CONTEXT_STATE_KEY: context},
    )


app = AppSpec(name="auth", factory=create_app)
