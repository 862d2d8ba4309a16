"""What the gateway checks of a client request before any of it reaches a service (issue 9).

The gateway is where a request from outside enters the platform, so what would make the
upstream client fail on the client's account, or make a service wait for bytes that never
come, is refused here, in the error envelope, and the upstream never sees the request:

* the request target: path and query at most `MAX_TARGET` bytes (414 URI_TOO_LONG); no `#`
  (a fragment is not part of a request, and the upstream client would cut it off);
* header values: no control characters (the upstream clients refuse to send them) and UTF-8
  (the upstream clients send header text as UTF-8: other bytes would reach the service
  changed) -> 400;
* the body's framing: Content-Length together with Transfer-Encoding is refused (RFC 9112
  §6.1 lets a server do so; forwarding both is how requests get smuggled, and forwarding the
  Content-Length alone made a service wait for a body that never came) -> 400; a body on GET
  or HEAD -> 400 (it has no meaning there, RFC 9110 §9.3.1); a declared length over the
  route's limit -> 413 PAYLOAD_TOO_LARGE;
* the body itself, read whole before anything is forwarded: at most the limit (413), within
  AUDIFI_BODY_TIMEOUT (408 REQUEST_TIMEOUT, to that client only: a slow or vanished client is
  never the upstream's failure); a JSON body is checked by the kit's `check_json_body` (400 for
  nesting too deep to decode safely or bytes that are not UTF-8).

A refusal that leaves some of the declared body unread carries `Connection: close` (as does
one of a malformed request line or header: such a client gets no second request on the
connection): the server then closes the connection instead of reading, and discarding, what
the client still sends.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from audifi_kit.errors import DomainError, PayloadTooLarge, ValidationFailed
from audifi_kit.http.bodies import check_json_body
from litestar.types import Receive, Scope

# Path and query: browsers and proxies handle 8 KiB; no API of the platform needs more.
MAX_TARGET = 8 * 1024
CLOSE = {"Connection": "close"}
# Control characters other than HTAB, as aiohttp and websockets refuse them in header values.
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_BODILESS = frozenset({"GET", "HEAD"})


class RequestTimeout(DomainError):
    code = "REQUEST_TIMEOUT"
    status_code = 408
    default_message = "The request body did not arrive in time"


class UriTooLong(DomainError):
    code = "URI_TOO_LONG"
    status_code = 414
    default_message = "The request target is too long"


class ClientDisconnected(Exception):
    """The client went away before its request body had arrived."""


@dataclass(frozen=True, slots=True)
class Framing:
    """How the client said its body comes: `length` bytes, or chunked (`length` None)."""

    has_body: bool
    length: int | None

    def check(self, method: str, limit: int) -> None:
        """Refuse, before reading anything, a body the request must not have or may not fit."""
        if not self.has_body:
            return
        if method in _BODILESS:
            raise ValidationFailed(f"A {method} request must not have a body", headers=CLOSE)
        if self.length is not None and self.length > limit:
            raise _too_large(limit)


def check_request(scope: Scope) -> Framing:
    """Check the request target and headers (see the module); the body's framing."""
    target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    if target > MAX_TARGET:
        raise UriTooLong(details={"limit": MAX_TARGET}, headers=CLOSE)
    if b"#" in (scope.get("raw_path") or b"") or b"#" in (scope.get("query_string") or b""):
        raise ValidationFailed("The request target must not contain '#'", headers=CLOSE)
    length: int | None = None
    chunked = False
    for name, value in scope.get("headers", ()):
        if _CONTROL.search(value) is not None:
            raise ValidationFailed(
                "A header value contains a control character",
                details={"header": name.decode("latin-1")},
                headers=CLOSE,
            )
        if not value.isascii():
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationFailed(
                    "A header value is not UTF-8 text",
                    details={"header": name.decode("latin-1")},
                    headers=CLOSE,
                ) from None
        if name == b"content-length":
            length = int(value)  # the server has checked that it is digits
        elif name == b"transfer-encoding":
            chunked = True
    if chunked and length is not None:
        raise ValidationFailed(
            "A request must not have both Content-Length and Transfer-Encoding", headers=CLOSE
        )
    return Framing(has_body=chunked or bool(length), length=None if chunked else length)


async def read_body(receive: Receive, *, limit: int, timeout: float) -> bytes:
    """The whole request body; 413 past `limit` bytes, 408 when it takes over `timeout`."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnected
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:  # a chunked body says its size only by arriving
                    raise _too_large(limit)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError:
        raise RequestTimeout(
            f"The request body did not arrive within {timeout:g} seconds",
            details={"timeoutSeconds": timeout},
            headers=CLOSE,
        ) from None


def check_body(scope: Scope, body: bytes) -> None:
    """A JSON body must be safe to decode: the services' decoders get it next."""
    if body and _is_json(scope):
        check_json_body(body)


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = value.partition(b";")[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than {limit} bytes",
        details={"limit": limit},
        headers=CLOSE,
    )
