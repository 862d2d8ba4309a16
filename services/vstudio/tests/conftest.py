"""The vstudio app served for real: uvicorn on a loopback port, auth's JWKS served over HTTP
with a real Ed25519 key, PostgreSQL for its event store and, in distributed mode, Redis.

Tests get these through fixtures (the suite imports test modules in importlib mode, so they
cannot import this file); `TYPE_CHECKING` imports of its classes are for annotations only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.settings import Settings
from audifi_kit.testing import TokenSigner, drop_databases, served
from audifi_vstudio.adapters.rooms import Rooms
from audifi_vstudio.api.ws import ROOMS_STATE_KEY, ConnectionLimits
from audifi_vstudio.app import create_app
from litestar import Litestar, get
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect

# A guard against a hung test, never a timing assertion.
PATIENCE = 10.0


SigningKey = TokenSigner  # auth's signing key, as the tests name it


async def delete_keys(redis_url: str, prefix: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


class Client:
    """A WebSocket client speaking the room protocol: JSON text frames."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def frame(self) -> dict[str, Any]:
        async with asyncio.timeout(PATIENCE):
            return json.loads(await self.connection.recv())

    async def frame_of(self, kind: str) -> dict[str, Any]:
        """The next frame of type `kind`, skipping others (another member's traffic)."""
        while (frame := await self.frame())["type"] != kind:
            pass
        return frame

    async def send(self, frame: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(frame))

    async def send_raw(self, text: str) -> None:
        await self.connection.send(text)

    async def close(self) -> None:
        await self.connection.close()


@dataclass
class Vstudio:
    """The running app and how to reach its session rooms."""

    app: Litestar
    port: int
    signing_key: SigningKey
    settings: Settings

    @property
    def rooms(self) -> Rooms:
        return self.app.state[ROOMS_STATE_KEY]

    def url(self, session_id: uuid.UUID) -> str:
        return f"ws://127.0.0.1:{self.port}/vstudio/sessions/{session_id}/ws"

    def bearer(self, user_id: str, *, ttl: float = 300) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.signing_key.token(user_id, ttl=ttl)}"}

    def forged_bearer(self, user_id: str) -> dict[str, str]:
        """Signed with another private key under the real key's id."""
        forger = SigningKey(kid=self.signing_key.kid)
        return {"Authorization": f"Bearer {forger.token(user_id)}"}

    @contextlib.asynccontextmanager
    async def connect(
        self,
        session_id: uuid.UUID,
        user_id: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> AsyncIterator[Client]:
        if headers is None and user_id is not None:
            headers = self.bearer(user_id)
        async with connect(
            self.url(session_id), additional_headers=headers, open_timeout=PATIENCE, **options
        ) as connection:
            yield Client(connection)

    @contextlib.asynccontextmanager
    async def member(
        self,
        session_id: uuid.UUID,
        user_id: str,
        display_name: str | None = None,
        **options: Any,
    ) -> AsyncIterator[Client]:
        """A client that has read the presence frame, joined, and seen its own user_joined."""
        async with self.connect(session_id, user_id, **options) as client:
            assert (await client.frame())["type"] == "presence"
            await client.send({"type": "join", "displayName": display_name})
            while (await client.frame_of("user_joined"))["userId"] != user_id:
                pass
            yield client


@pytest.fixture
def signing_key() -> SigningKey:
    return SigningKey(kid=f"k-{uuid.uuid4().hex[:8]}")


@pytest.fixture
async def jwks_url(signing_key: SigningKey) -> AsyncIterator[str]:
    """What auth publishes at `/.well-known/jwks.json`, over real HTTP."""

    @get("/.well-known/jwks.json", sync_to_thread=False)
    def jwks() -> dict[str, Any]:
        return {"keys": [signing_key.public_jwk()]}

    async with served(Litestar([jwks])) as url:
        yield f"{url}/.well-known/jwks.json"


@pytest.fixture(params=["embedded", "distributed"])
async def settings(
    request: pytest.FixtureRequest, postgres_url: str, jwks_url: str, unique_name: str
) -> AsyncIterator[Settings]:
    """The service's settings in each run mode: in-memory rooms, or Redis rooms."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "distributed" else None
    prefix = f"t{unique_name}_"
    yield Settings(
        database_url=postgres_url, db_prefix=prefix, redis_url=redis_url, jwks_url=jwks_url
    )
    await drop_databases(postgres_url, prefix)
    if redis_url:
        await delete_keys(redis_url, prefix)


@pytest.fixture
def limits() -> ConnectionLimits:
    return ConnectionLimits()


@pytest.fixture
async def vstudio(
    settings: Settings, signing_key: SigningKey, limits: ConnectionLimits
) -> AsyncIterator[Vstudio]:
    app = create_app(settings, InProcessBus(), limits=limits)
    async with served(app) as url:
        yield Vstudio(
            app=app, port=urlsplit(url).port or 0, signing_key=signing_key, settings=settings
        )
