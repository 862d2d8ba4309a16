"""What the auth tests share: the served service, its published events, a notify stand-in."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from audifi_kit.testing import eventually, served
from litestar import Litestar, get
from nacl.public import PrivateKey

FAST_ARGON2 = {
    "AUTH_ARGON2_TIME_COST": "1",
    "AUTH_ARGON2_MEMORY_KIB": "64",
    "AUTH_ARGON2_PARALLELISM": "1",
}


@dataclass
class AuthService:
    url: str
    client: httpx.AsyncClient
    app: Litestar
    notify_key: PrivateKey
    dsn: str
    published: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def store(self) -> Any:
        return self.app.state["runtime"].store

    async def sign_up(self, email: str, password: str = "correct horse battery") -> dict:
        response = await self.client.post(
            "/auth/signup", json={"email": email, "password": password}
        )
        assert response.status_code == 201, response.text
        return response.json()

    @staticmethod
    def bearer(tokens: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens['token']}"}

    async def wait_published(
        self, routing_key: str, match: Callable[[dict[str, Any]], bool] = lambda _: True
    ) -> dict[str, Any]:
        def found() -> dict[str, Any]:
            hit = next((b for k, b in self.published if k == routing_key and match(b)), None)
            assert hit is not None, f"{routing_key} not among {self.published}"
            return hit

        return await eventually(found, within=10)

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()


@asynccontextmanager
async def notify_stand_in(key: PrivateKey, port: int, *, up: bool = True) -> AsyncIterator[str]:
    @get("/.well-known/seal-key", sync_to_thread=False)
    def seal_key() -> dict[str, str]:
        return {
            "keyId": "notify-test-1",
            "publicKey": base64.b64encode(bytes(key.public_key)).decode(),
        }

    async with served(Litestar([seal_key]), port=port) as url:
        yield url


StartAuth = Callable[..., AbstractAsyncContextManager[AuthService]]
