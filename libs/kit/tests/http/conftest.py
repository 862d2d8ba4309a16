"""A real JWKS server on 127.0.0.1 (uvicorn), Ed25519 signing keys and token minting."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from jwks_support import JwksServer, SigningKey
from litestar import Litestar, get


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
    # log_config=None: uvicorn's default config would stop its loggers propagating to the root
    # handler for the rest of the session (the log redaction tests read what reaches it).
    config = uvicorn.Config(Litestar([jwks]), log_config=None, lifespan="off", access_log=False)
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
