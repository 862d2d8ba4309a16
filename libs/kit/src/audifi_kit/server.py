"""How the kit runs uvicorn: who may name the client, what malformed HTTP gets, when to shed.

* **Client address.** uvicorn believes `X-Forwarded-For` from loopback by default (and from
  `FORWARDED_ALLOW_IPS`), so any local client could pick the address every per-IP limit counts
  against. Here the gateway believes only `AUDIFI_TRUSTED_PROXIES` (unset: nobody) and every
  other service only `AUDIFI_INTERNAL_PROXIES`, where the gateway calls it from.
* **Malformed HTTP** that h11 cannot parse, and a malformed WebSocket handshake, are answered
  with the platform's error envelope (400 `BAD_REQUEST`, a request id), not in plain text.
* **A connection ceiling per process.** At the descriptor limit asyncio's accept loop fails on
  every attempt and every server of the process stops answering. So the soft RLIMIT_NOFILE is
  raised to the hard one, and above a ceiling computed from it (or AUDIFI_MAX_CONNECTIONS) a new
  connection — HTTP or a WebSocket handshake — is answered 503 `UNAVAILABLE` and closed. The
  ceiling is shared by every server of the process and weighs a gateway connection twice (its
  upstream socket): in one process a proxied WebSocket costs three descriptors, and the
  gateway admits one only while there is room for the service's end too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.datastructures import Headers as WsHeaders
from websockets.http11 import Request as WsRequest
from websockets.http11 import Response as WsResponse
from websockets.protocol import State as WsState

from audifi_kit.http.requests import request_id_from
from audifi_kit.settings import Settings

log = logging.getLogger(__name__)

GATEWAY = "gateway"
# Pending connections per listening socket; asyncio accepts up to this many per readiness event
# before any of them is looked at, so it is also the burst each server may add above the ceiling.
MAX_BACKLOG = 2048
# Descriptors kept out of the ceiling: listening sockets, log and data files, the broker and
# Redis, plus per app its database pools (event store, read models, LISTEN).
_BASE_RESERVE = 128
_PER_APP_RESERVE = 16
# How long a connection over the ceiling may take to send its request before it is closed.
SHED_GRACE_SECONDS = 1.0
_RETRY_AFTER = b"1"


# ---------------------------------------------------------------------------- descriptors


def raise_descriptor_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:  # macOS caps it below an infinite hard limit
            log.warning("could not raise the descriptor limit from %s to %s: %s", soft, target, exc)
    return soft


@dataclass
class ConnectionCeiling:
    """The connection sockets one process may hold, over all its servers.

    `limit`: admitted while the weighted count of open connections stays within it. `slack`:
    how far above it accept bursts may go before a connection is dropped without an answer.
    """

    limit: int
    slack: int = 0
    backlog: int = MAX_BACKLOG
    _servers: list[tuple[set[Any], int]] = field(default_factory=list)

    def track(self, connections: set[Any], weight: int) -> None:
        """Count a server's open connections (uvicorn's `server_state.connections`)."""
        self._servers.append((connections, weight))

    def load(self) -> int:
        return sum(len(connections) * weight for connections, weight in self._servers)


def backlog_for(descriptors: int, servers: int) -> int:
    return max(64, min(MAX_BACKLOG, descriptors // (8 * max(servers, 1))))


def connection_ceiling(settings: Settings, names: Sequence[str]) -> ConnectionCeiling:
    """The process's ceiling for serving `names`: AUDIFI_MAX_CONNECTIONS, else the (raised)
    descriptor limit less the reserve for pools and files and the servers' accept bursts."""
    descriptors = raise_descriptor_limit()
    servers = max(len(names), 1)
    backlog = backlog_for(descriptors, servers)
    bursts = 2 * servers * backlog
    if settings.max_connections:
        return ConnectionCeiling(settings.max_connections, bursts, backlog)
    per_app = _PER_APP_RESERVE + 3 * settings.pool_size
    limit = descriptors - _BASE_RESERVE - servers * per_app - bursts
    if limit < 64:
        log.warning(
            "only %s file descriptors for %s servers: connections capped at 64; raise "
            "`ulimit -n` or set AUDIFI_MAX_CONNECTIONS",
            descriptors,
            servers,
        )
        limit = 64
    return ConnectionCeiling(limit, bursts, backlog)


# ---------------------------------------------------------------------------- HTTP/1.1


def _error_body(code: str, message: str, request_id: str) -> bytes:
    envelope = {"error": {"code": code, "message": message, "details": {}}, "requestId": request_id}
    return json.dumps(envelope, separators=(",", ":")).encode()


def _error_headers(body: bytes, request_id: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode("latin-1")),
        (b"connection", b"close"),
    ]


async def _overloaded(scope: Any, receive: Any, send: Any) -> None:
    """The app a connection over the ceiling is served by: 503 in the envelope, then closed."""
    request_id = request_id_from(_header(scope.get("headers", ()), b"x-request-id"))
    body = _error_body("UNAVAILABLE", "The server is at its connection limit; retry", request_id)
    headers = [*_error_headers(body, request_id), (b"retry-after", _RETRY_AFTER)]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(headers: Any, name: bytes) -> str | None:
    for key, value in headers or ():
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class Http11(H11Protocol):
    """uvicorn's h11 protocol, answering in the envelope and shedding above the ceiling.

    Subclassed per server by `protocol_for` (class attributes: the ceiling, this server's
    weight, and the room it needs to admit a connection).
    """

    ceiling: ConnectionCeiling | None = None
    weight: int = 1
    need: int = 1
    _shed: bool = False
    _shed_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ceiling = self.ceiling
        if ceiling is None:
            return
        load = ceiling.load()  # this connection included
        if load - self.weight + self.need <= ceiling.limit:
            return
        self._shed = True
        log.warning("connection limit reached (%s open of %s): refusing", load, ceiling.limit)
        if load > ceiling.limit + ceiling.slack:
            transport.abort()  # past even the burst allowance: no descriptor to spare
            return
        # Its request is answered 503 once read (closing unread would reset the connection
        # before the client sees the answer); a client that sends nothing is dropped soon.
        self.app = _overloaded
        self._shed_timer = self.loop.call_later(SHED_GRACE_SECONDS, transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._shed_timer is not None:
            self._shed_timer.cancel()
            self._shed_timer = None
        super().connection_lost(exc)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        if self._shed:
            request_id = request_id_from(_header(self.headers, b"x-request-id"))
            self._send_error(
                503,
                "UNAVAILABLE",
                "The server is at its connection limit; retry",
                request_id,
                [(b"retry-after", _RETRY_AFTER)],
            )
            return
        super().handle_websocket_upgrade(event)

    def send_400_response(self, msg: str) -> None:
        """What h11 could not parse: 400 in the envelope (uvicorn's plain text otherwise)."""
        request_id = request_id_from(_header(self.headers, b"x-request-id"))
        self._send_error(400, "BAD_REQUEST", "The HTTP request is malformed", request_id)

    def _send_error(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str,
        extra: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app's own answer, if it comes, is dropped
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            reason = HTTPStatus(status).phrase.encode()
            body = _error_body(code, message, request_id)
            headers = [*_error_headers(body, request_id), *extra]
            with contextlib.suppress(h11.LocalProtocolError):
                self.transport.write(
                    self.conn.send(h11.Response(status_code=status, headers=headers, reason=reason))
                    + self.conn.send(h11.Data(data=body))
                    + self.conn.send(h11.EndOfMessage())
                )
        self.transport.close()


class WebSocketSansIO(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, refusing a malformed handshake in the envelope (websockets
    answers it in plain text: "Failed to open a WebSocket connection: ...")."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        accept = self.conn.accept

        def accept_or_refuse(request: WsRequest) -> WsResponse:
            response = accept(request)
            if response.status_code == 101:
                return response
            reason = response.body.decode("utf-8", "replace").strip().removeprefix(_WS_FAILED)[:200]
            request_id = request_id_from(request.headers.get("X-Request-Id"))
            code = "BAD_REQUEST" if response.status_code == 400 else f"HTTP_{response.status_code}"
            body = _error_body(code, f"The WebSocket handshake is malformed: {reason}", request_id)
            headers = WsHeaders(
                [(k.decode(), v.decode("latin-1")) for k, v in _error_headers(body, request_id)]
            )
            return WsResponse(response.status_code, response.reason_phrase, headers, body)

        self.conn.accept = accept_or_refuse  # type: ignore[method-assign]

    def handle_connect(self, event: WsRequest) -> None:
        super().handle_connect(event)  # the scope is made; the app has not run yet
        self.scope["extensions"][SEND_TEXT_NOW] = self.send_text_now

    def send_text_now(self, frame: bytes) -> bool:
        """Writes `frame` (a `prepared_text_frame`) when the connection is open and its
        transport takes more: True. False leaves it to the app's ordinary send. A room's
        frame goes to thousands of sockets: encoded once, written to each, where the ASGI
        send framed and encoded it again for every one (most of a big room's CPU)."""
        if (
            self.close_sent
            or self.disconnected
            or not self.handshake_complete
            or self.initial_response is not None
            or not self.writable.is_set()
            or self.transport.is_closing()
            or self.conn.state is not WsState.OPEN
        ):
            return False
        self.transport.write(frame)
        return True

    def send_receive_event_to_app(self) -> None:
        """uvicorn stops reading the socket after every message until the app takes it: two
        epoll calls a message (a fifth of a busy room's CPU). Reading goes on while a few
        small messages wait; a big one, or `READ_AHEAD` waiting, stop it as before."""
        size = sum(len(frame) for frame in self.frames)
        paused = self.read_paused
        self.read_paused = True  # uvicorn's own pause skipped: decided here
        try:
            super().send_receive_event_to_app()
        finally:
            self.read_paused = paused
        if not paused and (self.queue.qsize() >= READ_AHEAD or size > READ_AHEAD_BYTES):
            self.read_paused = True
            self.transport.pause_reading()


# The scope extension of the kit's WebSocket connections: `send_text_now(frame) -> bool`.
SEND_TEXT_NOW = "audifi.send_text_now"


def prepared_text_frame(payload: bytes) -> bytes:
    """A server's text frame of `payload` (UTF-8) as it goes on the wire: unmasked, final, no
    extension (the kit offers none), so the same bytes serve every client (RFC 6455 5.2)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + payload


# Messages a WebSocket connection reads ahead of its app, and the largest one that does not
# stop reading at once (a vote or a ping is a hundred bytes).
READ_AHEAD = 16
READ_AHEAD_BYTES = 4096


_WS_FAILED = "Failed to open a WebSocket connection: "


def _weight(name: str) -> int:
    return 2 if name == GATEWAY else 1  # the gateway holds an upstream socket per connection


def protocol_for(ceiling: ConnectionCeiling | None, weight: int, need: int) -> type[Http11]:
    return type("AudifiHttp11", (Http11,), {"ceiling": ceiling, "weight": weight, "need": need})


# ---------------------------------------------------------------------------- servers


def _proxy_headers(name: str, settings: Settings) -> dict[str, Any]:
    """Whose X-Forwarded-For a server believes. Always explicit: uvicorn would otherwise read
    FORWARDED_ALLOW_IPS and default to loopback."""
    trusted = settings.trusted_proxies if name == GATEWAY else settings.internal_proxies
    if not trusted:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": trusted}


def server_config(
    app: Any,
    name: str,
    settings: Settings,
    *,
    ceiling: ConnectionCeiling | None = None,
    upstreams_here: bool = False,
    port: int | None = None,
) -> uvicorn.Config:
    """The uvicorn configuration of deployable `name`. `upstreams_here`: the services the
    gateway proxies to run in this process (one of its connections then costs three sockets)."""
    weight = _weight(name)
    need = weight + 1 if name == GATEWAY and upstreams_here else weight
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port(name) if port is None else port,
        log_config=None,
        access_log=False,
        lifespan="on",
        http=protocol_for(ceiling, weight, need),
        ws=WebSocketSansIO,
        # permessage-deflate is not offered: it cost 50 KB a socket (its zlib contexts) and
        # most of a big room's fan-out CPU (vstudio's rooms_bench), for frames of a few
        # hundred bytes.
        ws_per_message_deflate=False,
        timeout_graceful_shutdown=5,
        backlog=ceiling.backlog if ceiling is not None else MAX_BACKLOG,
        **_proxy_headers(name, settings),
    )


class Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: `launch.serve` stops all at once."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def build_servers(apps: dict[str, Any], settings: Settings) -> list[Server]:
    """One server per app (in the order given) sharing the process's connection ceiling."""
    if os.environ.get("FORWARDED_ALLOW_IPS"):
        log.warning(
            "FORWARDED_ALLOW_IPS is ignored: set AUDIFI_TRUSTED_PROXIES (the gateway) and "
            "AUDIFI_INTERNAL_PROXIES (the services)"
        )
    ceiling = connection_ceiling(settings, list(apps))
    upstreams_here = GATEWAY in apps and len(apps) > 1
    servers = []
    for name, app in apps.items():
        config = server_config(app, name, settings, ceiling=ceiling, upstreams_here=upstreams_here)
        server = Server(config)
        ceiling.track(server.server_state.connections, _weight(name))
        servers.append(server)
    log.info(
        "serving %s: at most %s connection sockets (descriptor limit %s)",
        ", ".join(apps),
        ceiling.limit,
        resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    )
    return servers
