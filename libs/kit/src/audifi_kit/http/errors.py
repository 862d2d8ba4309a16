"""The error envelope every service answers with (ARCHITECTURE.md §7), mapped in one place.

The vocabulary itself (`DomainError` and its subclasses) lives in `audifi_kit.errors`, free of
the web; it is re-exported here for code that already imports it from this module. Handlers
raise typed exceptions (`DomainError` subclasses, or the kit's own such as
`ConcurrencyConflict`); one exception handler turns each into
`{"error": {"code", "message", "details"}, "requestId"}`. Anything unexpected becomes a 500
INTERNAL whose body says nothing about the exception: its text and traceback go to the log,
tagged with the request id, never to the client.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)

from audifi_kit.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Internal,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from audifi_kit.eventstore import ConcurrencyConflict
from audifi_kit.http.requests import current_request_id

log = structlog.get_logger("audifi.http")

# Litestar's own HTTP exceptions by status: their `detail` is fixed text, safe to show.
_BY_STATUS: dict[int, type[DomainError]] = {
    400: ValidationFailed,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    429: RateLimited,
    503: Unavailable,
}


def envelope(code: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {
        "error": {"code": code, "message": message, "details": dict(details or {})},
        "requestId": current_request_id(),
    }


def error_response(error: DomainError) -> Response[dict[str, Any]]:
    return Response(
        envelope(error.code, error.message, error.details),
        status_code=error.status_code,
        headers=error.headers,
        media_type=MediaType.JSON,
    )


def to_domain_error(exc: Exception) -> DomainError:
    """The client-facing meaning of any exception raised while serving a request."""
    if isinstance(exc, DomainError):
        return exc
    if isinstance(exc, ConcurrencyConflict):
        # Retry-After marks the conflict as transient: an idempotency key is released for it.
        return Conflict(
            "Another request changed this resource first; retry", headers={"Retry-After": "0"}
        )
    if isinstance(exc, ValidationException):
        return ValidationFailed("Request validation failed", details=_fields(exc.extra))
    if isinstance(exc, NotFoundException):
        return NotFound("No such route")
    if isinstance(exc, MethodNotAllowedException):
        allow = (exc.headers or {}).get("Allow") or (exc.headers or {}).get("allow")
        if allow:
            allow = ", ".join(sorted(method.strip() for method in allow.split(",")))
        return MethodNotAllowed(headers={"Allow": allow} if allow else None)
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        kind = _BY_STATUS.get(exc.status_code)
        if kind is not None:
            return kind(exc.detail or None, headers=exc.headers)
        return _client_error(exc)
    if isinstance(exc, HTTPException) and exc.status_code == 503:
        return Unavailable()
    return Internal()


def _client_error(exc: HTTPException) -> DomainError:
    """A 4xx Litestar raises that the envelope has no code of its own for (413, 415, ...)."""
    return DomainError(
        exc.detail or None,
        headers=exc.headers,
        code=f"HTTP_{exc.status_code}",
        status_code=exc.status_code,
    )


_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
_ABSENT = {"data": "A request body is required"}


def _fields(extra: Any) -> dict[str, Any]:
    """Litestar's validation messages as `{"fields": [{"field", "source", "message"}]}`."""
    items = extra if isinstance(extra, list) else [extra] if extra else []
    fields = []
    for item in items:
        if isinstance(item, Mapping):
            field, message = item.get("key"), str(item.get("message", ""))
            # msgspec names a missing field only in its message, against the parent's key.
            if missing := _MISSING_FIELD.search(message):
                field = missing[1] if field in (None, "data") else f"{field}.{missing[1]}"
            elif field is not None and message == repr(field):
                # Litestar's text for a kwarg it could not find is the KeyError's: "'data'".
                message = _ABSENT.get(field, "A value is required")
                field = None if field == "data" else field
            entry = {"field": field, "message": message}
            source = item.get("source")
            if source is not None:
                entry["source"] = str(getattr(source, "value", source))
            fields.append(entry)
        else:
            fields.append({"field": None, "message": str(item)})
    return {"fields": fields}


def handle_exception(_request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The app's one exception handler: every error leaves as the envelope."""
    error = to_domain_error(exc)
    if error.status_code >= 500 and not isinstance(exc, DomainError):
        log.error("unhandled_exception", exc_info=exc, exception_type=type(exc).__name__)
    elif error.status_code >= 500:
        log.warning("request_failed", code=error.code, message=error.message)
    return error_response(error)


__all__ = ["envelope", "error_response", "handle_exception", "to_domain_error"]
