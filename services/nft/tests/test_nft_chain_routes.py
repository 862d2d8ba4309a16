"""nft serves what a client needs to use the platform's contracts itself (`/chain`): the chain,
the contracts' addresses and ABIs, to anyone, on the real nft app with its database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.chain.platform import PLATFORM_CONTRACTS, PlatformChain
from audifi_kit.settings import Settings
from audifi_kit.testing import drop_databases
from audifi_nft.app import create_app
from litestar.testing import AsyncTestClient


@pytest.fixture
async def served(
    postgres_url: str, tmp_path: Path
) -> AsyncIterator[tuple[AsyncTestClient, PlatformChain]]:
    prefix = f"audifi_n{uuid.uuid4().hex[:8]}_"
    settings = Settings(database_url=postgres_url, db_prefix=prefix, var_dir=tmp_path)
    chain = PlatformChain(settings)
    try:
        async with AsyncTestClient(app=create_app(settings, InProcessBus(), chain)) as client:
            yield client, chain
    finally:
        await drop_databases(postgres_url, prefix)


async def test_anyone_reads_the_chain_and_each_contract_with_its_abi(served) -> None:
    client, chain = served
    deployment = chain.deployment
    assert deployment is not None

    answer = await client.get("/chain/")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["chainId"] == deployment.chain_id and body["embedded"] is True
    assert body["contracts"] == {n: deployment.address(n) for n in sorted(PLATFORM_CONTRACTS)}

    shares = await client.get("/chain/contracts/MasterShares")
    assert shares.status_code == 200, shares.text
    assert shares.json()["address"] == deployment.address("MasterShares")
    functions = {item.get("name") for item in shares.json()["abi"] if item["type"] == "function"}
    assert {"openIpo", "balanceOf"} <= functions


async def test_an_unknown_contract_is_404_naming_the_known_ones(served) -> None:
    client, _ = served
    answer = await client.get("/chain/contracts/Nope")
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["code"] == "NOT_FOUND"
    assert error["details"]["known"] == sorted(PLATFORM_CONTRACTS)
    assert answer.json()["requestId"]
