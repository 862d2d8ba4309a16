"""A real JWKS server on 127.0.0.1 (uvicorn), Ed25519 signing keys and token minting."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from litestar import Litestar, get

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


@pytest.fixture
def signing_key() -> SigningKey:
    return SigningKey(kid="k-1")


@pytest.fixture
def jwks_server(signing_key: SigningKey) -> Iterator[JwksServer]:
    """Served by uvicorn on its own thread and loop: Litestar's AsyncTestClient blocks the
    test's loop while the app handles a request, so a server on that loop could not answer."""
    server_state = JwksServer(keys=[signing_key])

    @get("/.well-known/jwks.json", sync_to_thread=False)
    def jwks() -> dict[str, Any]:
        server_state.hits += 1
        return {"keys": [k.public_jwk() for k in server_state.keys]}

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(Litestar([jwks]), log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "JWKS server did not start"
        time.sleep(0.01)
    server_state.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
    try:
        yield server_state
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
