"""Real parts for notify's tests.

Notify is served by uvicorn (the real app from `create_app`) on the real PostgreSQL, with the
in-process bus or RabbitMQ (a private exchange and queue per test, deleted after it). Auth is
played by the test: a real Ed25519 key behind a real JWKS for access tokens, and integration
events published onto the bus as auth's relay would publish them. Everything a test needs comes
through fixtures (the root runs pytest with --import-mode=importlib).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import jwt
import pytest
from audifi_events import IntegrationEvent, encode
from audifi_events.auth import AccountRegistered
from audifi_kit.bus import Bus, parking_queue, retry_queue
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.bus.rabbitmq import RabbitBus
from audifi_kit.messages import Message
from audifi_kit.settings import Settings
from audifi_kit.testing import drop_databases, served
from audifi_notify.app import create_app
from audifi_notify.config import NotifyConfig
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from litestar import Litestar, get

# ------------------------------------------------------------------ auth's signing key + JWKS


@dataclass
class Signer:
    kid: str = field(default_factory=lambda: f"k-{uuid.uuid4().hex[:8]}")
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def jwks(self) -> dict[str, Any]:
        jwk = dict(OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True))
        return {"keys": [jwk | {"kid": self.kid, "alg": "EdDSA", "use": "sig"}]}

    def token(self, sub: str, *, roles: tuple[str, ...] = ("fan",)) -> str:
        now = int(time.time())
        claims = {"sub": sub, "roles": list(roles), "sid": "s-1", "iat": now, "exp": now + 300}
        return jwt.encode(claims, self.private, algorithm="EdDSA", headers={"kid": self.kid})

    def headers(self, sub: str, *, roles: tuple[str, ...] = ("fan",)) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, roles=roles)}"}


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
async def jwks_url(signer: Signer) -> AsyncIterator[str]:
    @get("/.well-known/jwks.json", sync_to_thread=False)
    def jwks() -> dict[str, Any]:
        return signer.jwks()

    async with served(Litestar([jwks])) as base:
        yield f"{base}/.well-known/jwks.json"


# ------------------------------------------------------------------------------ settings


@pytest.fixture
async def settings(postgres_url: str, jwks_url: str, tmp_path: Path) -> AsyncIterator[Settings]:
    """Settings on the real server; every database the test creates is dropped after it."""
    prefix = f"audifi_n{uuid.uuid4().hex[:8]}_"
    yield Settings(
        database_url=postgres_url,
        db_prefix=prefix,
        var_dir=tmp_path,
        poll_interval=0.2,
        jwks_url=jwks_url,
        pool_size=2,
    )
    await drop_databases(postgres_url, prefix)


@pytest.fixture
def config() -> NotifyConfig:
    """The embedded mode: a local SMTP sink on a free port, quick retries."""
    return NotifyConfig.from_env({"AUDIFI_SMTP_SINK_PORT": "0", "NOTIFY_RETRY_DELAYS": "0.05,0.1"})


# ---------------------------------------------------------------------------------- buses


async def _delete_rabbit(amqp_url: str, exchange: str, queue: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        for name in (queue, parking_queue(queue), *(retry_queue(queue, i) for i in range(3))):
            await channel.queue_delete(name)
        await channel.exchange_delete(exchange)
    finally:
        await connection.close()


@pytest.fixture(params=["inprocess", "rabbitmq"])
async def bus(request: pytest.FixtureRequest, unique_name: str) -> AsyncIterator[Bus]:
    """Both transports. RabbitMQ gets a private exchange, so other tests' (and other
    services') auth events never reach this test's queue; both are deleted after it."""
    if request.param == "inprocess":
        yield InProcessBus()
        return
    amqp_url = request.getfixturevalue("amqp_url")
    exchange = f"audifi.test.{unique_name}"
    yield RabbitBus(amqp_url, exchange=exchange)
    await _delete_rabbit(amqp_url, exchange, f"notify.auth-events-{unique_name}")
    await _delete_rabbit(amqp_url, exchange, f"notify.payment-events-{unique_name}")
    await _delete_rabbit(amqp_url, exchange, f"notify.nft-events-{unique_name}")
    await _delete_rabbit(amqp_url, exchange, f"notify.coin-events-{unique_name}")


# -------------------------------------------------------------------------------- notify


@dataclass
class Notify:
    """A running notify service and what a test does with it."""

    url: str
    app: Litestar
    bus: Bus
    settings: Settings
    client: httpx.AsyncClient
    signer: Signer
    published: int = 0

    async def publish(self, event: IntegrationEvent, *, message_id: str | None = None) -> str:
        """One auth integration event on the bus, as auth's relay publishes it."""
        self.published += 1
        kind = type(event)
        message = Message(
            message_id=message_id or f"auth-{self.published}",
            routing_key=kind.routing_key,
            body=encode(event),
            schema_version=kind.schema_version,
        )
        await self.bus.publish([message])
        return message.message_id

    async def register(self, name: str = "fan") -> tuple[str, str]:
        """A new account registered as auth announces it: (account id, its e-mail)."""
        account_id = str(uuid.uuid4())
        email = f"{name}-{account_id[:8]}@example.com"
        await self.publish(
            AccountRegistered(
                account_id=account_id,
                email=email,
                wallet_address=None,
                roles=["fan"],
                registered_at=datetime.now(UTC),
            )
        )
        return account_id, email

    async def mail(self, to: str | None = None) -> list[dict[str, Any]]:
        response = await self.client.get("/dev/mail", params={"to": to} if to else None)
        response.raise_for_status()
        return response.json()

    async def notifications(self, sub: str, *, roles=("fan",), **params: Any) -> httpx.Response:
        return await self.client.get(
            "/notifications", params=params, headers=self.signer.headers(sub, roles=roles)
        )

    async def connect(self) -> asyncpg.Connection:
        from audifi_kit.postgres import service_database

        location = await service_database(self.settings, "notify")
        return await asyncpg.connect(location.asyncpg_dsn)

    @property
    def events_table(self) -> str:
        return self.app.state["runtime"].store.table

    @property
    def sender(self) -> Any:
        return self.app.state["notify_sender"]


@pytest.fixture
def start_notify(settings: Settings, signer: Signer, unique_name: str) -> Callable[..., Any]:
    @asynccontextmanager
    async def start(bus: Bus, config: NotifyConfig) -> AsyncIterator[Notify]:
        app = create_app(
            settings,
            bus,
            config=config,
            queue_purpose=f"auth-events-{unique_name}",
        )
        async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield Notify(url, app, bus, settings, client, signer)

    return start


@pytest.fixture
async def notify(
    start_notify: Callable[..., Any], bus: Bus, config: NotifyConfig
) -> AsyncIterator[Notify]:
    async with start_notify(bus, config) as running:
        yield running


# ------------------------------------------------------------------------------- helpers


@pytest.fixture
def now() -> Callable[[], datetime]:
    return lambda: datetime.now(UTC)
