"""Who is calling: EdDSA access tokens verified against the auth service's JWKS (§7).

Every service verifies the token again (zero trust), with keys fetched from auth's
`/.well-known/jwks.json`: cached, fetched again when a token names an unknown `kid` (key
rotation), but never more often than `min_refetch_interval`, so a flood of forged `kid`s cannot
make a service hammer auth.

Routes are protected by default once the app has a JWKS URL; a route (or router, controller)
opts out with `opt={"public": True}`. The verified `Identity` is `request.user`, and handlers
may ask for it as the `identity` dependency. `require_roles("admin")` is a guard: 403 when the
caller lacks every named role.

Claims: `sub` is the user id, `roles` a list of role names, `sid` the session id; `exp` is
required; `iss` and `aud` are checked when configured.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import structlog
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from audifi_kit.errors import Forbidden, Unauthorized
from audifi_kit.http.revocations import RevocationStore, session_revoked

log = structlog.get_logger("audifi.http.auth")

PUBLIC_OPT = "public"
ALGORITHMS = ["EdDSA"]


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    roles: frozenset[str]
    session_id: str | None = None

    def has_any(self, *roles: str) -> bool:
        return not self.roles.isdisjoint(roles)


class JwksKeys:
    """The signing keys published at a JWKS URL, fetched with httpx and cached by `kid`."""

    def __init__(
        self,
        url: str,
        *,
        min_refetch_interval: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.min_refetch_interval = min_refetch_interval
        self.timeout = timeout
        self.fetches = 0
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key named `kid`; an unknown one triggers a refetch unless one happened lately."""
        if (found := self._keys.get(kid)) is not None:
            return found
        async with self._lock:
            if (found := self._keys.get(kid)) is not None:  # fetched while we waited
                return found
            recently = (
                self._fetched_at is not None
                and time.monotonic() - self._fetched_at < self.min_refetch_interval
            )
            if recently:
                return None
            await self._fetch()
            return self._keys.get(kid)

    async def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        self.fetches += 1
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        try:
            response = await self._client.get(self.url)
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json()).keys
        except (httpx.HTTPError, ValueError, jwt.PyJWKSetError) as exc:
            # Keep the keys we have: a flaky auth service must not log everybody out.
            log.warning("jwks_fetch_failed", url=self.url, error=str(exc))
            return
        self._keys = {k.key_id: k for k in keys if k.key_id}

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class TokenVerifier:
    """Turns a bearer token into an `Identity`, or raises `Unauthorized`."""

    def __init__(
        self,
        keys: JwksKeys,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        leeway: float = 0.0,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway

    async def verify(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("Malformed access token") from exc
        kid = header.get("kid")
        if not isinstance(kid, str) or header.get("alg") not in ALGORITHMS:
            raise Unauthorized("Access token has no usable key id or algorithm")
        key = await self.keys.key(kid)
        if key is None:
            raise Unauthorized("Access token signed by an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=ALGORITHMS,
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self.audience is not None,
                    "verify_iss": self.issuer is not None,
                },
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("Access token expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("Invalid access token") from exc
        roles = claims.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthorized("Invalid access token")
        sid = claims.get("sid")
        return Identity(
            user_id=str(claims["sub"]),
            roles=frozenset(roles),
            session_id=str(sid) if sid is not None else None,
        )


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


class AuthMiddleware(ASGIMiddleware):
    """Sets `scope["user"]` to the verified `Identity` on every route not marked public.

    With `revocations`, a token of a revoked session (its `sid`) is refused as the gateway
    refuses it: 401 UNAUTHORIZED.
    """

    exclude_opt_key = PUBLIC_OPT

    def __init__(self, verifier: TokenVerifier, revocations: RevocationStore | None = None) -> None:
        self.verifier = verifier
        self.revocations = revocations

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        token = bearer_token(scope)
        if token is None:
            raise Unauthorized("A bearer access token is required")
        identity = await self.verifier.verify(token)
        if (
            self.revocations is not None
            and identity.session_id is not None
            and await session_revoked(self.revocations, identity.session_id)
        ):
            raise Unauthorized("This session has been signed out")
        scope["user"] = identity
        with structlog.contextvars.bound_contextvars(user_id=identity.user_id):
            await next_app(scope, receive, send)


def identity_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Identity:
    identity = connection.scope.get("user")
    if not isinstance(identity, Identity):
        raise Unauthorized()
    return identity


async def provide_identity(request: ASGIConnection[Any, Any, Any, Any]) -> Identity:
    """The `identity` dependency: the verified caller of a protected route."""
    return identity_of(request)


def require_roles(*roles: str) -> Any:
    """A guard: the caller must hold at least one of `roles` (403 FORBIDDEN otherwise)."""
    wanted = frozenset(roles)

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if identity_of(connection).roles.isdisjoint(wanted):
            raise Forbidden(
                "This action needs another role", details={"requiredRoles": sorted(wanted)}
            )

    guard.__name__ = f"require_roles({', '.join(sorted(wanted))})"
    return guard
