"""Fixtures of the chain tests: the embedded EVM, an adapter on it, a service's event store.

The contracts deployed here are the committed artifacts in `fixtures/` (see its README): the
suite never needs npm for them. Only the Hardhat test needs npm, to install Hardhat 2 once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from audifi_kit.chain import ChainAdapter, EmbeddedChain
from audifi_kit.settings import Settings
from audifi_kit.testing import drop_databases, free_port

FIXTURES = Path(__file__).parent / "fixtures"
HARDHAT_CACHE = Path(
    os.environ.get("AUDIFI_HARDHAT_CACHE", Path.home() / ".cache" / "audifi-hardhat")
)
# Hardhat's first well-known development account (mnemonic "test test ... junk"): public.
HARDHAT_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


@pytest.fixture(scope="session")
def emitter_artifact() -> dict[str, Any]:
    return json.loads((FIXTURES / "Emitter.json").read_text())


@pytest.fixture(scope="session")
def token_artifact() -> dict[str, Any]:
    return json.loads((FIXTURES / "TestToken.json").read_text())


@pytest.fixture
def chain() -> EmbeddedChain:
    return EmbeddedChain()


@pytest.fixture
async def adapter(chain: EmbeddedChain) -> AsyncIterator[ChainAdapter]:
    adapter = await ChainAdapter.connect(Settings(), embedded=chain)
    yield adapter
    await adapter.close()


@pytest.fixture
async def chain_settings(postgres_url: str) -> AsyncIterator[Settings]:
    """Settings on the real PostgreSQL; the databases this test creates are dropped after it."""
    prefix = f"audifi_c{uuid.uuid4().hex[:8]}_"
    yield Settings(database_url=postgres_url, db_prefix=prefix, pool_size=4)
    await drop_databases(postgres_url, prefix)


@pytest.fixture
async def service_pool(chain_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    from audifi_kit.postgres import service_database

    location = await service_database(chain_settings, "chainsvc")
    pool = await asyncpg.create_pool(location.asyncpg_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _hardhat_installed() -> bool:
    return (HARDHAT_CACHE / "node_modules" / "hardhat" / "package.json").is_file()


def _install_hardhat() -> None:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        message = "Node.js and npm are needed to install Hardhat 2 for the JSON-RPC node test"
        if _ci():
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    HARDHAT_CACHE.mkdir(parents=True, exist_ok=True)
    package = HARDHAT_CACHE / "package.json"
    if not package.exists():
        package.write_text('{"name": "audifi-hardhat", "private": true}\n')
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "hardhat@2"],
        cwd=HARDHAT_CACHE,
        check=True,
        capture_output=True,
        timeout=600,
    )


@pytest.fixture(scope="session")
def hardhat_url() -> Iterator[str]:
    """A Hardhat 2 node this test session starts (installed once into the cache dir)."""
    if not _hardhat_installed():
        _install_hardhat()
    (HARDHAT_CACHE / "hardhat.config.js").write_text(
        "module.exports = { networks: { hardhat: { hardfork: 'cancun' } } };\n"
    )
    port = free_port()
    binary = HARDHAT_CACHE / "node_modules" / ".bin" / "hardhat"
    errors = tempfile.TemporaryFile()  # a pipe nobody reads could fill and stall the node
    process = subprocess.Popen(
        [str(binary), "node", "--hostname", "127.0.0.1", "--port", str(port)],
        cwd=HARDHAT_CACHE,
        stdout=subprocess.DEVNULL,
        stderr=errors,
        env={**os.environ, "HARDHAT_DISABLE_TELEMETRY_PROMPT": "true"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                errors.seek(0)
                error = errors.read().decode(errors="replace")
                pytest.fail(f"hardhat node exited ({process.returncode}): {error[-2000:]}")
            try:
                answer = httpx.post(
                    url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=1
                )
                if answer.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("hardhat node did not answer within 90 s")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        errors.close()


@pytest.fixture
def hardhat_key() -> str:
    """The private key of Hardhat's first funded account (public development key)."""
    return HARDHAT_KEY


@pytest.fixture
def hardhat_settings(hardhat_url: str) -> Settings:
    """Distributed-mode settings on the Hardhat node, signing with its first account."""
    return Settings.from_env(
        {"CHAIN_RPC_URL": hardhat_url, "CHAIN_PRIVATE_KEY": HARDHAT_KEY, "CHAIN_ID": "31337"}
    )
