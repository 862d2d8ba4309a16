"""The adapter against a JSON-RPC node: a Hardhat 2 node the test session starts itself.

Under CI=true a machine without npm fails this test with the reason; elsewhere it is skipped.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from audifi_kit.chain import ChainAdapter
from audifi_kit.chain.payments import PaymentNotConfirmed, check_payment
from audifi_kit.chain.platform import Deployment, PlatformChain
from audifi_kit.errors import BlockchainError
from audifi_kit.settings import Settings
from eth_account import Account
from eth_utils import to_checksum_address

SHOP = to_checksum_address("0x00000000000000000000000000000000000a0d1f")


@pytest.fixture
async def node_adapter(hardhat_settings: Settings) -> AsyncIterator[ChainAdapter]:
    adapter = await ChainAdapter.connect(hardhat_settings)
    yield adapter
    await adapter.close()


async def test_the_adapter_deploys_sends_and_reads_receipts_through_a_node(
    node_adapter: ChainAdapter, emitter_artifact: dict[str, Any]
) -> None:
    assert node_adapter.embedded is None
    emitter = await node_adapter.deploy(emitter_artifact)

    receipts = await asyncio.gather(
        *(node_adapter.transact(emitter, "note", i, f"note {i}") for i in range(10))
    )

    assert all(r["status"] == 1 for r in receipts)
    assert len({r["transactionHash"] for r in receipts}) == 10
    assert await node_adapter.call(emitter, "count") == 10


async def test_reverts_through_a_node_carry_their_reason(
    node_adapter: ChainAdapter, emitter_artifact: dict[str, Any], token_artifact: dict[str, Any]
) -> None:
    emitter = await node_adapter.deploy(emitter_artifact)
    token = await node_adapter.deploy(token_artifact)

    with pytest.raises(BlockchainError) as required:
        await node_adapter.transact(emitter, "fail", "sold out")
    with pytest.raises(BlockchainError) as custom:
        await node_adapter.transact(token, "transfer", SHOP, 5)
    with pytest.raises(BlockchainError) as mined:
        await node_adapter.transact(token, "transfer", SHOP, 5, gas=100_000)

    assert required.value.code == "BLOCKCHAIN_ERROR"
    assert required.value.details["reason"] == "sold out"
    assert custom.value.details["error"] == "InsufficientBalance"
    assert custom.value.details["args"]["needed"] == 5
    assert mined.value.details.get("error") == "InsufficientBalance", mined.value.details
    assert "txHash" in mined.value.details


async def test_a_payment_is_checked_against_the_nodes_confirmations(
    node_adapter: ChainAdapter,
) -> None:
    receipt = await node_adapter.send({"to": SHOP, "value": 10**18})

    with pytest.raises(PaymentNotConfirmed):
        await check_payment(
            node_adapter.w3,
            receipt["transactionHash"],
            recipient=SHOP,
            amount=10**18,
            confirmations=3,
        )
    await node_adapter.w3.provider.make_request("hardhat_mine", ["0x2"])  # type: ignore[arg-type]
    payment = await check_payment(
        node_adapter.w3, receipt["transactionHash"], recipient=SHOP, amount=10**18, confirmations=3
    )

    assert payment.confirmations == 3


# Hardhat's accounts 1-3 (mnemonic "test test ... junk"): public development keys.
OPERATOR_KEYS = {
    "nft": "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "coin": "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "payment": "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
}


def _audifi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audifi_kit.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_audifi_chain_deploy_puts_the_platform_on_a_node_and_the_services_use_it(
    hardhat_url: str, hardhat_key: str, tmp_path: Path
) -> None:
    addresses = {s: Account.from_key(k).address for s, k in OPERATOR_KEYS.items()}
    out = tmp_path / "deployment.json"
    env = {"CHAIN_RPC_URL": hardhat_url, "CHAIN_PRIVATE_KEY": hardhat_key}

    done = await asyncio.to_thread(
        _audifi,
        "chain", "deploy", "--out", str(out),
        "--nft", addresses["nft"], "--coin", addresses["coin"], "--payment", addresses["payment"],
        env=env,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    deployment = Deployment.from_json(out.read_bytes())
    assert deployment.chain_id == 31337 and not deployment.embedded
    assert deployment.operators == addresses
    assert deployment.payment_token == deployment.address("DevUSD")

    # nft, started as a service would be: the deployment checked, its own key.
    nft = PlatformChain(
        Settings.from_env(
            {**env, "CHAIN_PRIVATE_KEY": OPERATOR_KEYS["nft"], "CHAIN_DEPLOYMENT": str(out)}
        )
    )
    coin = PlatformChain(
        Settings.from_env(
            {**env, "CHAIN_PRIVATE_KEY": OPERATOR_KEYS["coin"], "CHAIN_DEPLOYMENT": str(out)}
        )
    )
    try:
        assert await nft.start() == deployment
        await coin.start()
        shares = await nft.contract("nft", "MasterShares")
        adapter = await nft.adapter("nft")
        await adapter.transact(shares, "openIpo", 11, 1_000, adapter.address, 250)
        await adapter.transact(shares, "mint", addresses["payment"], 11, 400)
        assert await adapter.call(shares, "balanceOf", addresses["payment"], 11) == 400
        # the deployer kept no role; coin holds none on MasterShares
        assert not await adapter.call(shares, "hasRole", bytes(32), deployment.deployer)
        coin_shares = await coin.contract("coin", "MasterShares")
        with pytest.raises(BlockchainError) as refused:
            await (await coin.adapter("coin")).transact(
                coin_shares, "mint", addresses["coin"], 11, 1
            )
        assert refused.value.details["error"] == "AccessControlUnauthorizedAccount"
    finally:
        await nft.close()
        await coin.close()


async def test_audifi_chain_deploy_refuses_bad_operators_and_a_missing_node(
    hardhat_url: str, hardhat_key: str, tmp_path: Path
) -> None:
    out = tmp_path / "deployment.json"
    wrong = await asyncio.to_thread(
        _audifi,
        "chain", "deploy", "--out", str(out), "--nft", "0xnot-an-address",
        "--coin", Account.from_key(OPERATOR_KEYS["coin"]).address,
        "--payment", Account.from_key(OPERATOR_KEYS["payment"]).address,
        env={"CHAIN_RPC_URL": hardhat_url, "CHAIN_PRIVATE_KEY": hardhat_key},
    )  # fmt: skip
    nowhere = await asyncio.to_thread(
        _audifi,
        "chain", "deploy", "--out", str(out), "--nft", "0x0", "--coin", "0x0", "--payment", "0x0",
        env={"CHAIN_RPC_URL": ""},
    )  # fmt: skip

    assert wrong.returncode == 1 and "--nft is not an address" in wrong.stdout
    assert nowhere.returncode == 2 and "CHAIN_RPC_URL is not set" in nowhere.stdout
    assert not out.exists()  # nothing half-written
