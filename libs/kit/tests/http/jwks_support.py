"""Ed25519 signing keys that mint tokens as auth does, and what a JWKS server publishes."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

ISSUER = "https://auth.audifi.test"
AUDIENCE = "audifi"


@dataclass
class SigningKey:
    kid: str
    private: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def public_jwk(self) -> dict[str, Any]:
        jwk = dict(OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True))
        return jwk | {"kid": self.kid, "alg": "EdDSA", "use": "sig"}

    def token(self, sub: str = "user-1", *, roles=("fan",), ttl: float = 300, **claims) -> str:
        now = int(time.time())
        payload = {
            "sub": sub,
            "roles": list(roles),
            "sid": "session-1",
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + ttl,
        } | claims
        return jwt.encode(payload, self.private, algorithm="EdDSA", headers={"kid": self.kid})


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
