"""Admission: what a client request or WebSocket passes before it may reach a service.

1. its path is routed (`routes`): 404 NOT_FOUND when no route takes it, 405
   METHOD_NOT_ALLOWED (with `Allow`) when routes take the path but not with this method;
2. on an authenticated route the caller is verified at the edge (`edge_auth`): 401;
3. the caller (user, else IP address) is within the route class's rate limit: 429;
4. the upstream's circuit breaker is not open: 503.

Order matters: a request refused earlier costs nothing later (no Redis hit for an unknown
route, no upstream connection for a forged token).
"""

from __future__ import annotations

from urllib.parse import unquote

import structlog
from audifi_kit.errors import MethodNotAllowed, NotFound, Unavailable
from audifi_kit.http.auth import Identity
from litestar.types import Scope

from audifi_gateway import metrics
from audifi_gateway.breaker import Breakers
from audifi_gateway.edge_auth import EdgeAuth
from audifi_gateway.forwarding import client_address
from audifi_gateway.ratelimit import RateLimiter
from audifi_gateway.routes import API_PREFIX, Route, RouteTable

_API_PREFIX = API_PREFIX.encode()


def client_path(scope: Scope) -> tuple[str, bytes] | None:
    """(decoded path for routing, raw path for the upstream), both without `/api/v1`.

    None for a path the gateway will not route: outside `/api/v1`, or with `.`/`..` segments
    (a prefix must not be escaped by a path the upstream would resolve differently).
    """
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    if not raw.startswith(_API_PREFIX + b"/"):
        return None
    raw = raw[len(_API_PREFIX) :]
    path = unquote(raw.decode("latin-1"))
    if any(segment in (".", "..") for segment in path.split("/")):
        return None
    return path, raw


class Admission:
    """What every proxied request or WebSocket passes before reaching a service."""

    def __init__(
        self, table: RouteTable, auth: EdgeAuth, limiter: RateLimiter, breakers: Breakers
    ) -> None:
        self.table = table
        self.auth = auth
        self.limiter = limiter
        self.breakers = breakers

    def route(self, scope: Scope) -> tuple[Route, bytes]:
        """The route of the request and the path to ask its upstream for."""
        found = client_path(scope)
        if found is None:
            raise NotFound("No such route")
        route = self.table.match(found[0], scope.get("method", "GET"))
        if route is None:
            if allowed := self.table.allowed(found[0]):
                raise MethodNotAllowed(headers={"Allow": ", ".join(allowed)})
            raise NotFound("No such route")
        # The kit labels request metrics by route template: the prefix, never the raw path.
        scope["path_template"] = f"{API_PREFIX}{route.prefix}"
        return route, found[1]

    def allowed(self, scope: Scope) -> tuple[str, ...]:
        """The methods the routes take the request's path with; () for none."""
        found = client_path(scope)
        return () if found is None else self.table.allowed(found[0])

    async def admit(self, scope: Scope, route: Route, token: str | None) -> Identity | None:
        """The verified caller (None on a public route); raises 401, 429 or 503."""
        identity = await self.admit_caller(scope, route, token)
        self.admit_upstream(scope, route)
        return identity

    async def admit_caller(self, scope: Scope, route: Route, token: str | None) -> Identity | None:
        """Steps 2 and 3: the verified caller (None on a public route); raises 401 or 429."""
        identity = None
        if not route.public:
            identity = await self.auth.verify(token)
            scope["user"] = identity
            # Every log line of this request names the caller (the request's own context).
            structlog.contextvars.bind_contextvars(user_id=identity.user_id)
        caller = f"user:{identity.user_id}" if identity else f"ip:{client_address(scope)}"
        await self.limiter.hit(route.rate_class, caller)
        return identity

    def admit_upstream(self, scope: Scope, route: Route) -> None:
        """Step 4, last before the upstream is asked: its breaker is not open (else 503).

        The proxy reads a request's body between the steps, so that a half-open breaker's
        one probe is never held by a client that is slow to send it.
        """
        try:
            self.breakers[route.service].admit()
        except Unavailable:
            metrics.proxied_requests.labels(route.service, scope.get("method", "WS"), "503").inc()
            raise
