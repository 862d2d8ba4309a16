"""The adapter against a JSON-RPC node: a Hardhat 2 node the test session starts itself.

Under CI=true a machine without npm fails this test with the reason; elsewhere it is skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from audifi_kit.chain import ChainAdapter
from audifi_kit.chain.payments import PaymentNotConfirmed, check_payment
from audifi_kit.http.errors import BlockchainError
from audifi_kit.settings import Settings
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
