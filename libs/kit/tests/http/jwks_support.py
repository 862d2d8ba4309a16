"""Ed25519 signing keys that mint tokens as auth does, and what a JWKS server publishes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from audifi_kit.testing import TokenSigner

ISSUER = "https://auth.audifi.test"
AUDIENCE = "audifi"


@dataclass
class SigningKey(TokenSigner):
    """The kit's tests name an issuer and audience, and a fixed session id."""

    def claims(self, sub: str, roles: tuple[str, ...] | list[str], ttl: float) -> dict[str, Any]:
        return super().claims(sub, roles, ttl) | {
            "sid": "session-1",
            "iss": ISSUER,
            "aud": AUDIENCE,
        }


@dataclass
class JwksServer:
    """What the auth service publishes at `/.well-known/jwks.json`, served over real HTTP."""

    keys: list[SigningKey]
    url: str = ""
    hits: int = 0

    def rotate(self) -> SigningKey:
        new = SigningKey(kid=f"k-{uuid.uuid4().hex[:8]}")
        self.keys.append(new)
        return new
