"""The V Studio WebSocket through the gateway: `/api/v1/vstudio/sessions/{id}/ws`.

The handshake passes admission like any request (route `/vstudio`: a verified token, the rate
limit, vstudio's breaker); browsers cannot set headers on a WebSocket, so the token may come
as `?access_token=` instead of `Authorization`. A refused handshake gets an HTTP answer with
the error envelope (401, 429, 503) where the ASGI server supports denial responses, else a
close before accepting (which the server turns into 403).

Then the gateway opens the upstream socket with the `websockets` client, carrying the token
as `Authorization` (never in the URL: it would end up in logs), `X-Request-Id` and the verified
identity, offers the client's subprotocols, and accepts the client with the one vstudio chose.
Text and binary frames are relayed both ways as they come. When one side closes, the other is
closed with the same code and reason; a side that vanished without a close frame (1006) is
reported as 1014 (bad gateway) to the client and 1001 (going away) to vstudio.

Neither the handshake's path and query (which may carry the token) nor its headers are ever
logged by the gateway: its log lines name the upstream and the error only.
"""

from __future__ import annotations

import asyncio
import logging
import re
from urllib.parse import parse_qsl, urlencode

import msgspec
import structlog
from audifi_kit.errors import DomainError, NotFound, Unavailable
from audifi_kit.http.auth import bearer_token
from audifi_kit.http.errors import envelope
from audifi_kit.http.requests import current_request_id
from audifi_kit.settings import Settings
from litestar.types import Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from audifi_gateway import metrics
from audifi_gateway.admission import Admission
from audifi_gateway.forwarding import upstream_headers
from audifi_gateway.request_guard import check_request
from audifi_gateway.routes import Route
from audifi_gateway.upstreams import Upstreams

log = structlog.get_logger("audifi.gateway.websocket")

WEBSOCKET_PATH = re.compile(rb"/vstudio/sessions/[^/]+/ws")
TOKEN_PARAMETER = "access_token"
# As the ASGI server's own limit on a client's frames (uvicorn's ws_max_size).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Set by the websockets client itself, or replaced: the token goes as Authorization.
_HANDSHAKE_HEADERS = (
    b"sec-websocket-key",
    b"sec-websocket-version",
    b"sec-websocket-extensions",
    b"sec-websocket-protocol",
    b"authorization",
    b"user-agent",
)
_SENDABLE = {*range(1000, 1004), *range(1007, 1015), *range(3000, 5000)}
# The websockets client logs each handshake's request line and headers (the token as
# Authorization) when its logger is at DEBUG: this one never is, whatever the root's level.
_UPSTREAM_LOG = logging.getLogger("audifi.gateway.websocket.upstream")
_UPSTREAM_LOG.setLevel(logging.INFO)


class WebSocketProxy:
    def __init__(
        self,
        admission: Admission,
        settings: Settings,
        upstreams: Upstreams | None = None,
        *,
        handshakes: int = 16,
    ) -> None:
        self.admission = admission
        self.settings = settings
        self.upstreams = upstreams or Upstreams(settings)
        # Handshakes carried out at once (verifying the caller, opening the upstream socket):
        # a room of thousands opening must leave the loop to everyone else's requests
        # (rooms_bench, make run: sign-ins waited seconds behind 200 handshakes in flight).
        self._handshakes = asyncio.Semaphore(handshakes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        async with self._handshakes:
            upstream = await self._open(scope, send)
        if upstream is None:
            return
        sessions = metrics.websocket_sessions.labels(upstream[0])
        sessions.inc()
        try:
            await _relay(upstream[1], receive, send)
        finally:
            sessions.dec()
            await upstream[1].close()

    async def _open(self, scope: Scope, send: Send) -> tuple[str, ClientConnection] | None:
        """The caller admitted, the upstream socket open and the client's accepted: (the
        service, its socket); None when refused (the client was told)."""
        token = bearer_token(scope) or _query_token(scope)
        try:
            check_request(scope)
            route, raw_path = self.admission.route(scope)
            if not WEBSOCKET_PATH.fullmatch(raw_path):
                raise NotFound("No WebSocket at this path")
            identity = await self.admission.admit(scope, route, token)
        except DomainError as error:
            await _deny(scope, send, error)
            return None

        breaker = self.admission.breakers[route.service]
        headers = upstream_headers(scope, identity, skip=_HANDSHAKE_HEADERS)
        if token is not None:
            headers.append((b"authorization", f"Bearer {token}".encode("latin-1")))
        try:
            upstream = await self._connect(route, raw_path, scope, headers)
        except InvalidStatus as exc:
            breaker.record_success()  # it answered: the refusal is the service's to make
            await _relay_refusal(scope, send, exc)
            return None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            breaker.record_failure()
            log.warning("websocket_upstream_unreachable", upstream=route.service, error=repr(exc))
            await _deny(scope, send, Unavailable(details={"service": route.service}))
            return None
        except BaseException:
            breaker.release()
            raise
        breaker.record_success()
        try:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
        except BaseException:
            await upstream.close()
            raise
        return route.service, upstream

    async def _connect(
        self, route: Route, raw_path: bytes, scope: Scope, headers: list[tuple[bytes, bytes]]
    ) -> ClientConnection:
        """The socket to the first replica that takes it, in turn (upstreams.py); a replica
        that refused or did not open in time is passed over for the next."""
        candidates = self.upstreams.candidates(route.service)
        for i, base in enumerate(candidates):
            try:
                upstream = await connect(
                    _websocket_url(base, raw_path, scope),
                    additional_headers=[
                        (n.decode("latin-1"), v.decode("latin-1")) for n, v in headers
                    ],
                    subprotocols=scope.get("subprotocols") or None,
                    open_timeout=route.timeout,
                    close_timeout=5,
                    max_size=MAX_MESSAGE_BYTES,
                    compression=None,
                    proxy=None,
                    user_agent_header=None,
                    logger=_UPSTREAM_LOG,
                )
            except (OSError, TimeoutError) as exc:
                self.upstreams.refused(base)
                if i == len(candidates) - 1:
                    raise
                log.info("websocket_replica_refused", upstream=route.service, error=repr(exc))
                continue
            self.upstreams.answered(base)
            return upstream
        raise AssertionError("a service has at least one replica")


async def _relay(upstream: ClientConnection, receive: Receive, send: Send) -> None:
    to_upstream = asyncio.ensure_future(_client_to_upstream(upstream, receive))
    to_client = asyncio.ensure_future(_upstream_to_client(upstream, send))
    try:
        done, _ = await asyncio.wait((to_upstream, to_client), return_when=asyncio.FIRST_COMPLETED)
    finally:
        to_upstream.cancel()
        to_client.cancel()
        await asyncio.gather(to_upstream, to_client, return_exceptions=True)
    if to_upstream in done and (closed := to_upstream.result()) is not None:
        code, reason = closed  # the client closed: tell vstudio the same
        await upstream.close(_close_code(code, vanished=1001), reason)
    else:  # vstudio closed: tell the client the same
        code = _close_code(upstream.close_code, vanished=1014)
        reason = upstream.close_reason or ""
        try:
            await send({"type": "websocket.close", "code": code, "reason": reason})
        except OSError:
            pass  # the client is gone as well


async def _client_to_upstream(
    upstream: ClientConnection, receive: Receive
) -> tuple[int | None, str] | None:
    """Relay the client's frames; the client's close code and reason, or None if vstudio
    closed first."""
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return message.get("code"), message.get("reason") or ""
            if (text := message.get("text")) is not None:
                await upstream.send(text)
            elif (data := message.get("bytes")) is not None:
                await upstream.send(data)
    except ConnectionClosed:
        return None


async def _upstream_to_client(upstream: ClientConnection, send: Send) -> None:
    try:
        async for data in upstream:
            if isinstance(data, str):
                await send({"type": "websocket.send", "text": data})
            else:
                await send({"type": "websocket.send", "bytes": data})
    except ConnectionClosed:
        pass


def _close_code(code: int | None, *, vanished: int) -> int:
    """A code that may be sent in a close frame for one a peer closed (or vanished) with."""
    if code is None or code == 1005:  # closed without a code
        return 1000
    return code if code in _SENDABLE else vanished


def _query_token(scope: Scope) -> str | None:
    for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
        if name == TOKEN_PARAMETER and value:
            return value
    return None


def _websocket_url(base: str, raw_path: bytes, scope: Scope) -> str:
    scheme, _, rest = base.partition("://")
    url = f"{'wss' if scheme == 'https' else 'ws'}://{rest}{raw_path.decode('latin-1')}"
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    query = [(n, v) for n, v in pairs if n != TOKEN_PARAMETER]
    return f"{url}?{urlencode(query)}" if query else url


async def _deny(scope: Scope, send: Send, error: DomainError) -> None:
    body = msgspec.json.encode(envelope(error.code, error.message, error.details))
    # The server closes the connection after a refused handshake and says so itself.
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in error.headers.items()
        if k.lower() != "connection"
    ]
    headers.append((b"content-type", b"application/json"))
    await _refuse(scope, send, error.status_code, headers, body)


async def _relay_refusal(scope: Scope, send: Send, refusal: InvalidStatus) -> None:
    response = refusal.response
    headers = [(b"content-type", response.headers.get("Content-Type", "application/json").encode())]
    await _refuse(scope, send, response.status_code, headers, response.body or b"")


async def _refuse(
    scope: Scope, send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    if (request_id := current_request_id()) is not None:
        headers = [*headers, (b"x-request-id", request_id.encode("latin-1"))]
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body, "more_body": False})
