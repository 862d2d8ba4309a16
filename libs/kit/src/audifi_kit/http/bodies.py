"""Request bodies checked before anything decodes them (issue 9).

`check_json_body` refuses what a JSON decoder must never be given: nesting deep enough to
exhaust the C stack of msgspec's recursive decoder, and bytes that are not UTF-8 (which
would otherwise surface as an unhandled `UnicodeDecodeError`). The gateway calls it on what
it forwards; every app of `create_service_app` runs it through two middlewares:

* `RouteGuard` (outermost, before auth), on what the request line and headers say, before a
  byte of body is read: a GET, HEAD, DELETE or OPTIONS that announces a body is refused (400,
  as the gateway does: such a body means nothing here, and reading it only costs), so is an
  announced `Content-Length` over the route's limit (413); both close the connection, so
  the server does not drain the body either. It answers OPTIONS itself: 204 with an `Allow`
  naming every method of the path, for any caller, since it reveals nothing the OpenAPI
  does not.
* `BodyGuard` (after auth, before idempotency and the handler): no route reads more than its
  limit (413, also for chunked bodies); a route whose `data` is JSON gets only a JSON body
  (`application/json` or `+json`, else 415), a non-empty one when `data` is required (400
  "A JSON body is required"), and one `check_json_body` accepts.

The limit is Litestar's `request_max_body_size`: the app's default (`create_service_app`'s
`max_body_size`, 1 MiB) unless a route or router sets its own. `@asgi` routes (the gateway's
proxy) own their body and are left to themselves.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable
from itertools import accumulate
from typing import Any

import msgspec
from litestar.enums import HttpMethod, RequestEncodingType, ScopeType
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.params import BodyKwarg
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from audifi_kit.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed

DEFAULT_MAX_BODY_SIZE = 1024 * 1024
DEFAULT_MAX_JSON_DEPTH = 64

# What decides nesting: brackets, and the quotes that say which brackets are inside strings.
_STRUCTURAL = b'"[]{}'
_NOT_STRUCTURAL = bytes(b for b in range(256) if b not in _STRUCTURAL)
# Openers become +1 and closers -1 once the bytes are read as signed chars.
_STEPS = bytes.maketrans(b"[]{}", b"\x01\xff\x01\xff")


def check_json_body(body: bytes, *, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> None:
    """Raise `ValidationFailed` (400) unless `body` is UTF-8 nested at most `max_depth` deep.

    Only the nesting a decoder would recurse into is counted: brackets inside string literals
    are skipped. Whether the body is otherwise valid JSON is left to the decoder.
    """
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationFailed(
                "The request body is not valid UTF-8", details={"position": exc.start}
            ) from None
    # No body with this few openers can nest deeper than the limit: the common case, no scan.
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return
    structure = _outside_strings(body)
    if structure.count(b"[") + structure.count(b"{") <= max_depth:
        return
    # A decoder stops at the first closer that does not match, so the running balance of
    # openers over closers bounds how deep it can recurse.
    depth = max(accumulate(memoryview(structure.translate(_STEPS)).cast("b")))
    if depth > max_depth:
        raise ValidationFailed(
            f"The JSON body is nested deeper than {max_depth} levels",
            details={"maxDepth": max_depth},
        )


def _outside_strings(body: bytes) -> bytes:
    """The brackets of `body` that are not inside a string literal, in order.

    Built from C-speed bytes operations rather than a per-character loop or a regex over
    every literal, so a 1 MiB body costs less than decoding it.
    """
    if b"\\" in body:
        # Escaped backslashes first, so `\\"` still ends its string while `\"` does not;
        # any other escape's second character is not structural and is dropped below.
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = body.translate(None, _NOT_STRUCTURAL)
    if b'"' in structure:
        # Every other piece between quotes is a literal's content; an unterminated literal
        # runs to the end, as it would for the decoder.
        structure = b"".join(structure.split(b'"')[::2])
    return structure


# ------------------------------------------------------------------------------ middleware

# Litestar adds this handler to every path without an OPTIONS handler of its own; its `Allow`
# names only the methods registered before it (a path whose handlers are declared one by one
# gets an `Allow` of its first handler's methods), so the guard answers in its place.
_GENERATED_OPTIONS = "HTTPRoute.create_options_handler.<locals>.options_handler"


_BODILESS = frozenset({HttpMethod.GET, HttpMethod.HEAD, HttpMethod.DELETE, HttpMethod.OPTIONS})
# The refused body is never read: the connection closes rather than have the server drain it.
_CLOSE = {"Connection": "close"}
_REQUIRED = "A JSON body is required"


class RouteGuard(ASGIMiddleware):
    """OPTIONS answered for every route; a body refused unread where it cannot be wanted."""

    scopes = (ScopeType.HTTP,)

    def __init__(self) -> None:
        self._allow: dict[int, bytes] = {}

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        handler = scope["route_handler"]
        if not isinstance(handler, HTTPRouteHandler):
            await next_app(scope, receive, send)
            return
        method = scope["method"]
        if method in _BODILESS and _announces_body(scope) and _json_data(handler) is None:
            raise ValidationFailed(
                f"A {method} request takes no body", details={"body": "unexpected"}, headers=_CLOSE
            )
        if method == HttpMethod.OPTIONS and _is_generated_options(handler):
            await _no_content(send, self._allow_header(scope, handler))
            return
        limit = handler.resolve_request_max_body_size()
        announced = _content_length(scope)
        if limit is not None and announced is not None and announced > limit:
            raise _too_large(limit, unread=True)
        await next_app(scope, receive, send)

    def _allow_header(self, scope: Scope, handler: HTTPRouteHandler) -> bytes:
        allow = self._allow.get(id(handler))
        if allow is None:
            methods = _methods_of(scope["litestar_app"].routes, handler.paths)
            allow = self._allow[id(handler)] = ", ".join(sorted(methods)).encode()
        return allow


class BodyGuard(ASGIMiddleware):
    """A body is read within its limit, and a JSON one is checked before it is decoded."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, *, max_json_depth: int = DEFAULT_MAX_JSON_DEPTH) -> None:
        self.max_json_depth = max_json_depth

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        handler = scope["route_handler"]
        if not isinstance(handler, HTTPRouteHandler):
            await next_app(scope, receive, send)
            return
        limit = handler.resolve_request_max_body_size()
        required = _json_data(handler)
        if required is None:
            await next_app(scope, _bounded(receive, limit), send)
            return
        if _announces_body(scope) and not _is_json(_header(scope, b"content-type")):
            raise UnsupportedMediaType(
                "This route takes a JSON body: send it as Content-Type application/json",
                details={"expected": "application/json"},
            )
        body = await _read(receive, limit)
        if body is None:  # the client left before its body arrived: nobody to answer
            return
        if not body:
            if required:
                raise ValidationFailed(
                    _REQUIRED,
                    details={"fields": [{"field": None, "source": "body", "message": _REQUIRED}]},
                )
        else:
            check_json_body(body, max_depth=self.max_json_depth)
            _check_json_types(handler, body)
        await next_app(scope, _replay(body, receive), send)


def _is_generated_options(handler: HTTPRouteHandler) -> bool:
    return getattr(handler.fn, "__qualname__", None) == _GENERATED_OPTIONS


def _methods_of(routes: Iterable[Any], paths: Iterable[str]) -> set[str]:
    wanted = set(paths)
    return {
        method
        for route in routes
        if isinstance(route, HTTPRoute) and route.path in wanted
        for method in route.methods
    }


async def _no_content(send: Send, allow: bytes) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": [(b"allow", allow)]})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _json_data(handler: HTTPRouteHandler) -> bool | None:
    """Whether the handler's `data` must be present; None when it takes no JSON body."""
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return None
    kwarg = data.kwarg_definition
    media_type = kwarg.media_type if isinstance(kwarg, BodyKwarg) else RequestEncodingType.JSON
    if media_type != RequestEncodingType.JSON:
        return None  # form and MessagePack bodies: Litestar's parsers, within the size limit
    return not (data.is_optional or data.has_default)


_DECODERS: weakref.WeakKeyDictionary[HTTPRouteHandler, msgspec.json.Decoder[Any] | None] = (
    weakref.WeakKeyDictionary()
)
_MISSING = re.compile(r"^Object missing required field `([^`]+)`")
# msgspec ends its message with where: "- at `$.a[0].b`", or "- at `key` in `$.a`".
_PATH = re.compile(r" - at (?:`key` in )?`\$([^`]*)`$")


def _check_json_types(handler: HTTPRouteHandler, body: bytes) -> None:
    """The body decoded as JSON strictly against the handler's `data` type.

    Litestar converts bodies leniently (as it must query strings): `100.0` or `"100"` would
    become the integer 100. A JSON body says what it means: an amount of money sent as a
    float or a string is refused with the field named, never rounded or parsed.
    """
    if handler not in _DECODERS:
        data = handler.parsed_fn_signature.parameters["data"]
        try:
            _DECODERS[handler] = msgspec.json.Decoder(data.annotation, strict=True)
        except TypeError:  # a type msgspec cannot decode by itself: Litestar's own path
            _DECODERS[handler] = None
    decoder = _DECODERS[handler]
    if decoder is None:
        return
    try:
        decoder.decode(body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        found = _PATH.search(text)
        field = None
        if found:
            path = found[1]
            field = path.lstrip(".") or None
            text = text[: found.start()]
        if missing := _MISSING.search(text):  # named in the message, against its parent
            field = f"{field}.{missing[1]}" if field else missing[1]
        raise ValidationFailed(
            "Request validation failed",
            details={"fields": [{"field": field, "source": "body", "message": text}]},
        ) from None
    except msgspec.DecodeError:
        return  # not JSON at all: Litestar answers it as ever


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:  # the server refuses such a request first; never guess a size
        return None


def _announces_body(scope: Scope) -> bool:
    length = _content_length(scope)
    if length is not None:
        return length > 0
    return _header(scope, b"transfer-encoding") is not None


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or (
        media_type.startswith(b"application/") and media_type.endswith(b"+json")
    )


def _too_large(limit: int, *, unread: bool = False) -> PayloadTooLarge:
    """413; `unread`: refused on its announced length, so the connection closes undrained.

    Refused part way through, the rest of the body is left to the server, which discards it
    and keeps the connection: closing it on a client still sending would reset the
    connection, and the client would see that instead of the 413.
    """
    return PayloadTooLarge(
        f"The request body is larger than {limit} bytes",
        details={"maxBytes": limit},
        headers=_CLOSE if unread else None,
    )


async def _read(receive: Receive, limit: int | None) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body read already, then what the connection says next."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _bounded(receive: Receive, limit: int | None) -> Receive:
    """A `receive` that refuses to deliver more than `limit` bytes of body, to any reader."""
    if limit is None:
        return receive
    size = 0

    async def bounded() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise _too_large(limit)
        return message

    return bounded


__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_JSON_DEPTH",
    "BodyGuard",
    "RouteGuard",
    "check_json_body",
]
