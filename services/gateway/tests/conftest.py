"""Real parts for the gateway's tests.

Upstream services are small apps built with the kit's service factory (so they answer
`/ready`, `/schema/openapi.json` and the error envelope as real ones do), served by uvicorn on
loopback ports; auth's signing key is a real Ed25519 key behind a real JWKS; the gateway itself
is served by uvicorn; Redis and RabbitMQ come from the kit's pytest plugin (`redis_url`,
`amqp_url`, `unique_name`). Tests get everything through fixtures.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
import pytest
from audifi_gateway.app import create_app
from audifi_gateway.config import GatewayConfig
from audifi_gateway.routes import RouteTable
from audifi_kit.bus import Bus
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.http.factory import create_service_app
from audifi_kit.server import server_config
from audifi_kit.settings import DEFAULT_PORTS, Settings
from audifi_kit.testing import TokenSigner, free_port, served, serving
from litestar import Litestar, Request, Response, WebSocket, get, route, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import FromPath
from litestar.response import Stream
from redis.asyncio import Redis

# ------------------------------------------------------------------------ auth's signing key


# Auth's signing key: mints access tokens and publishes the public half as a JWKS.
Signer = TokenSigner


# ------------------------------------------------------------------------------- upstreams

PUBLIC = {"public": True}
BIG_CHUNK = 64 * 1024
BIG_CHUNKS = 128  # 8 MiB


class Card(msgspec.Struct, rename="camel"):
    """nft's Card: a master's title card."""

    master_id: str
    title: str


# auth's Card: the same component name as nft's, with other fields.
AccountCard = msgspec.defstruct(
    "Card", [("user_id", str), ("email", str)], rename="camel", module="gateway_upstreams.auth"
)


# Paths the tests proxy to, under prefixes the route table sends to nft or auth.
ECHO_PATHS = [
    "/content/{rest:path}",
    "/projects/{rest:path}",
    "/auth/{rest:path}",
    "/users/{rest:path}",
]


@dataclass
class UpstreamLog:
    """The requests the echo upstreams received, as (method, path, X-Request-Id)."""

    seen: list[tuple[str, str, str | None]] = field(default_factory=list)

    def saw(self, request_id: str) -> bool:
        return any(seen_id == request_id for _, _, seen_id in self.seen)


def echo_route(upstream_log: UpstreamLog) -> Any:
    @route(
        ECHO_PATHS,
        http_method=["GET", "POST", "PUT", "PATCH", "DELETE"],
        opt=PUBLIC,
        include_in_schema=False,
        # An upload route names its own limit (a kit app's default is 1 MiB): the gateway's
        # limits are what these tests exercise.
        request_max_body_size=None,
    )
    async def echo(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        """What arrived: method, path, query, headers (in order, repeats kept), the client's
        address and the body's length and SHA-256, read as a stream."""
        upstream_log.seen.append(
            (request.method, request.scope["path"], request.headers.get("x-request-id"))
        )
        digest, length = hashlib.sha256(), 0
        async for chunk in request.stream():
            digest.update(chunk)
            length += len(chunk)
        return Response(
            {
                "method": request.method,
                "path": request.scope["path"],
                "query": request.scope["query_string"].decode(),
                "headers": [[k.decode(), v.decode()] for k, v in request.scope["headers"]],
                "client": request.client.host if request.client else None,
                "bodyLength": length,
                "bodySha256": digest.hexdigest(),
            },
            # Hop-by-hop headers a proxy must not pass on, and one it must.
            headers={
                "Keep-Alive": "timeout=99",
                "Proxy-Authenticate": "Basic",
                "X-Upstream": "yes",
            },
            status_code=200,
        )

    return echo


@get("/masters/{master_id:str}/card", opt=PUBLIC)
async def master_card(master_id: FromPath[str]) -> Card:
    return Card(master_id=master_id, title="Night Drive")


@get("/masters/downloads/big", opt=PUBLIC, include_in_schema=False)
async def big_download() -> Stream:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(BIG_CHUNKS):
            yield bytes([i % 256]) * BIG_CHUNK

    return Stream(chunks(), media_type="application/octet-stream")


@get("/masters/failing", opt=PUBLIC, include_in_schema=False)
async def failing() -> None:
    raise RuntimeError("an upstream bug")


@dataclass
class FeedLog:
    """What nft's endless feed saw: whether its reader went away."""

    reader_gone: bool = False


def nft_app(feed: FeedLog | None = None, upstream_log: UpstreamLog | None = None) -> Litestar:
    feed = feed or FeedLog()

    @get("/masters/feed", opt=PUBLIC, include_in_schema=False)
    async def endless_feed() -> Stream:
        """A response that never ends (as a live feed), until its reader goes away."""

        async def ticks() -> AsyncIterator[bytes]:
            try:
                while True:
                    yield b"tick\n"
                    await asyncio.sleep(0.01)
            finally:
                feed.reader_gone = True

        return Stream(ticks(), media_type="text/plain")

    return create_service_app(
        "nft",
        route_handlers=[
            master_card,
            big_download,
            failing,
            endless_feed,
            echo_route(upstream_log or UpstreamLog()),
        ],
        settings=Settings(),
    )


def auth_app(jwks: dict[str, Any], upstream_log: UpstreamLog) -> Litestar:
    @get("/.well-known/jwks.json", opt=PUBLIC, include_in_schema=False, sync_to_thread=False)
    def keys() -> dict[str, Any]:
        return jwks

    @get("/users/{user_id:str}/card", opt=PUBLIC, sync_to_thread=False)
    def account_card(user_id: FromPath[str]) -> AccountCard:  # type: ignore[valid-type]
        return AccountCard(user_id=user_id, email="fan@example.com")

    return create_service_app(
        "auth",
        route_handlers=[keys, account_card, echo_route(upstream_log)],
        settings=Settings(),
    )


@dataclass
class StudioLog:
    """What vstudio's socket saw: the close code each client connection ended with."""

    closes: list[int | None] = field(default_factory=list)


def vstudio_app(studio: StudioLog) -> Litestar:
    @websocket("/vstudio/sessions/{session_id:str}/ws", opt=PUBLIC)
    async def session_socket(socket: WebSocket[Any, Any, Any], session_id: FromPath[str]) -> None:
        """Greets with what it was sent, echoes text, reverses bytes, closes on request."""
        protocols = socket.scope.get("subprotocols") or []
        await socket.accept(subprotocols=protocols[0] if protocols else None)
        headers = socket.headers
        await socket.send_json(
            {
                "type": "hello",
                "sessionId": session_id,
                "authorization": headers.get("authorization"),
                "userId": headers.get("x-user-id"),
                "roles": headers.get("x-user-roles"),
                "requestId": headers.get("x-request-id"),
                "query": socket.scope["query_string"].decode(),
            }
        )
        try:
            while True:
                message = await socket.receive()
                if message["type"] == "websocket.disconnect":
                    studio.closes.append(message.get("code"))
                    return
                if (text := message.get("text")) is not None:
                    if text.startswith("close-me:"):
                        await socket.close(code=int(text.split(":")[1]), reason="bye")
                        return
                    await socket.send_text(f"echo:{text}")
                elif (data := message.get("bytes")) is not None:
                    await socket.send_bytes(data[::-1])
        except WebSocketDisconnect as gone:
            studio.closes.append(gone.code)

    return create_service_app("vstudio", route_handlers=[session_socket], settings=Settings())


# -------------------------------------------------------------------------------- fixtures


@pytest.fixture
def signer() -> Signer:
    return Signer(kid=f"k-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def other_signer() -> Signer:
    """A key auth never published: tokens it signs are forgeries."""
    return Signer(kid="k-forger")


@pytest.fixture
def make_nft_app() -> Callable[[], Litestar]:
    """nft's stand-in, for a test that serves it itself (e.g. on a port that was dead)."""
    return nft_app


@pytest.fixture
def big_body() -> tuple[int, int]:
    """(chunk size, chunk count) of the 8 MiB bodies streamed through the gateway."""
    return BIG_CHUNK, BIG_CHUNKS


@pytest.fixture
def studio_log() -> StudioLog:
    return StudioLog()


@pytest.fixture
def feed_log() -> FeedLog:
    return FeedLog()


@pytest.fixture
def upstream_log() -> UpstreamLog:
    return UpstreamLog()


@pytest.fixture
async def upstreams(
    signer: Signer, studio_log: StudioLog, feed_log: FeedLog, upstream_log: UpstreamLog
) -> AsyncIterator[dict[str, str]]:
    """auth, nft and vstudio served at once (started and stopped together: it is quicker).

    Each believes X-Forwarded-For from loopback, as a service believes the gateway's."""
    servers = {
        "auth": served(auth_app(signer.jwks(), upstream_log)),
        "nft": served(nft_app(feed_log, upstream_log)),
        "vstudio": served(vstudio_app(studio_log)),
    }
    urls = await asyncio.gather(*(s.__aenter__() for s in servers.values()))
    try:
        yield dict(zip(servers, urls, strict=True))
    finally:
        await asyncio.gather(*(s.__aexit__(None, None, None) for s in servers.values()))


@pytest.fixture
def nft_url(upstreams: dict[str, str]) -> str:
    return upstreams["nft"]


@pytest.fixture
def dead_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    return free_port()


@pytest.fixture
def upstream_settings(upstreams: dict[str, str], dead_port: int) -> Callable[..., Settings]:
    """Settings whose auth, nft and vstudio are live test upstreams and the rest are down."""

    def make(**overrides: Any) -> Settings:
        urls = {name: f"http://127.0.0.1:{dead_port}" for name in DEFAULT_PORTS}
        urls |= upstreams
        urls |= overrides.pop("urls", {})
        return Settings(urls=urls, **overrides)

    return make


@pytest.fixture
def gateway_config(unique_name: str) -> GatewayConfig:
    """This test's own Redis keys and queue, so concurrent runs never share state."""
    return GatewayConfig(
        key_prefix=f"gwtest:{unique_name}",
        revocation_queue=f"gateway.session-revocations.test-{unique_name}",
    )


StartGateway = Callable[..., contextlib.AbstractAsyncContextManager[str]]


@pytest.fixture
def start_gateway(gateway_config: GatewayConfig) -> StartGateway:
    """`async with start_gateway(settings, bus=..., config=..., routes=...) as url:` serves one
    gateway app with uvicorn configured as `audifi serve gateway` configures it (it believes
    X-Forwarded-For only from AUDIFI_TRUSTED_PROXIES: by default from nobody)."""

    @asynccontextmanager
    async def start(
        settings: Settings,
        *,
        bus: Bus | None = None,
        config: GatewayConfig | None = None,
        routes: RouteTable | None = None,
    ) -> AsyncIterator[str]:
        app: Litestar = create_app(
            settings, bus or InProcessBus(), config=config or gateway_config, routes=routes
        )
        async with serving(server_config(app, "gateway", settings, port=0)) as url:
            yield url

    return start


@pytest.fixture
async def gateway(
    start_gateway: StartGateway, upstream_settings: Callable[..., Settings]
) -> AsyncIterator[str]:
    """A gateway as embedded mode runs it: in-process bus, in-memory stores."""
    async with start_gateway(upstream_settings()) as url:
        yield url


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
        yield http


@pytest.fixture
async def redis_cleanup(redis_url: str, gateway_config: GatewayConfig) -> AsyncIterator[None]:
    """Drop this test's gateway keys from the shared Redis afterwards."""
    yield
    redis = Redis.from_url(redis_url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{gateway_config.key_prefix}:*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
