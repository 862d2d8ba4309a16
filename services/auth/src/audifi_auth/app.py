"""Wiring: settings and bus -> the auth service's Litestar app and background tasks."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from audifi_kit.bus import Bus
from audifi_kit.launch import AppSpec, service_app
from audifi_kit.runtime import RUNTIME_STATE_KEY
from audifi_kit.settings import Settings
from audifi_kit.spec import ServiceSpec
from litestar import Litestar

from audifi_auth.adapters.brute_force import BruteForceGuard
from audifi_auth.adapters.seal_key import NotifySealKey
from audifi_auth.adapters.signing_keys import SigningKeys
from audifi_auth.api.accounts import AccountController
from audifi_auth.api.dependencies import CONTEXT_STATE_KEY, AuthContext
from audifi_auth.api.jwks import KEYS_STATE_KEY, jwks
from audifi_auth.api.magic_link import MagicLinkController
from audifi_auth.api.preferences import PreferencesController
from audifi_auth.api.session import SessionController
from audifi_auth.api.two_factor import TwoFactorController
from audifi_auth.api.wallets import WalletController
from audifi_auth.bootstrap import on_postgres
from audifi_auth.config import AuthConfig
from audifi_auth.outbox import outbox
from audifi_auth.projections.accounts import Accounts
from audifi_auth.projections.sessions import Sessions

# What the ops CLI opens (it reads the configuration from the environment); the service itself
# runs a copy built with the configuration `create_app` read.
spec = ServiceSpec(
    name="auth",
    application=on_postgres(),  # type: ignore[arg-type]  # a builder: the kit only calls it
    projections=(Accounts, Sessions),
    outbox=outbox,
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
    async def adapters(app: Litestar) -> AsyncIterator[None]:
        context.runtime = app.state[RUNTIME_STATE_KEY]
        try:
            yield
        finally:
            await context.guard.close()
            await context.seal_key.close()

    return service_app(
        dataclasses.replace(spec, application=on_postgres(config)),  # type: ignore[arg-type]
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
        lifespan=[adapters],
        state={KEYS_STATE_KEY: keys, CONTEXT_STATE_KEY: context},
    )


app = AppSpec(name="auth", factory=create_app)
