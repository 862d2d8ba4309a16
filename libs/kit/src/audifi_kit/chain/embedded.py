"""The embedded chain: an in-process EVM (eth-tester on py-evm) behind an async web3 provider.

web3's own `AsyncEthereumTesterProvider` runs every EVM call on the event loop and turns a
revert into a Python exception whose raw data is lost. This provider runs each request in a
worker thread, one at a time (py-evm is not thread-safe), and answers a revert the way a
JSON-RPC node does (`{"code": 3, "data": "0x..."}`), so the adapter decodes reverts, custom
errors included, the same way in both run modes.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import threading
from typing import Any, Literal

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import BlockNotFound, FilterNotFound, TransactionFailed
from eth_tester.exceptions import ValidationError as EthTesterValidationError
from web3 import AsyncWeb3
from web3.providers.eth_tester import AsyncEthereumTesterProvider
from web3.providers.eth_tester.main import _make_response
from web3.types import RPCEndpoint, RPCResponse


class EmbeddedChain:
    """One in-process EVM: its tester (snapshots, mining) and its funded accounts."""

    def __init__(self, backend: PyEVMBackend | None = None) -> None:
        self.backend = backend or PyEVMBackend()
        self.tester = EthereumTester(self.backend)
        # The same lock guards provider requests and direct tester calls (snapshot, revert).
        self.lock = threading.RLock()

    def funded_account(self, index: int = 0) -> LocalAccount:
        """A genesis account the EVM funds: the default signer of the embedded mode."""
        key = self.backend.account_keys[index]
        return Account.from_key(key.to_bytes())

    def provider(self) -> EmbeddedProvider:
        return EmbeddedProvider(self)

    def web3(self) -> AsyncWeb3[Any]:
        return AsyncWeb3(self.provider())

    def take_snapshot(self) -> int:
        with self.lock:
            return self.tester.take_snapshot()

    def revert_to_snapshot(self, snapshot_id: int) -> None:
        with self.lock:
            self.tester.revert_to_snapshot(snapshot_id)

    def mine_blocks(self, count: int = 1) -> list[bytes]:
        with self.lock:
            return self.tester.mine_blocks(count)


class EmbeddedProvider(AsyncEthereumTesterProvider):
    """web3's async tester provider, off the event loop and with node-shaped revert errors."""

    def __init__(self, chain: EmbeddedChain) -> None:
        super().__init__()
        self.chain = chain
        self.ethereum_tester = chain.tester

    async def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        request_id = repr(self._current_request_id)
        self._current_request_id += 1
        return await asyncio.to_thread(self._request, method, params, request_id)

    def _request(self, method: RPCEndpoint, params: Any, request_id: str) -> RPCResponse:
        namespace, _, endpoint = method.partition("_")
        try:
            delegator = self.api_endpoints[namespace][endpoint]
        except KeyError as exc:
            return _make_response(exc, request_id, message=f"Unknown RPC Endpoint: {method}")
        try:
            with self.chain.lock:
                result = delegator(self.ethereum_tester, params)
        except NotImplementedError as exc:
            return _make_response(exc, request_id, message=f"Not implemented: {method}")
        except TransactionFailed as exc:
            return _revert_response(exc, request_id)
        except (
            BlockNotFound,
            FilterNotFound,
            EthTesterValidationError,
        ) as exc:  # as a node answers: an RPC error
            return {  # type: ignore[typeddict-item]
                "id": request_id,
                "jsonrpc": "2.0",
                "error": {"code": -32000, "message": f"{type(exc).__name__}: {exc}"},
            }
        return _make_response(result, request_id)

    async def is_connected(self, show_traceback: bool = False) -> Literal[True]:
        return True


def _revert_response(exc: TransactionFailed, request_id: str) -> RPCResponse:
    raw: Any = exc.args[0] if exc.args else b""
    if isinstance(raw, Exception):  # eth-tester sometimes wraps the EVM's error
        raw = raw.args[0] if raw.args else b""
    if isinstance(raw, str) and raw[:2] in ("b'", 'b"'):
        # eth-tester's call path hands the revert data over as the repr of the bytes
        with contextlib.suppress(ValueError, SyntaxError):
            raw = ast.literal_eval(raw)
    if isinstance(raw, bytes) and raw:
        error: dict[str, Any] = {
            "code": 3,
            "message": "execution reverted",
            "data": "0x" + raw.hex(),
        }
    else:
        text = str(raw) if raw else "execution reverted"
        error = {
            "code": -32000,
            "message": f"execution reverted: {text}".replace(
                "execution reverted: execution reverted", "execution reverted"
            ),
        }
    return {"id": request_id, "jsonrpc": "2.0", "error": error}  # type: ignore[typeddict-item]
