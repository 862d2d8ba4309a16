"""Why a transaction or call failed, as the kit's BlockchainError (502, BLOCKCHAIN_ERROR).

A revert carries data: `Error(string)` (require/revert with a message), `Panic(uint256)`
(assert, overflow, division by zero) or a custom error, decoded here by the ABIs the adapter
knows (every artifact it deployed or attached). Unknown data is kept raw in the details.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError

from audifi_kit.chain.artifacts import abi_type
from audifi_kit.errors import BlockchainError

ERROR_STRING = bytes.fromhex("08c379a0")
PANIC = bytes.fromhex("4e487b71")

PANIC_CODES = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "invalid storage byte array",
    0x31: "pop on an empty array",
    0x32: "array index out of bounds",
    0x41: "too much memory allocated",
    0x51: "call to an uninitialised function",
}


class ErrorRegistry:
    """Custom errors by selector, gathered from the ABIs the adapter has seen."""

    def __init__(self) -> None:
        self._by_selector: dict[bytes, Mapping[str, Any]] = {}

    def register(self, abi: Iterable[Mapping[str, Any]]) -> None:
        for item in abi:
            if item.get("type") != "error":
                continue
            types = ",".join(abi_type(i) for i in item.get("inputs", []))
            selector = function_signature_to_4byte_selector(f"{item['name']}({types})")
            self._by_selector[selector] = item

    def decode(self, data: bytes) -> dict[str, Any]:
        """The revert data's meaning: {"reason"} / {"panic"} / {"error", "args"} / {"data"}."""
        selector, body = data[:4], data[4:]
        try:
            if selector == ERROR_STRING:
                return {"reason": abi_decode(["string"], body)[0]}
            if selector == PANIC:
                code = abi_decode(["uint256"], body)[0]
                return {"panic": code, "reason": PANIC_CODES.get(code, "panic")}
            item = self._by_selector.get(selector)
            if item is not None:
                inputs: Sequence[Mapping[str, Any]] = item.get("inputs", [])
                values = abi_decode([abi_type(i) for i in inputs], body)
                args = {
                    (i.get("name") or f"arg{n}"): _jsonable(v)
                    for n, (i, v) in enumerate(zip(inputs, values, strict=True))
                }
                return {"error": item["name"], "args": args}
        except DecodingError:
            pass
        return {"data": "0x" + data.hex()} if data else {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**53:
        return str(value)  # beyond a JSON number's exact range
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert data a web3 exception carries, if any."""
    return revert_data_of(getattr(exc, "data", None))


def revert_data_of(data: Any) -> bytes | None:
    """Revert bytes from a node's error data: hex, or nested as {"data": "0x..."}."""
    if isinstance(data, Mapping):  # some nodes nest it: {"data": "0x..."} or {"<hash>": {...}}
        data = data.get("data") or data.get("result")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes(HexBytes(data))
        except ValueError:
            return None
    if isinstance(data, bytes):
        return data
    return None


def blockchain_error(
    exc: BaseException,
    registry: ErrorRegistry,
    *,
    action: str,
    tx_hash: bytes | str | None = None,
) -> BlockchainError:
    """The client-safe BlockchainError for a failed chain request (never a key or a URL)."""
    details: dict[str, Any] = {"action": action}
    if tx_hash is not None:
        details["txHash"] = HexBytes(tx_hash).to_0x_hex()
    if isinstance(exc, ContractLogicError):
        data = revert_data(exc)
        decoded = registry.decode(data) if data else {}
        if not decoded:
            text = str(getattr(exc, "message", None) or exc)
            reason = text.removeprefix("execution reverted").lstrip(": ").strip()
            decoded = {"reason": reason} if reason else {}
        details.update(decoded)
        summary = decoded.get("reason") or decoded.get("error") or "reverted"
        return BlockchainError(f"The transaction was reverted: {summary}", details=details)
    if isinstance(exc, TimeExhausted):
        return BlockchainError("The transaction was not mined in time", details=details)
    if isinstance(exc, Web3RPCError):
        error = (exc.rpc_response or {}).get("error")
        node_data = error.get("data") if isinstance(error, Mapping) else None
        data = revert_data_of(node_data)
        if isinstance(node_data, Mapping) and node_data.get("txHash") and tx_hash is None:
            details["txHash"] = str(node_data["txHash"])  # a node that mined it and failed it
        if data is not None:
            decoded = registry.decode(data)
            details.update(decoded)
            summary = decoded.get("reason") or decoded.get("error") or "reverted"
            return BlockchainError(f"The transaction was reverted: {summary}", details=details)
        message = getattr(exc, "message", None) or str(exc)
        details["nodeMessage"] = str(message)[:300]
        return BlockchainError("The chain node refused the request", details=details)
    details["errorType"] = type(exc).__name__
    return BlockchainError("The blockchain request failed", details=details)


REVERTED_PREFIX = "The transaction was reverted"


def is_revert(error: BlockchainError) -> bool:
    """Whether the chain itself refused (a revert, before signing or once mined): trying
    the same again gives the same answer. Anything else (a node down, a timeout) may pass."""
    return error.message.startswith(REVERTED_PREFIX) or error.details.get("status") == 0
