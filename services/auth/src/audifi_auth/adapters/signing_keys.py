"""The keys auth signs access tokens with, and the JWKS every verifier reads them from.

`JWT_PRIVATE_KEY` holds one or more PEM Ed25519 private keys. The first signs new tokens; the
others are still published so tokens they signed verify until they expire: rotating is
prepending a new key, and dropping the old one once its tokens are past their lifetime. Each
key's `kid` is its RFC 7638 thumbprint, so the same key always has the same id.

Unset (the embedded mode), a key is generated once and kept under `<var_dir>/auth/`, readable
by this user only, so a restart does not sign everybody out. A distributed deployment with more
than one auth replica must set `JWT_PRIVATE_KEY`: each replica would otherwise make its own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

log = structlog.get_logger("audifi.auth.signing_keys")

KEY_FILE = Path("auth") / "jwt-signing-keys.pem"
_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z ]+-----.+?-----END [A-Z ]+-----", re.DOTALL)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class SigningKey:
    private: Ed25519PrivateKey

    @property
    def public_jwk(self) -> dict[str, str]:
        x = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {"crv": "Ed25519", "kty": "OKP", "x": _b64url(x)}

    @property
    def kid(self) -> str:
        # RFC 7638: SHA-256 of the required members, sorted, no whitespace.
        canonical = json.dumps(self.public_jwk, sort_keys=True, separators=(",", ":"))
        return _b64url(hashlib.sha256(canonical.encode()).digest())

    def pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


class SigningKeys:
    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise ValueError("at least one signing key is needed")
        self.keys = keys

    @property
    def current(self) -> SigningKey:
        return self.keys[0]

    def jwks(self) -> dict[str, Any]:
        """The public half of every key, as `/.well-known/jwks.json` serves it."""
        return {
            "keys": [
                {**k.public_jwk, "kid": k.kid, "alg": "EdDSA", "use": "sig"} for k in self.keys
            ]
        }

    def sign(self, claims: dict[str, Any]) -> str:
        """A compact JWS of `claims`, signed by the current key and naming it by `kid`."""
        key = self.current
        return jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid})

    @classmethod
    def from_pem(cls, text: str) -> SigningKeys:
        blocks = _PEM_BLOCK.findall(text)
        if not blocks:
            raise ValueError("JWT_PRIVATE_KEY holds no PEM private key")
        keys = []
        for block in blocks:
            private = serialization.load_pem_private_key(block.encode(), password=None)
            if not isinstance(private, Ed25519PrivateKey):
                raise ValueError("JWT_PRIVATE_KEY must hold Ed25519 keys (EdDSA tokens)")
            keys.append(SigningKey(private))
        return cls(keys)

    @classmethod
    def load(cls, environ: dict[str, str] | os._Environ[str], var_dir: Path) -> SigningKeys:
        """From JWT_PRIVATE_KEY, else the key kept under `var_dir` (made on first start)."""
        configured = environ.get("JWT_PRIVATE_KEY", "").strip()
        if configured:
            return cls.from_pem(configured)
        path = var_dir / KEY_FILE
        if path.exists():
            return cls.from_pem(path.read_text())
        key = SigningKey(Ed25519PrivateKey.generate())
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.pem())
        log.warning(
            "signing_key_generated",
            kid=key.kid,
            path=str(path),
            hint="set JWT_PRIVATE_KEY when running more than one auth replica",
        )
        return cls([key])
