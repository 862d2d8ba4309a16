"""Fixtures for the contract tests: an in-process EVM (eth-tester / py-evm) through web3,
deployment from the committed build JSON, revert assertions by custom error name, time
travel, and the Merkle tree the RevenueDistributor verifies.

Shared code lives here as fixtures: the root pytest runs with --import-mode=importlib, so test
modules cannot import each other.
"""

import ast
import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed
from eth_utils import keccak, to_checksum_address
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

BUILD_DIR = Path(__file__).resolve().parent.parent / "build"


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][len('tuple') :]}"
    return param["type"]


def _revert_data(exc: BaseException) -> bytes:
    """The raw revert data of a failed call or transaction.

    web3's EthereumTesterProvider re-raises eth-tester's TransactionFailed with the data only
    in its message (and eth-tester itself does so for calls), so the bytes are taken from the
    first exception in the chain that holds them, or parsed back from their repr."""
    if isinstance(exc, ContractLogicError) and isinstance(exc.data, str):
        return bytes.fromhex(exc.data.removeprefix("0x"))
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None:
        chain.append(current)
        current = current.__context__
    for candidate in reversed(chain):
        if not isinstance(candidate, TransactionFailed) or not candidate.args:
            continue
        raw = candidate.args[0]
        if isinstance(raw, Exception) and raw.args:
            raw = raw.args[0]
        if isinstance(raw, bytes):
            return raw
        if isinstance(raw, str):
            text = raw.removeprefix("execution reverted: ")
            if text[:2] in ("b'", 'b"'):
                return ast.literal_eval(text)
    raise AssertionError(f"no revert data in {exc!r}")


class Chain:
    """One fresh in-process chain with funded accounts, deploying the committed artifacts."""

    def __init__(self) -> None:
        self.w3 = Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend())))
        self.accounts: list[str] = list(self.w3.eth.accounts)
        self.w3.eth.default_account = self.accounts[0]

    @staticmethod
    def artifact(name: str) -> dict[str, Any]:
        return json.loads((BUILD_DIR / f"{name}.json").read_text())

    def deploy(self, name: str, *args: Any, sender: str | None = None) -> Contract:
        art = self.artifact(name)
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        tx = factory.constructor(*args).transact({"from": sender or self.accounts[0]})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])

    def at(self, name: str, address: str) -> Contract:
        return self.w3.eth.contract(address=address, abi=self.artifact(name)["abi"])

    def send(self, fn: Any, sender: str | None = None) -> dict[str, Any]:
        """Transacts a contract function call and returns the successful receipt."""
        tx = fn.transact({"from": sender or self.accounts[0]})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1
        return receipt

    def now(self) -> int:
        return self.w3.eth.get_block("latest")["timestamp"]

    def advance(self, seconds: int) -> int:
        """Moves chain time forward by `seconds` (mines one block) and returns the new time."""
        target = self.w3.eth.get_block("pending")["timestamp"] + seconds
        self.w3.testing.timeTravel(target)
        return target

    def events(self, contract: Contract, event: str, receipt: dict[str, Any]) -> list[Any]:
        return list(contract.events[event]().process_receipt(receipt, errors=DISCARD))

    @contextlib.contextmanager
    def reverts(self, contract: Contract, error: str, *args: Any) -> Iterator[None]:
        """Expects the block to revert with custom error `error`, looked up in `contract`'s
        ABI (the contract that declares it, which may be one the callee calls), and with
        `args` when given."""
        abi = next((e for e in contract.abi if e["type"] == "error" and e["name"] == error), None)
        assert abi is not None, f"{error} is not an error of this contract"
        types = [_abi_type(i) for i in abi["inputs"]]
        selector = keccak(text=f"{error}({','.join(types)})")[:4]
        with pytest.raises((ContractLogicError, TransactionFailed)) as info:
            yield
        data = _revert_data(info.value)
        assert data[:4] == selector, f"reverted with {data[:4].hex()}, expected {error} {selector}"
        if args:
            decoded = [
                to_checksum_address(v) if t == "address" else v
                for t, v in zip(types, abi_decode(types, data[4:]), strict=True)
            ]
            assert tuple(decoded) == tuple(args)


@pytest.fixture
def chain() -> Chain:
    return Chain()


class MerkleTree:
    """Uniswap merkle-distributor tree: leaf = keccak256(abi.encodePacked(uint256 index,
    address account, uint256 amount)), parents hash the sorted pair, an odd node is promoted
    unchanged. Matches OpenZeppelin MerkleProof.verify."""

    def __init__(self, entries: Sequence[tuple[str, int]]) -> None:
        self.entries = list(entries)
        self.leaves = [self.leaf(i, account, amount) for i, (account, amount) in enumerate(entries)]
        self.layers: list[list[bytes]] = [self.leaves]
        while len(self.layers[-1]) > 1:
            layer = self.layers[-1]
            parents = []
            for i in range(0, len(layer), 2):
                if i + 1 < len(layer):
                    a, b = sorted((layer[i], layer[i + 1]))
                    parents.append(keccak(a + b))
                else:
                    parents.append(layer[i])
            self.layers.append(parents)

    @staticmethod
    def leaf(index: int, account: str, amount: int) -> bytes:
        return keccak(
            index.to_bytes(32, "big") + bytes.fromhex(account[2:]) + amount.to_bytes(32, "big")
        )

    @property
    def root(self) -> bytes:
        return self.layers[-1][0]

    def proof(self, index: int) -> list[bytes]:
        path = []
        for layer in self.layers[:-1]:
            sibling = index ^ 1
            if sibling < len(layer):
                path.append(layer[sibling])
            index //= 2
        return path


@pytest.fixture
def merkle_tree() -> Callable[[Sequence[tuple[str, int]]], MerkleTree]:
    return MerkleTree
