"""Request ids, the request's context and structured logging.

Every request gets an id: the client's `X-Request-Id` when it is a sane token, else a new one.
For the whole request it is bound into structlog's context (every log line carries it), set as
the causing metadata of any event the request saves (`audifi_kit.metadata.current`), written
into error envelopes and echoed in the response's `X-Request-Id` header.

`RequestContext` wraps the whole Litestar app (outside its routing), so unknown routes and
wrong methods get the id too; it also records the request metrics and one access-log line.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from audifi_kit import logsafety
from audifi_kit import metadata as meta
from audifi_kit.http.metrics import observe_request

REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_request_id: ContextVar[str | None] = ContextVar("audifi_request_id", default=None)

access_log = structlog.get_logger("audifi.http.access")


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    return _request_id.get()


def request_id_from(header: str | None) -> str:
    """The client's id when it is a sane token (<= 128 of [A-Za-z0-9._-]), else a new one."""
    if header and _SANE_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class RequestContext:
    """ASGI wrapper around the app: request id, event metadata, log context, metrics."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._websocket(scope, receive, send)
            return
        request_id = request_id_from(_header(scope, b"x-request-id"))
        method = scope["method"]
        started = time.perf_counter()
        status = 500
        raw_id = request_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", ()) if k != b"x-request-id"]
                headers.append((b"x-request-id", raw_id))
                message["headers"] = headers
            await send(message)

        with serving(scope, request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                route = scope.get("path_template") or None
                observe_request(self.service, method, route, status, started)
                access_log.info(
                    "request",
                    method=method,
                    route=route,
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        with serving(scope, request_id_from(_header(scope, b"x-request-id"))):
            await self.app(scope, receive, send)


@contextmanager
def serving(scope: Scope, request_id: str) -> Iterator[None]:
    """For the request's duration: its id in logs, envelopes and the events it causes."""
    scope.setdefault("state", {})["request_id"] = request_id
    id_token = _request_id.set(request_id)
    causing = meta.EventMetadata(
        correlation_id=request_id,
        causation_id=request_id,
        traceparent=_header(scope, b"traceparent"),
    )
    # Bound and reset by token: structlog's bound_contextvars reads the whole context first,
    # a cost every request and socket paid for nothing.
    log_tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        with meta.caused_by(causing):
            yield
    finally:
        structlog.contextvars.reset_contextvars(**log_tokens)
        _request_id.reset(id_token)


# ---------------------------------------------------------------------------------- logging

_SECRET_KEYS = logsafety.SECRET_KEYS
_REDACTED = logsafety.REDACTED


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A log line never carries a credential, whatever a caller passed (ARCHITECTURE §9): a
    value under a secret-looking key, at any depth, is replaced; every string (the message
    included) loses JWT-shaped tokens and secret query, form and JSON parameters."""
    return logsafety.redact_event_dict(event_dict)  # type: ignore[arg-type]


_HANDLER_MARK = "_audifi_json_handler"


def configure_logging(
    service: str, level: str | int = "INFO", *, stream: IO[str] | None = None
) -> None:
    """One JSON object per line on `stream` (stderr), for structlog and stdlib loggers alike.

    Each line carries the service, the level, an ISO UTC timestamp and whatever the context
    has bound (the request id while serving a request). Calling it again replaces the handler.
    Credentials are redacted last, after exceptions are rendered, for structlog's lines and
    for the stdlib's (uvicorn's, asyncio's) alike; a warning repeated per attempt by the
    server's loggers is written once per interval, and uvicorn's per-connection WebSocket
    lines not at all (`logsafety`).
    """
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_secrets,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    logsafety.install_repeat_filter()
    logsafety.install_connection_lines_filter()


def _add_service(service: str) -> Any:
    def add(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
        event_dict.setdefault("service", service)
        return event_dict

    return add
