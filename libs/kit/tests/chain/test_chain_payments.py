"""The payment check: a purchase paid on chain is accepted only as exactly what was asked."""

from __future__ import annotations

from typing import Any

import pytest
from audifi_kit.chain import ChainAdapter, EmbeddedChain
from audifi_kit.chain.payments import (
    PaymentFailed,
    PaymentMismatch,
    PaymentNotConfirmed,
    PaymentNotFound,
    PaymentWrongAmount,
    PaymentWrongRecipient,
    check_payment,
)
from audifi_kit.errors import BlockchainError
from eth_utils import to_checksum_address
from web3.contract import AsyncContract

SHOP = to_checksum_address("0x00000000000000000000000000000000000a0d1f")
ELSEWHERE = to_checksum_address("0x000000000000000000000000000000000000beef")
PRICE = 25 * 10**18


@pytest.fixture
async def token(adapter: ChainAdapter, token_artifact: dict[str, Any]) -> AsyncContract:
    token = await adapter.deploy(token_artifact)
    await adapter.transact(token, "mint", adapter.address, 1_000 * 10**18)
    return token


async def test_a_native_payment_with_enough_confirmations_is_accepted(
    adapter: ChainAdapter, chain: EmbeddedChain
) -> None:
    receipt = await adapter.send({"to": SHOP, "value": PRICE})
    chain.mine_blocks(2)

    payment = await check_payment(
        adapter.w3, receipt["transactionHash"], recipient=SHOP, amount=PRICE, confirmations=3
    )

    assert payment.amount == PRICE and payment.token is None
    assert payment.payer == adapter.address
    assert payment.confirmations == 3


async def test_an_erc20_payment_is_read_from_the_transfer_logs(
    adapter: ChainAdapter, token: AsyncContract
) -> None:
    receipt = await adapter.transact(token, "transfer", SHOP, PRICE)

    payment = await check_payment(
        adapter.w3,
        receipt["transactionHash"],
        recipient=SHOP.lower(),
        amount=PRICE,
        token=token.address,
        confirmations=1,
    )

    assert (payment.token, payment.amount, payment.recipient) == (token.address, PRICE, SHOP)


async def test_a_payment_of_another_amount_is_refused(
    adapter: ChainAdapter, token: AsyncContract
) -> None:
    native = await adapter.send({"to": SHOP, "value": PRICE - 1})
    erc20 = await adapter.transact(token, "transfer", SHOP, PRICE + 1)

    with pytest.raises(PaymentWrongAmount) as native_refused:
        await check_payment(adapter.w3, native["transactionHash"], recipient=SHOP, amount=PRICE)
    with pytest.raises(PaymentWrongAmount):
        await check_payment(
            adapter.w3, erc20["transactionHash"], recipient=SHOP, amount=PRICE, token=token.address
        )
    assert native_refused.value.code == "PAYMENT_MISMATCH"
    assert native_refused.value.details["actual"] == str(PRICE - 1)


async def test_a_payment_to_someone_else_is_refused(
    adapter: ChainAdapter, token: AsyncContract
) -> None:
    native = await adapter.send({"to": ELSEWHERE, "value": PRICE})
    erc20 = await adapter.transact(token, "transfer", ELSEWHERE, PRICE)

    with pytest.raises(PaymentWrongRecipient):
        await check_payment(adapter.w3, native["transactionHash"], recipient=SHOP, amount=PRICE)
    with pytest.raises(PaymentWrongRecipient):
        await check_payment(
            adapter.w3, erc20["transactionHash"], recipient=SHOP, amount=PRICE, token=token.address
        )


async def test_a_native_payment_is_not_a_token_payment(
    adapter: ChainAdapter, token: AsyncContract
) -> None:
    native = await adapter.send({"to": SHOP, "value": PRICE})

    with pytest.raises(PaymentMismatch):
        await check_payment(
            adapter.w3, native["transactionHash"], recipient=SHOP, amount=PRICE, token=token.address
        )


async def test_a_payment_with_too_few_confirmations_is_not_yet_accepted(
    adapter: ChainAdapter, chain: EmbeddedChain
) -> None:
    receipt = await adapter.send({"to": SHOP, "value": PRICE})

    with pytest.raises(PaymentNotConfirmed) as early:
        await check_payment(
            adapter.w3, receipt["transactionHash"], recipient=SHOP, amount=PRICE, confirmations=5
        )
    assert early.value.details == {
        "txHash": receipt["transactionHash"].to_0x_hex(),
        "confirmations": 1,
        "required": 5,
    }
    assert early.value.status_code == 409

    chain.mine_blocks(4)
    payment = await check_payment(
        adapter.w3, receipt["transactionHash"], recipient=SHOP, amount=PRICE, confirmations=5
    )
    assert payment.confirmations == 5


async def test_an_unknown_transaction_is_not_found(adapter: ChainAdapter) -> None:
    with pytest.raises(PaymentNotFound) as missing:
        await check_payment(adapter.w3, "0x" + "ab" * 32, recipient=SHOP, amount=PRICE)

    assert missing.value.status_code == 404


async def test_a_failed_transaction_pays_nothing(
    adapter: ChainAdapter, token: AsyncContract
) -> None:
    with pytest.raises(BlockchainError) as failed:
        await adapter.transact(token, "transfer", SHOP, 10**30, gas=100_000)

    with pytest.raises(PaymentFailed):
        await check_payment(
            adapter.w3,
            failed.value.details["txHash"],
            recipient=SHOP,
            amount=10**30,
            token=token.address,
        )
