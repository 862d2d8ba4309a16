"""The auth service, served for real on PostgreSQL, with a stand-in notify seal-key endpoint
and a queue bound to `auth.#` on its in-process bus to read what the relay published."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from audifi_auth.app import create_app
from audifi_kit.bus import QueueSpec
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.settings import Settings
from audifi_kit.testing import drop_databases, free_port, served
from auth_support import (
    FAST_ARGON2,
    AuthService,
    StartAuth,
    notify_stand_in,
)
from nacl.public import PrivateKey


@pytest.fixture
async def start_auth(
    postgres_url: str, unique_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[StartAuth]:
    prefix = f"t{unique_name}_"

    @asynccontextmanager
    async def start(
        *, env: dict[str, str] | None = None, notify: bool = True, redis_url: str | None = None
    ) -> AsyncIterator[AuthService]:
        for name, value in {**FAST_ARGON2, **(env or {})}.items():
            monkeypatch.setenv(name, value)
        port, notify_port = free_port(), free_port()
        settings = Settings(
            database_url=postgres_url,
            redis_url=redis_url,
            db_prefix=prefix,
            var_dir=tmp_path,
            ports={"auth": port, "notify": notify_port},
            poll_interval=0.2,
        )
        key = PrivateKey.generate()
        bus = InProcessBus()
        app = create_app(settings, bus)
        async with AsyncExitStack() as stack:
            if notify:
                await stack.enter_async_context(notify_stand_in(key, notify_port))
            url = await stack.enter_async_context(served(app, port=port))
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
            service = AuthService(
                url, client, app, key, f"{postgres_url.rsplit('/', 1)[0]}/{prefix}auth"
            )

            async def collect(delivery: Any) -> None:
                message = delivery.message
                service.published.append((message.routing_key, json.loads(message.body)))
                await delivery.ack()

            await bus.declare_queue(QueueSpec(name=f"{prefix}.watch", bindings=("auth.#",)))
            subscription = await bus.consume(f"{prefix}.watch", collect)
            try:
                yield service
            finally:
                await subscription.cancel()

    yield start
    await drop_databases(postgres_url, prefix)


@pytest.fixture
async def auth(start_auth: StartAuth) -> AsyncIterator[AuthService]:
    async with start_auth(env={"ADMIN_EMAILS": "boss@example.com"}) as service:
        yield service
