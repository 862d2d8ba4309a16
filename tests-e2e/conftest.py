"""The whole platform, distributed, started once for the e2e tests (see platform_processes)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from audifi_auth.adapters.signing_keys import SigningKey, SigningKeys
from audifi_kit.testing import drop_databases
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from platform_processes import SMALL_FOOTPRINT, Platform

# The `write` class (money and minting) low enough for a test to cross; the others as shipped.
E2E_RATE_LIMITS = "write=5/60,auth=1000/60"

# Auth as shipped but quicker: argon2 lighter (never in production), a short brute-force window.
E2E_AUTH = {
    "AUTH_ARGON2_TIME_COST": "1",
    "AUTH_ARGON2_MEMORY_KIB": "8192",
    "AUTH_ARGON2_PARALLELISM": "1",
    "AUTH_LIMIT_WINDOW_SECONDS": "4",
}


@pytest.fixture(scope="session")
def signing_keys() -> SigningKeys:
    """The key auth signs with in this run: tests mint tokens exactly as auth does."""
    return SigningKeys([SigningKey(Ed25519PrivateKey.generate())])


@pytest.fixture(scope="module")
def platform(
    postgres_url: str,
    amqp_url: str,
    redis_url: str,
    signing_keys: SigningKeys,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Platform]:
    """The platform of one test module; a module's `PLATFORM_ENV` adds to or overrides its
    environment (the fuzzing suite's own limits), its `PLATFORM_REPLICAS` runs more replicas
    of a service (`{"vstudio": 2}`)."""
    prefix = f"e2e{uuid.uuid4().hex[:8]}_"
    var_dir = tmp_path_factory.mktemp("platform")
    running = Platform(
        {
            "DATABASE_URL": postgres_url,
            "AMQP_URL": amqp_url,
            "REDIS_URL": redis_url,
            "AUDIFI_DB_PREFIX": prefix,
            "AUDIFI_VAR_DIR": str(var_dir),
            "JWT_PRIVATE_KEY": signing_keys.current.pem().decode(),
            "AUDIFI_RATE_LIMITS": E2E_RATE_LIMITS,
            "AUDIFI_GATEWAY_KEY_PREFIX": f"{prefix}gw",
            **SMALL_FOOTPRINT,
            **E2E_AUTH,
            **getattr(request.module, "PLATFORM_ENV", {}),
        },
        Path(var_dir),
        getattr(request.module, "PLATFORM_REPLICAS", None),
    )
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()
        asyncio.run(drop_databases(postgres_url, prefix))


LOG_CHECKS_MODULE = "test_platform_logs.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The log checks run last, once every other module's platform has stopped (module-scoped
    platforms are torn down when the run moves on to the next module)."""
    items.sort(key=lambda item: item.path.name == LOG_CHECKS_MODULE)
