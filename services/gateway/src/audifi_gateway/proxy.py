"""The HTTP proxy: a client request under `/api/v1` to the service the route table names.

In order: check the request line and headers (`request_guard`: 400, 414), find the route (404
NOT_FOUND when none, 405 when the path takes other methods), answer OPTIONS from the route
table (204 with `Allow`; CORS preflights are the CORS middleware's when CORS is configured),
check the body's framing (400, 413), verify the caller on an authenticated route (401), count
it against its rate limit (429), read the request body whole (408, 413; a JSON body's depth
and encoding: 400), ask the upstream's breaker (503 while open), then forward.

The request body is held whole, up to the route's limit, before the upstream is asked: a
service then never waits on a slow client, and the upstream's breaker hears only of the
upstream's own failures (it cannot connect, or does not answer in time while it owes us its
answer), never of a client that is slow or gone. The response flows back as the service sends
it (its bytes untouched, compressed or not), and the upstream connection is dropped as soon as
the client goes away.

Timeouts are per route: connecting, each write and each read of the upstream may take at most
the route's timeout, so a service that is down or hangs costs the client a 503 UNAVAILABLE
within that time, not a hanging request. A response already under way when the upstream
breaks cannot become an error envelope any more; the client's connection is then aborted, so
it sees a truncated response as an error rather than as a complete one.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import structlog
from audifi_kit.errors import DomainError, Unavailable, ValidationFailed
from audifi_kit.http.auth import Identity, bearer_token
from audifi_kit.settings import Settings
from litestar.types import Receive, Scope, Send

from audifi_gateway import metrics
from audifi_gateway.admission import Admission
from audifi_gateway.config import GatewayConfig
from audifi_gateway.forwarding import downstream_headers, upstream_headers
from audifi_gateway.request_guard import (
    CLOSE,
    ClientDisconnected,
    check_body,
    check_request,
    read_body,
)
from audifi_gateway.routes import API_PREFIX, Route
from audifi_gateway.upstreams import Upstreams

log = structlog.get_logger("audifi.gateway.proxy")

# The client's own length would be wrong for what is forwarded after a chunked upload.
_SET_BY_PROXY = (b"content-length",)


# The connection was never made (refused, or not in time): the request did not leave, so
# another replica may take it. (The pooled transport reports a refusal as a connect timeout.)
_NOT_CONNECTED = (httpx.ConnectError, httpx.ConnectTimeout)


class UpstreamAborted(Exception):
    """The upstream broke off a response the client had already started to receive."""


class HttpProxy:
    def __init__(
        self,
        admission: Admission,
        settings: Settings,
        config: GatewayConfig,
        upstreams: Upstreams | None = None,
    ) -> None:
        self.admission = admission
        self.settings = settings
        self.config = config
        self.upstreams = upstreams or Upstreams(settings)
        # One pooled client for the app's life, set by its lifespan.
        self.client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = self.client
        assert client is not None, "the proxy serves only while the app runs"
        method: str = scope["method"]
        framing = check_request(scope)
        body: bytes | None = None
        try:
            route, raw_path = self.admission.route(scope)
            if method == "OPTIONS":
                await self._options(scope, send, close=framing.has_body)
                return
            limit = route.max_body if route.max_body is not None else self.config.max_body
            framing.check(method, limit)
            identity = await self.admission.admit_caller(scope, route, bearer_token(scope))
            if framing.has_body:
                body = await read_body(receive, limit=limit, timeout=self.config.body_timeout)
        except ClientDisconnected:
            return
        except DomainError as error:
            if framing.has_body and body is None:
                # What the client still sends is not worth reading: close instead.
                error.headers.update(CLOSE)
            raise
        if body is not None:
            check_body(scope, body)
        candidates = self.upstreams.candidates(route.service)
        requests = [
            self._request(client, scope, route, raw_path, identity, body, base)
            for base in candidates
        ]
        self.admission.admit_upstream(scope, route)
        breaker = self.admission.breakers[route.service]

        started = time.perf_counter()
        try:  # from here on the breaker hears how it went, whatever happens
            response = await self._send(client, candidates, requests)
        except httpx.PoolTimeout as exc:
            # Our own pool is exhausted: no verdict on the upstream.
            breaker.release()
            self._count(route, method, 503)
            raise Unavailable("The gateway is busy; retry later") from exc
        except httpx.TransportError as exc:
            breaker.record_failure()
            self._count(route, method, 503)
            log.warning("upstream_unreachable", upstream=route.service, error=repr(exc))
            raise Unavailable(
                f"The {route.service} service is not answering; retry later",
                details={"service": route.service},
                headers={"Retry-After": "1"},
            ) from exc
        except BaseException:
            breaker.release()
            raise
        breaker.record_success()
        metrics.upstream_latency.labels(route.service).observe(time.perf_counter() - started)
        self._count(route, method, response.status_code)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": downstream_headers(response.headers.raw),
                }
            )
            await _relay_body(response, send, receive, route)
        finally:
            await response.aclose()

    async def _send(
        self, client: httpx.AsyncClient, candidates: list[str], requests: list[httpx.Request]
    ) -> httpx.Response:
        """The first replica that takes the connection answers; one that refused it never
        saw the request, so the next one is asked (upstreams.py)."""
        for base, request in zip(candidates[:-1], requests[:-1], strict=True):
            try:
                response = await client.send(request, stream=True)
            except _NOT_CONNECTED:
                self.upstreams.refused(base)
                continue
            self.upstreams.answered(base)
            return response
        try:
            response = await client.send(requests[-1], stream=True)
        except _NOT_CONNECTED:
            self.upstreams.refused(candidates[-1])
            raise
        self.upstreams.answered(candidates[-1])
        return response

    def _request(
        self,
        client: httpx.AsyncClient,
        scope: Scope,
        route: Route,
        raw_path: bytes,
        identity: Identity | None,
        body: bytes | None,
        base: str,
    ) -> httpx.Request:
        url = base + raw_path.decode("latin-1")
        if query := scope.get("query_string"):
            url = f"{url}?{query.decode('latin-1')}"
        try:
            return client.build_request(
                scope["method"],
                url,
                headers=upstream_headers(scope, identity, skip=_SET_BY_PROXY),
                content=body,
                timeout=httpx.Timeout(route.timeout),
            )
        except httpx.InvalidURL as exc:
            # The target passed the server's and our own checks; httpx is stricter still.
            raise ValidationFailed("The request target is not a valid URL") from exc

    async def _options(self, scope: Scope, send: Send, *, close: bool) -> None:
        """OPTIONS asks what a path takes: the route table knows, no token needed."""
        headers = [(b"allow", ", ".join(self.admission.allowed(scope)).encode("latin-1"))]
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    def _count(route: Route, method: str, status: int) -> None:
        metrics.proxied_requests.labels(route.service, method, str(status)).inc()


async def _relay_body(response: httpx.Response, send: Send, receive: Receive, route: Route) -> None:
    """Stream the upstream's body to the client until it ends or the client disconnects."""
    relay = asyncio.ensure_future(_send_chunks(response, send, route))
    gone = asyncio.ensure_future(_disconnect(receive))
    try:
        await asyncio.wait((relay, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        relay.cancel()
        gone.cancel()
        await asyncio.gather(relay, gone, return_exceptions=True)
    if relay.done() and not relay.cancelled() and (error := relay.exception()) is not None:
        raise error


async def _send_chunks(response: httpx.Response, send: Send, route: Route) -> None:
    try:
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except httpx.TransportError as exc:
        # The route, not the URL: a query may carry a token, and no log line may.
        log.warning(
            "upstream_aborted_response",
            upstream=route.service,
            route=f"{API_PREFIX}{route.prefix}",
            error=repr(exc),
        )
        raise UpstreamAborted(str(exc)) from exc
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnect(receive: Receive) -> None:
    # The request body has been read by now: what is left to receive is the disconnect.
    while (await receive())["type"] != "http.disconnect":
        pass
