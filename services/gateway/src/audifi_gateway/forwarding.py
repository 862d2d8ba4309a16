"""What headers cross the gateway, in either direction (RFC 9110 §7.6.1, RFC 7239's X- form).

Hop-by-hop headers describe one connection, not the message, so they never cross: Connection
and every header it names, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade and Proxy-*.
Towards a service the gateway also replaces what a client must not choose: `Host` (the
upstream's), `X-Request-Id` (the kit's id of this request), `X-User-Id` / `X-User-Roles` (set
only from a verified token) and `X-Forwarded-*` (the gateway says who connected, below;
`X-Forwarded-Proto` and `X-Forwarded-Host` are what the client used). `Authorization` and
cookies pass unchanged: services verify the token again.

`X-Forwarded-For` carries one address: the client's, as the gateway's server resolved it
(`scope["client"]`: the peer, or what a proxy in AUDIFI_TRUSTED_PROXIES said the peer was).
Whatever the client itself sent there is dropped: services trust the gateway's word on the
client's address (per-IP limits, auth's brute-force budgets), so a list the client could add
to would let any client choose its own address.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from audifi_kit.http.auth import Identity
from audifi_kit.http.requests import current_request_id
from litestar.types import Scope

from audifi_gateway.edge_auth import USER_ID_HEADER, USER_ROLES_HEADER, identity_headers

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Set by the gateway itself towards an upstream, whatever the client sent.
_REPLACED_UPSTREAM = frozenset(
    {
        b"host",
        b"x-request-id",
        USER_ID_HEADER.encode(),
        USER_ROLES_HEADER.encode(),
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        # httpx does not do 100-continue; the ASGI server already answered it.
        b"expect",
    }
)
# Set by the gateway's own server on the way out.
_REPLACED_DOWNSTREAM = frozenset({b"date", b"server", b"x-request-id"})


def end_to_end(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """`headers` without the hop-by-hop ones (names lower-cased, order and repeats kept)."""
    pairs = [(name.lower(), value) for name, value in headers]
    named = {
        token.strip().lower()
        for name, value in pairs
        if name == b"connection"
        for token in value.split(b",")
    }
    return [
        (name, value)
        for name, value in pairs
        if name not in HOP_BY_HOP and name not in named and not name.startswith(b"proxy-")
    ]


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def upstream_headers(
    scope: Scope, identity: Identity | None, *, skip: Sequence[bytes] = ()
) -> Headers:
    """The headers a service receives for this client request."""
    dropped = _REPLACED_UPSTREAM.union(skip)
    headers = [(n, v) for n, v in end_to_end(scope.get("headers", ())) if n not in dropped]
    headers.append((b"x-forwarded-for", client_address(scope).encode("latin-1")))
    scheme = scope.get("scheme", "http").replace("ws", "http")
    headers.append((b"x-forwarded-proto", scheme.encode("latin-1")))
    if (host := header(scope, b"host")) is not None:
        headers.append((b"x-forwarded-host", host))
    if (request_id := current_request_id()) is not None:
        headers.append((b"x-request-id", request_id.encode("latin-1")))
    if identity is not None:
        headers.extend(identity_headers(identity))
    return headers


def downstream_headers(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The headers a client receives from a service's response."""
    return [(n, v) for n, v in end_to_end(headers) if n not in _REPLACED_DOWNSTREAM]
