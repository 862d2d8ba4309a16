"""The adapter on the embedded EVM: deploys, concurrent sends, reverts as BLOCKCHAIN_ERROR."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from audifi_kit.chain import ChainAdapter, EmbeddedChain
from audifi_kit.errors import BlockchainError
from audifi_kit.http.errors import to_domain_error
from audifi_kit.settings import Settings


async def test_a_deployed_contract_answers_calls(
    adapter: ChainAdapter, emitter_artifact: dict[str, Any]
) -> None:
    emitter = await adapter.deploy(emitter_artifact)

    assert await adapter.call(emitter, "count") == 0
    receipt = await adapter.transact(emitter, "note", 1, "first")

    assert receipt["status"] == 1
    assert await adapter.call(emitter, "count") == 1


async def test_concurrent_sends_each_get_their_own_nonce(
    adapter: ChainAdapter, emitter_artifact: dict[str, Any]
) -> None:
    emitter = await adapter.deploy(emitter_artifact)
    start = await adapter.w3.eth.get_transaction_count(adapter.address)

    receipts = await asyncio.gather(
        *(adapter.transact(emitter, "note", i, f"note {i}") for i in range(20))
    )

    txs = [await adapter.w3.eth.get_transaction(r["transactionHash"]) for r in receipts]
    assert sorted(tx["nonce"] for tx in txs) == list(range(start, start + 20))
    assert all(r["status"] == 1 for r in receipts)
    assert await adapter.call(emitter, "count") == 20


async def test_a_require_message_is_the_blockchain_errors_reason(
    adapter: ChainAdapter, emitter_artifact: dict[str, Any]
) -> None:
    emitter = await adapter.deploy(emitter_artifact)

    with pytest.raises(BlockchainError) as refused:
        await adapter.transact(emitter, "fail", "sold out")

    error = to_domain_error(refused.value)
    assert (error.code, error.status_code) == ("BLOCKCHAIN_ERROR", 502)
    assert error.details["reason"] == "sold out"
    assert "sold out" in error.message


async def test_a_custom_error_is_decoded_by_the_abi(
    adapter: ChainAdapter, token_artifact: dict[str, Any]
) -> None:
    token = await adapter.deploy(token_artifact)

    with pytest.raises(BlockchainError) as refused:
        await adapter.transact(token, "transfer", adapter.address, 5)

    assert refused.value.details["error"] == "InsufficientBalance"
    assert refused.value.details["args"]["available"] == 0
    assert refused.value.details["args"]["needed"] == 5


async def test_a_read_only_call_that_reverts_is_a_blockchain_error(
    adapter: ChainAdapter, emitter_artifact: dict[str, Any]
) -> None:
    emitter = await adapter.deploy(emitter_artifact)

    with pytest.raises(BlockchainError) as refused:
        await adapter.call(emitter, "refuse", 42)

    assert refused.value.details["error"] == "Refused"
    assert refused.value.details["args"] == {"code": 42, "why": "refused on purpose"}


async def test_a_transaction_failing_on_chain_reports_its_hash_and_reason(
    adapter: ChainAdapter, token_artifact: dict[str, Any]
) -> None:
    token = await adapter.deploy(token_artifact)

    with pytest.raises(BlockchainError) as failed:  # gas given: no estimate, mined and failed
        await adapter.transact(token, "transfer", adapter.address, 5, gas=100_000)

    receipt = await adapter.w3.eth.get_transaction_receipt(failed.value.details["txHash"])
    assert receipt["status"] == 0
    assert failed.value.details["error"] == "InsufficientBalance"


async def test_after_a_refused_send_the_next_sends_use_the_right_nonce(
    adapter: ChainAdapter, emitter_artifact: dict[str, Any]
) -> None:
    emitter = await adapter.deploy(emitter_artifact)
    adapter._next_nonce = (adapter._next_nonce or 0) + 5  # as if sends were lost

    with pytest.raises(BlockchainError):
        await adapter.transact(emitter, "note", 1, "lost nonce")
    receipt = await adapter.transact(emitter, "note", 2, "resynchronised")

    assert receipt["status"] == 1
    assert await adapter.call(emitter, "count") == 1


async def test_a_configured_key_signs_and_is_funded_on_the_embedded_chain(
    chain: EmbeddedChain, emitter_artifact: dict[str, Any]
) -> None:
    key = "0x" + "11" * 32
    adapter = await ChainAdapter.connect(Settings(chain_private_key=key), embedded=chain)

    emitter = await adapter.deploy(emitter_artifact)
    receipt = await adapter.transact(emitter, "note", 1, "from my key")

    sender = (await adapter.w3.eth.get_transaction(receipt["transactionHash"]))["from"]
    assert sender == adapter.address != chain.funded_account().address


async def test_a_chain_id_other_than_the_nodes_is_refused(chain: EmbeddedChain) -> None:
    with pytest.raises(BlockchainError) as refused:
        await ChainAdapter.connect(Settings(chain_id=1), embedded=chain)

    assert refused.value.details["expected"] == 1


def test_chain_settings_come_from_the_environment_and_never_show_the_key() -> None:
    settings = Settings.from_env(
        {
            "CHAIN_RPC_URL": "https://base.example/v2/secret-api-key",
            "CHAIN_PRIVATE_KEY": "0x" + "22" * 32,
            "CHAIN_CONFIRMATIONS": "3",
            "CHAIN_ID": "8453",
        }
    )

    assert settings.chain_rpc_url == "https://base.example/v2/secret-api-key"
    assert (settings.chain_confirmations, settings.chain_id) == (3, 8453)
    assert "22" * 32 not in repr(settings)
    assert "secret-api-key" not in repr(settings)


async def test_a_transaction_recorded_before_it_is_sent_can_be_found_or_sent_again(
    adapter: ChainAdapter, emitter_artifact: dict[str, Any]
) -> None:
    """The intent a caller records in `before_send` is enough to finish the job after a
    crash: before the send (the raw transaction goes out later, once), after it (the hash
    finds the receipt), or when another transaction took the nonce meanwhile (never mined)."""
    from audifi_kit.chain.adapter import SignedTx

    emitter = await adapter.deploy(emitter_artifact)
    recorded: list[SignedTx] = []

    class Crash(Exception):
        pass

    async def record_then_crash(signed: SignedTx) -> None:
        recorded.append(signed)
        raise Crash

    data = emitter.encode_abi("note", args=[7, "seven"])
    with pytest.raises(Crash):
        await adapter.submit({"to": emitter.address, "data": data}, before_send=record_then_crash)
    [intent] = recorded
    assert await adapter.receipt(intent.tx_hash) is None  # never sent
    assert await adapter.resend(intent.raw) == "sent"  # the nonce was left free for it
    receipt = await adapter.wait(intent.tx_hash)
    assert receipt["status"] == 1 and await adapter.call(emitter, "count") == 1
    assert await adapter.resend(intent.raw) == "nonce_used"  # mined: its receipt says so
    assert (await adapter.receipt(intent.tx_hash))["status"] == 1  # type: ignore[index]

    # Recorded, then lost before sending, and the nonce went to another transaction.
    recorded.clear()
    with pytest.raises(Crash):
        await adapter.submit({"to": emitter.address, "data": data}, before_send=record_then_crash)
    await adapter.transact(emitter, "note", 8, "eight")  # takes the same nonce
    [lost] = recorded
    assert await adapter.resend(lost.raw) == "nonce_used"
    assert await adapter.receipt(lost.tx_hash) is None  # and it never will be mined
    assert await adapter.call(emitter, "count") == 2
