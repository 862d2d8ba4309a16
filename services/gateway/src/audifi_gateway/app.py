"""Wiring: settings and bus -> the gateway's Litestar app and its background consumer.

The app is the kit's service app (error envelope, request ids, `/health`, `/ready`,
`/metrics`), without the kit's token middleware: the gateway decides per route whether a token
is needed (`routes`) and checks it itself (`edge_auth`). Its routes:

* `/api/v1/openapi.json`, `/api/v1/docs`: the merged OpenAPI document and its page;
* `/api/v1/admin/health`: every upstream's readiness;
* everything else under `/api/v1`: one ASGI mount that proxies HTTP (`proxy`) and the V
  Studio WebSocket (`websocket`) to the service the route table names.

Redis (REDIS_URL) holds the rate-limit counters and revoked sessions, shared by every replica;
without it both live in process memory (embedded mode). The bus carries `auth.session.revoked`
to the gateway's queue; as in every service's runtime, the app connects the bus it is given on
the loop that serves it and closes it at shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import httpx
import structlog
from audifi_kit.bus import Bus
from audifi_kit.http.auth import JwksKeys, TokenVerifier
from audifi_kit.http.factory import create_service_app
from audifi_kit.http.health import ReadinessCheck
from audifi_kit.http.revocations import (
    MemoryRevocations,
    RedisRevocations,
    RevocationConsumer,
    RevocationStore,
)
from audifi_kit.launch import AppSpec
from audifi_kit.settings import Settings
from httpx_aiohttp import AiohttpTransport
from litestar import Litestar, asgi
from litestar.config.cors import CORSConfig
from litestar.types import Receive, Scope, Send
from redis.asyncio import Redis

from audifi_gateway.admission import Admission
from audifi_gateway.breaker import Breakers
from audifi_gateway.config import GatewayConfig
from audifi_gateway.edge_auth import EdgeAuth
from audifi_gateway.openapi import MergedOpenApi, docs_page, openapi_endpoint
from audifi_gateway.proxy import HttpProxy
from audifi_gateway.ratelimit import RateLimiter
from audifi_gateway.routes import API_PREFIX, RouteTable
from audifi_gateway.upstream_health import UpstreamHealth, admin_health_endpoint
from audifi_gateway.upstreams import Upstreams
from audifi_gateway.websocket import WebSocketProxy

log = structlog.get_logger("audifi.gateway")

# Headers a browser script may read from a cross-origin answer.
EXPOSED_HEADERS = ["X-Request-Id", "Retry-After", "WWW-Authenticate"]


def create_app(
    settings: Settings,
    bus: Bus,
    *,
    config: GatewayConfig | None = None,
    routes: RouteTable | None = None,
) -> Litestar:
    config = config or GatewayConfig.from_env()
    table = routes or RouteTable()

    redis: Redis | None = None
    store: RevocationStore
    if settings.redis_url:
        # Short socket timeouts: a Redis outage must cost a request milliseconds, not seconds
        # (the limiter and the revocation check then let it through; see their modules).
        redis = Redis.from_url(settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        store = RedisRevocations(redis, config.key_prefix)
        limiter = RateLimiter.on_redis(
            settings.redis_url, redis.connection_pool, config.key_prefix, config.rate_limits
        )
    else:
        if settings.amqp_url:
            log.warning(
                "gateway_state_in_memory",
                hint="set REDIS_URL: with several gateway replicas, each would see only "
                "the revocations and requests that reached it",
            )
        store = MemoryRevocations()
        limiter = RateLimiter.in_memory(config.rate_limits)

    keys = JwksKeys(settings.auth_jwks_url)
    breakers = Breakers(
        table.services,
        failure_threshold=config.breaker_failures,
        cooldown=config.breaker_cooldown,
    )
    admission = Admission(table, EdgeAuth(TokenVerifier(keys), store), limiter, breakers)
    upstreams = Upstreams(settings)  # one turn and one memory of refusals for both
    http_proxy = HttpProxy(admission, settings, config, upstreams)
    websocket_proxy = WebSocketProxy(
        admission, settings, upstreams, handshakes=config.ws_handshakes
    )
    merged = MergedOpenApi(table, settings, cache_seconds=config.openapi_cache_seconds)
    health = UpstreamHealth(table.services, settings, timeout=config.health_timeout)
    consumer = RevocationConsumer(bus, store, config.revocation_queue, prefetch=settings.prefetch)

    # copy_scope=False: admission names the route template in the request's own scope, which
    # the kit's request metrics and access log read.
    @asgi(API_PREFIX, is_mount=True, copy_scope=False)
    async def api(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await websocket_proxy(scope, receive, send)
        else:
            await http_proxy(scope, receive, send)

    @asynccontextmanager
    async def running(_: Litestar) -> AsyncIterator[None]:
        async with httpx.AsyncClient(
            transport=_upstream_transport(),
            follow_redirects=False,
            timeout=httpx.Timeout(10.0),
        ) as client:
            http_proxy.client = merged.client = health.client = client
            try:
                await bus.connect()
                await consumer.start()
                yield
            finally:
                await consumer.stop()
                await bus.close()
                await keys.close()
                if redis is not None:
                    await redis.aclose()

    readiness: dict[str, ReadinessCheck] = {
        "bus": lambda: _queue_exists(bus, consumer.spec.name),
    }
    if redis is not None:
        readiness["redis"] = lambda: _ping(redis)

    return create_service_app(
        "gateway",
        route_handlers=[openapi_endpoint(merged), docs_page, admin_health_endpoint(health), api],
        settings=settings,
        lifespan=[running],
        readiness_checks=readiness,
        cors_config=_cors(config),
    )


def _cors(config: GatewayConfig) -> CORSConfig | None:
    """Preflights answered and CORS headers added on every gateway response, from settings."""
    if not config.cors_origins:
        return None
    any_origin = "*" in config.cors_origins
    cors = CORSConfig(
        allow_origins=["*"] if any_origin else list(config.cors_origins),
        allow_methods=["*"],
        allow_headers=["*"],
        # Cookies (e.g. a refresh-token cookie) only with named origins, as browsers require.
        allow_credentials=not any_origin,
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
    )
    return cors


def _upstream_transport() -> AiohttpTransport:
    """httpx's API over aiohttp's connection pool.

    httpx's own async pool slows down as concurrent requests grow (encode/httpx#3215; measured
    here: about 1,800 requests/s at 4 in flight, 400 at 32), and a gateway always has many in
    flight. aiohttp adds no header of its own (the client's headers are forwarded as they
    are: an added Accept-Encoding would get clients a compressed body they never asked for),
    never decompresses, and ignores the host's HTTP(S)_PROXY: upstreams come from settings.
    """

    def session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1000, keepalive_timeout=30),
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
            auto_decompress=False,
            trust_env=False,
        )

    return AiohttpTransport(client=session)


async def _queue_exists(bus: Bus, queue: str) -> None:
    await bus.queue_depth(queue)


async def _ping(redis: Redis) -> None:
    await redis.ping()


app = AppSpec(name="gateway", factory=create_app)
