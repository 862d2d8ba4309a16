"""Edge authentication: who is calling, decided before anything reaches a service (§7).

An authenticated route needs an EdDSA access token (`Authorization: Bearer ...`; the V Studio
WebSocket may carry it as `?access_token=`, since browsers cannot set headers there),
verified with the kit's `TokenVerifier` against auth's JWKS, and whose session (`sid`) has not
been revoked (`revocations`). Missing, malformed, forged, expired or revoked: 401
UNAUTHORIZED, and the upstream never sees the request.

What passes is forwarded as it came (services verify the token again: zero trust), plus the
verified identity as `X-User-Id` and `X-User-Roles` (comma-separated), which are informational:
the gateway always drops any a client sent itself.
"""

from __future__ import annotations

import structlog
from audifi_kit.errors import Unauthorized
from audifi_kit.http.auth import Identity, TokenVerifier
from audifi_kit.http.revocations import RevocationStore, session_revoked

log = structlog.get_logger("audifi.gateway.auth")

USER_ID_HEADER = "x-user-id"
USER_ROLES_HEADER = "x-user-roles"


class EdgeAuth:
    def __init__(self, verifier: TokenVerifier, revocations: RevocationStore) -> None:
        self.verifier = verifier
        self.revocations = revocations

    async def verify(self, token: str | None) -> Identity:
        if token is None:
            raise Unauthorized("A bearer access token is required")
        identity = await self.verifier.verify(token)
        if identity.session_id is not None and await session_revoked(
            self.revocations, identity.session_id
        ):
            raise Unauthorized("This session has been signed out")
        return identity


def identity_headers(identity: Identity) -> list[tuple[bytes, bytes]]:
    return [
        (USER_ID_HEADER.encode(), identity.user_id.encode("latin-1", "replace")),
        (USER_ROLES_HEADER.encode(), ",".join(sorted(identity.roles)).encode("latin-1", "replace")),
    ]
