"""The payment check: did transaction H move exactly X of token T (or native coin) to A?

For purchases paid on chain: the buyer names a transaction hash; the service checks it against
the chain before granting anything. The check is read-only and can be repeated; the service
deduplicates on the hash itself (one purchase per transaction).

Confirmations count the transaction's own block: mined in the head block is 1.
An ERC-20 payment is the sum of the token's `Transfer(from, to, value)` logs to A in the
receipt (a router or a multicall may split it); a native payment is the transaction's value
sent straight to A (internal transfers through a contract are not counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.exceptions import TransactionNotFound

from audifi_kit.chain.reverts import ErrorRegistry, blockchain_error
from audifi_kit.errors import Conflict, DomainError, NotFound, ValidationFailed

TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")


@dataclass(frozen=True, slots=True)
class ConfirmedPayment:
    tx_hash: str
    token: str | None  # None: the native coin
    payer: str
    recipient: str
    amount: int  # base units (wei for the native coin)
    block_number: int
    block_hash: str
    confirmations: int


class PaymentCheckError(DomainError):
    """A payment that does not (yet) prove what was asked."""


class PaymentNotFound(PaymentCheckError, NotFound):
    code = "PAYMENT_NOT_FOUND"
    default_message = "No such transaction on chain"


class PaymentNotConfirmed(PaymentCheckError, Conflict):
    """Pending, or mined with fewer confirmations than required: ask again later."""

    code = "PAYMENT_NOT_CONFIRMED"
    default_message = "The payment does not have enough confirmations yet"


class PaymentFailed(PaymentCheckError, ValidationFailed):
    code = "PAYMENT_FAILED"
    default_message = "The payment transaction failed on chain"


class PaymentMismatch(PaymentCheckError, ValidationFailed):
    code = "PAYMENT_MISMATCH"
    default_message = "The transaction is not the payment asked for"


class PaymentWrongRecipient(PaymentMismatch):
    default_message = "The transaction paid someone else"


class PaymentWrongAmount(PaymentMismatch):
    default_message = "The transaction paid another amount"


async def check_payment(
    w3: AsyncWeb3[Any],
    tx_hash: str | bytes,
    *,
    recipient: str,
    amount: int,
    token: str | None = None,
    confirmations: int = 1,
) -> ConfirmedPayment:
    """The payment, proven; else one of the PaymentCheckError kinds (BlockchainError on I/O)."""
    tx_hex = HexBytes(tx_hash).to_0x_hex()
    recipient = to_checksum_address(recipient)
    token = to_checksum_address(token) if token else None
    details: dict[str, Any] = {"txHash": tx_hex}
    tx: Any = None
    try:
        # The receipt first: it says from, to, status, block and logs, all a token payment
        # needs (on the embedded chain every lookup walks the chain back: lottery_bench).
        try:
            receipt = await w3.eth.get_transaction_receipt(tx_hex)
        except TransactionNotFound:
            try:
                await w3.eth.get_transaction(tx_hex)
            except TransactionNotFound:
                raise PaymentNotFound(details=details) from None
            raise PaymentNotConfirmed(  # known, not mined yet
                details=details | {"confirmations": 0, "required": confirmations}
            ) from None
        if token is None:  # the value sent is the transaction's, not the receipt's
            tx = await w3.eth.get_transaction(tx_hex)
        head = await w3.eth.block_number
    except PaymentCheckError:
        raise
    except Exception as exc:
        raise blockchain_error(exc, ErrorRegistry(), action="check payment") from None

    if receipt["status"] != 1:
        raise PaymentFailed(details=details)

    if token is None:
        paid_to = receipt.get("to")
        if paid_to is None or to_checksum_address(paid_to) != recipient:
            raise PaymentWrongRecipient(
                details=details | {"expected": recipient, "actual": paid_to}
            )
        paid = int(tx["value"])
    else:
        transfers = [_transfer(log) for log in receipt["logs"] if _is_transfer(log, token)]
        if not transfers:
            raise PaymentMismatch(
                "The transaction moved none of the token", details=details | {"token": token}
            )
        to_recipient = [value for to, value in transfers if to == recipient]
        if not to_recipient:
            raise PaymentWrongRecipient(
                details=details
                | {"expected": recipient, "actual": sorted({t for t, _ in transfers})}
            )
        paid = sum(to_recipient)
    if paid != amount:
        raise PaymentWrongAmount(details=details | {"expected": str(amount), "actual": str(paid)})

    depth = head - receipt["blockNumber"] + 1
    if depth < confirmations:
        raise PaymentNotConfirmed(
            details=details | {"confirmations": depth, "required": confirmations}
        )
    return ConfirmedPayment(
        tx_hash=tx_hex,
        token=token,
        payer=to_checksum_address(receipt["from"]),
        recipient=recipient,
        amount=paid,
        block_number=receipt["blockNumber"],
        block_hash=HexBytes(receipt["blockHash"]).to_0x_hex(),
        confirmations=depth,
    )


def _is_transfer(log: Any, token: str) -> bool:
    topics = log["topics"]
    return (
        to_checksum_address(log["address"]) == token
        and len(topics) == 3
        and HexBytes(topics[0]) == TRANSFER_TOPIC
    )


def _transfer(log: Any) -> tuple[str, int]:
    to = to_checksum_address(HexBytes(log["topics"][2])[-20:])
    return to, int.from_bytes(HexBytes(log["data"])[:32], "big")
