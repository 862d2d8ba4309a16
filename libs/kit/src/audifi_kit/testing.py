"""Pytest plugin: the real PostgreSQL, RabbitMQ and Redis every integration test runs against.

Each comes from its URL in the environment (DATABASE_URL, AMQP_URL, REDIS_URL); else from a
server answering on its default local port; else from testcontainers when a Docker engine
answers. When none is there the test is skipped with the reason — except under CI=true, where
a missing server is a failure, never a silent skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

LOCAL_DEFAULTS = {
    "DATABASE_URL": ("postgresql://postgres@127.0.0.1:5432/postgres", 5432),
    "AMQP_URL": ("amqp://guest:guest@127.0.0.1:5672/", 5672),
    "REDIS_URL": ("redis://127.0.0.1:6379/0", 6379),
}


def _answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _unavailable(what: str) -> None:
    reason = f"{what} is not reachable: set it, start the local server, or run a Docker engine"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def _from_container(var: str) -> tuple[str, object] | None:
    try:
        if var == "DATABASE_URL":
            from testcontainers.postgres import PostgresContainer

            c = PostgresContainer("postgres:16-alpine", driver=None)
            c.start()
            return c.get_connection_url(), c
        if var == "AMQP_URL":
            from testcontainers.rabbitmq import RabbitMqContainer

            c = RabbitMqContainer("rabbitmq:3.13-alpine")
            c.start()
            p = c.get_connection_params()
            return f"amqp://guest:guest@{p.host}:{p.port}/", c
        if var == "REDIS_URL":
            from testcontainers.redis import RedisContainer

            c = RedisContainer("redis:7-alpine")
            c.start()
            return f"redis://{c.get_container_host_ip()}:{c.get_exposed_port(6379)}/0", c
    except Exception:  # no Docker engine: DockerException from the constructor (§10)
        return None
    return None


def _server_url(var: str) -> Iterator[str]:
    url = os.environ.get(var)
    if url:
        yield url
        return
    default, port = LOCAL_DEFAULTS[var]
    if _answers(port):
        yield default
        return
    found = _from_container(var)
    if found is None:
        _unavailable(var)
        return
    url, container = found
    try:
        yield url
    finally:
        container.stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL server (its maintenance database) that tests may create databases in."""
    yield from _server_url("DATABASE_URL")


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    yield from _server_url("AMQP_URL")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    yield from _server_url("REDIS_URL")


async def drop_databases(server_url: str, prefix: str) -> None:
    """Drop every database whose name starts with `prefix` (a test's or a benchmark's own)."""
    import asyncpg

    admin = await asyncpg.connect(server_url)
    try:
        rows = await admin.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "%"
        )
        for row in rows:
            await admin.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    finally:
        await admin.close()


def database_url_with_name(server_url: str, dbname: str) -> str:
    parts = urlsplit(server_url)
    return parts._replace(path=f"/{dbname}").geturl()


@pytest.fixture
async def fresh_database(postgres_url: str) -> AsyncIterator[str]:
    """A new, empty database on the real server, dropped after the test. Yields its URL."""
    import asyncpg

    name = f"audifi_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield database_url_with_name(postgres_url, name)
    finally:
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = open("/proc/sys/net/ipv4/ip_local_port_range").read().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free now, for a server a test starts itself (in this process or another).

    Chosen below the kernel's ephemeral range: a port the kernel handed out for `bind(0)` may
    be taken as the local port of any outgoing connection before the server binds it.
    """
    low, _ = _ephemeral_range()
    for _ in range(200):
        port = random.randrange(10_000, min(low, 32_768))
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


@pytest.fixture
def unique_name() -> str:
    """A short unique token for naming queues, consumers and services inside one test."""
    return uuid.uuid4().hex[:10]


@asynccontextmanager
async def served(app: Any, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on `port` (0: a free one); yields its base URL.

    For tests whose client must reach a real HTTP server (a JWKS URL, a proxied upstream).
    """
    import uvicorn

    from audifi_kit.server import WebSocketSansIO

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        lifespan="on",
        ws=WebSocketSansIO,  # the kit's WebSocket protocol, as `audifi serve` runs it
        ws_per_message_deflate=False,  # as the kit serves (server.py)
    )
    async with serving(config) as url:
        yield url


@asynccontextmanager
async def serving(config: Any) -> AsyncIterator[str]:
    """Serve with uvicorn as `config` (a `uvicorn.Config`) says; yields the base URL once it
    listens, and stops it on the way out."""
    import uvicorn

    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    try:
        started = lambda: server.started or task.done()  # noqa: E731
        await eventually(started, every=0.01, what="uvicorn listening")
        if not server.started:
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://{config.host}:{port}"
    finally:
        server.should_exit = True
        await task


T = TypeVar("T")
# Long enough for a projection or a consumer to catch up on 2 busy CI cores; a check that is
# met returns at once, so only a failing test pays it.
WITHIN = 20.0


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    *,
    within: float = WITHIN,
    every: float = 0.02,
    what: str | None = None,
) -> T:
    """Call `check` (sync or async) until it returns something truthy, and return that.

    A check may also `assert`: an AssertionError counts as "not yet". Any other exception
    fails at once. After `within` seconds, fails naming `what` (else the check) and its last
    answer. For what the code does not signal; where it does (a projection's position, an
    event, a published message), wait on that instead.
    """
    last: object = "no answer yet"
    deadline = time.monotonic() + within
    try:
        async with asyncio.timeout(within):
            while True:
                try:
                    answer = check()
                    if inspect.isawaitable(answer):
                        answer = await answer
                except AssertionError as exc:
                    last = exc
                else:
                    last = answer
                    if answer:
                        return answer
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(every)
    except TimeoutError:
        if time.monotonic() < deadline:
            raise  # the check's own timeout, not ours
    said = f"{type(last).__name__}: {last}" if isinstance(last, BaseException) else repr(last)
    name = what or getattr(check, "__qualname__", repr(check))
    raise AssertionError(f"{name}: not met within {within}s; last answer: {said}") from (
        last if isinstance(last, BaseException) else None
    )


def eventually_sync(
    check: Callable[[], T], *, within: float = WITHIN, every: float = 0.1, what: str | None = None
) -> T:
    """`eventually` for tests with no event loop (the end-to-end tests drive processes): the
    same loop, on an event loop of its own. A check blocks it while it runs; the deadline is
    still checked after each."""
    return asyncio.run(eventually(check, within=within, every=every, what=what))


@dataclass
class TokenSigner:
    """Mints access tokens as auth does (EdDSA, named by `kid`) and publishes the public half
    as a JWKS: for tests of anything that verifies tokens (services, the gateway)."""

    kid: str = field(default_factory=lambda: f"k-{uuid.uuid4().hex[:8]}")
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def public_jwk(self) -> dict[str, Any]:
        jwk = dict(OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True))
        return jwk | {"kid": self.kid, "alg": "EdDSA", "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}

    def claims(self, sub: str, roles: tuple[str, ...] | list[str], ttl: float) -> dict[str, Any]:
        now = int(time.time())
        return {
            "sub": sub,
            "roles": list(roles),
            "sid": f"session-{uuid.uuid4().hex[:8]}",
            "iat": now,
            "exp": now + ttl,
        }

    def token(
        self,
        sub: str = "user-1",
        *,
        roles: tuple[str, ...] | list[str] = ("fan",),
        ttl: float = 300,
        **claims: Any,
    ) -> str:
        payload = self.claims(sub, roles, ttl) | claims
        return jwt.encode(payload, self.private, algorithm="EdDSA", headers={"kid": self.kid})


# ------------------------------------------------------------------------ service bootstraps


def check_runs_in_memory(app: Any) -> None:
    """`app` (a service's `bootstrap.in_memory()`) saves and reads back an aggregate and logs
    it, with no database."""
    from eventsourcing.domain import Aggregate

    probe = Aggregate()
    app.save(probe)
    assert app.repository.get(probe.id).version == 1
    assert len(app.notification_log.select(1, 10)) == 1


async def check_runs_on_postgres(open_store: Any, postgres_url: str, var_dir: Any) -> None:
    """`open_store(settings)` (a service's `bootstrap.on_postgres`) opens the application on
    its own database under a fresh prefix, with an empty log; the database is dropped after."""
    from audifi_kit.settings import Settings

    prefix = f"audifi_b{uuid.uuid4().hex[:8]}_"
    store = await open_store(Settings(database_url=postgres_url, db_prefix=prefix, var_dir=var_dir))
    try:
        assert store.location.dbname.startswith(prefix)
        assert await store.call(store.app.notification_log.select, 1, 10) == []
    finally:
        store.close()
        await drop_databases(postgres_url, prefix)
