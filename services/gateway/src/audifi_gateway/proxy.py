"""The HTTP proxy: a client request under `/api/v1` to the service the route table names.

In order: find the route (404 NOT_FOUND when none), verify the caller on an authenticated
route (401), count it against its rate limit (429), ask the upstream's breaker (503 while
open), then forward. Bodies stream both ways, never held whole in memory: the request body
flows to the service as the client sends it, the response flows back as the service sends it
(its bytes untouched, compressed or not), and the upstream connection is dropped as soon as
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
from collections.abc import AsyncIterator

import httpx
import structlog
from audifi_kit.http.auth import bearer_token
from audifi_kit.http.errors import Unavailable
from audifi_kit.settings import Settings
from litestar.types import Receive, Scope, Send

from audifi_gateway import metrics
from audifi_gateway.admission import Admission
from audifi_gateway.forwarding import downstream_headers, upstream_headers
from audifi_gateway.routes import Route

log = structlog.get_logger("audifi.gateway.proxy")


class ClientDisconnected(Exception):
    """The client went away while its request body was being forwarded."""


class UpstreamAborted(Exception):
    """The upstream broke off a response the client had already started to receive."""


class HttpProxy:
    def __init__(self, admission: Admission, settings: Settings) -> None:
        self.admission = admission
        self.settings = settings
        # One pooled client for the app's life, set by its lifespan.
        self.client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = self.client
        assert client is not None, "the proxy serves only while the app runs"
        method: str = scope["method"]
        route, raw_path = self.admission.route(scope)
        identity = await self.admission.admit(scope, route, bearer_token(scope))
        breaker = self.admission.breakers[route.service]

        url = self.settings.service_url(route.service) + raw_path.decode("latin-1")
        if query := scope.get("query_string"):
            url = f"{url}?{query.decode('latin-1')}"
        started = time.perf_counter()
        try:  # from here on the breaker hears how it went, whatever happens
            request = client.build_request(
                method,
                url,
                headers=upstream_headers(scope, identity),
                content=_request_body(receive) if _has_body(scope) else None,
                timeout=httpx.Timeout(route.timeout),
            )
            response = await client.send(request, stream=True)
        except ClientDisconnected:
            breaker.release()
            return
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
            await _relay_body(response, send, receive)
        finally:
            await response.aclose()

    @staticmethod
    def _count(route: Route, method: str, status: int) -> None:
        metrics.proxied_requests.labels(route.service, method, str(status)).inc()


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


async def _request_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        if chunk := message.get("body", b""):
            yield chunk
        if not message.get("more_body", False):
            return


async def _relay_body(response: httpx.Response, send: Send, receive: Receive) -> None:
    """Stream the upstream's body to the client until it ends or the client disconnects."""
    relay = asyncio.ensure_future(_send_chunks(response, send))
    gone = asyncio.ensure_future(_disconnect(receive))
    try:
        await asyncio.wait((relay, gone), return_when=asyncio.FIRST_COMPLETED)
    finally:
        relay.cancel()
        gone.cancel()
        await asyncio.gather(relay, gone, return_exceptions=True)
    if relay.done() and not relay.cancelled() and (error := relay.exception()) is not None:
        raise error


async def _send_chunks(response: httpx.Response, send: Send) -> None:
    try:
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except httpx.TransportError as exc:
        log.warning("upstream_aborted_response", url=str(response.url), error=repr(exc))
        raise UpstreamAborted(str(exc)) from exc
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnect(receive: Receive) -> None:
    # The request body has been read by now: what is left to receive is the disconnect.
    while (await receive())["type"] != "http.disconnect":
        pass
