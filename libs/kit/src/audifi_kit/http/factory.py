"""`create_service_app`: every service's Litestar app, built the same way.

What each app gets: the error envelope for every error, request ids (header, logs, events),
Prometheus `/metrics`, `/health`, `/ready`, OpenAPI under `/schema`, and — given a JWKS URL —
bearer-token auth on every route not marked `opt={"public": True}`. Routes marked
`opt={"idempotent": True}` honour `Idempotency-Key` (pool at `app.state.db_pool`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler, Middleware

from audifi_kit.http.auth import AuthMiddleware, JwksKeys, TokenVerifier, provide_identity
from audifi_kit.http.bodies import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_JSON_DEPTH,
    BodyGuard,
    RouteGuard,
)
from audifi_kit.http.errors import handle_exception
from audifi_kit.http.fields import FieldRuleSchemas
from audifi_kit.http.health import ReadinessCheck, health, readiness_endpoint
from audifi_kit.http.idempotency import IdempotencyMiddleware
from audifi_kit.http.metrics import metrics_endpoint
from audifi_kit.http.openapi import ErrorResponses
from audifi_kit.http.requests import RequestContext
from audifi_kit.http.revocations import REVOCATIONS_STATE_KEY, RevocationStore
from audifi_kit.settings import Settings

Lifespan = Callable[[Litestar], AbstractAsyncContextManager[Any]]


def while_serving(
    start: Callable[[], Awaitable[Any]], stop: Callable[[], Awaitable[Any]]
) -> Lifespan:
    """A lifespan that awaits `start()` before the app serves and `stop()` after it has."""

    @asynccontextmanager
    async def running(_: Litestar) -> AsyncIterator[None]:
        await start()
        try:
            yield
        finally:
            await stop()

    return running


def create_service_app(
    name: str,
    *,
    route_handlers: Sequence[ControllerRouterHandler],
    settings: Settings,
    lifespan: Sequence[Lifespan] = (),
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
    readiness_timeout: float = 2.0,
    jwks_url: str | None = None,
    jwt_issuer: str | None = None,
    jwt_audience: str | None = None,
    jwks_min_refetch_interval: float = 30.0,
    revocations: RevocationStore | None = None,
    idempotency_lease: float = 60.0,
    max_body_size: int | None = DEFAULT_MAX_BODY_SIZE,
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH,
    dependencies: Mapping[str, Provide] | None = None,
    middleware: Sequence[Middleware] = (),
    cors_config: CORSConfig | None = None,
    state: Mapping[str, Any] | None = None,
    version: str = "1.0.0",
    debug: bool = False,
) -> Litestar:
    """The Litestar app of service `name`.

    `lifespan` context managers start and stop what the service needs (event store, pools,
    consumers); put the read-model pool at `app.state.db_pool` for idempotent routes.
    `jwks_url` unset: no token is verified (routes needing an identity answer 401).
    `revocations`: tokens of revoked sessions are refused too (`service_app` feeds it).
    `middleware` runs inside auth and idempotency, so it sees `request.user`. `cors_config`
    answers preflights and adds CORS headers to every response, error envelopes included.
    `max_body_size` (bytes, None: unlimited) bounds every request body (413); a route or
    router may set its own `request_max_body_size`. JSON bodies nested deeper than
    `max_json_depth` are refused (400) before they are decoded (see `bodies`).
    """
    keys = JwksKeys(jwks_url, min_refetch_interval=jwks_min_refetch_interval) if jwks_url else None
    # OPTIONS and an announced oversize body are answered before auth: neither reveals
    # anything, and neither needs the body. The body itself is read only for a caller
    # auth let through, and checked before idempotency or a handler reads it.
    kit_middleware: list[Middleware] = [RouteGuard()]
    if keys is not None:
        verifier = TokenVerifier(keys, issuer=jwt_issuer, audience=jwt_audience)
        kit_middleware.append(AuthMiddleware(verifier, revocations))
    kit_middleware.append(BodyGuard(max_json_depth=max_json_depth))
    kit_middleware.append(IdempotencyMiddleware(lease=idempotency_lease))

    async def close_jwks() -> None:
        if keys is not None:
            await keys.close()

    app = Litestar(
        route_handlers=[
            health,
            readiness_endpoint(readiness_checks or {}, timeout=readiness_timeout),
            metrics_endpoint,
            *route_handlers,
        ],
        lifespan=list(lifespan),
        on_shutdown=[close_jwks],
        exception_handlers={Exception: handle_exception},
        middleware=[*kit_middleware, *middleware],
        request_max_body_size=max_body_size,
        cors_config=cors_config,
        dependencies={"identity": Provide(provide_identity), **(dependencies or {})},
        openapi_config=OpenAPIConfig(
            title=f"AudiFi {name}",
            version=version,
            openapi_router=Router(
                "/schema", route_handlers=[], include_in_schema=False, opt={"public": True}
            ),
        ),
        # Each operation documents the envelope for every error status it can answer; every
        # field shows its rule wherever it sits.
        plugins=[ErrorResponses(), FieldRuleSchemas()],
        # The kit logs (structlog, with the request id); Litestar's own config would print
        # tracebacks through stdlib logging a second time.
        logging_config=None,
        state=State(
            {
                **(state or {}),
                "service": name,
                "settings": settings,
                "jwks": keys,
                REVOCATIONS_STATE_KEY: revocations,
            }
        ),
        debug=debug,
    )
    # Outside routing, so 404/405 answers get a request id and are counted too.
    app.asgi_handler = RequestContext(app.asgi_handler, name)
    return app


__all__ = ["Lifespan", "create_service_app", "while_serving"]
