"""The chain adapter: one signer's transactions on one chain, through web3's AsyncWeb3.

Embedded (no CHAIN_RPC_URL): an in-process EVM, the signer a funded genesis account (or the
CHAIN_PRIVATE_KEY account, funded from it). Distributed: CHAIN_RPC_URL's JSON-RPC node and
CHAIN_PRIVATE_KEY's account. Every transaction is signed locally and sent raw.

Concurrent sends share one local nonce counter under an asyncio lock; the counter is taken
from the node's pending count at start and again after any failed send, so a nonce the node
never accepted is reused rather than leaving a gap. Gas is estimated (a revert shows up here,
before anything is signed) and given a margin. Every failure leaves as BlockchainError.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import rlp
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions import TypedTransaction
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.contract import AsyncContract
from web3.exceptions import ContractLogicError, TransactionNotFound
from web3.types import TxParams, TxReceipt

from audifi_kit.chain.artifacts import Artifact
from audifi_kit.chain.embedded import EmbeddedChain
from audifi_kit.chain.reverts import ErrorRegistry, blockchain_error
from audifi_kit.errors import BlockchainError
from audifi_kit.settings import Settings

ArtifactSource = Artifact | Mapping[str, Any] | str | Path

ResendOutcome = Literal["sent", "nonce_used"]


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A transaction signed and not sent yet: what a caller records as its intent."""

    tx_hash: str  # 0x hex
    raw: str  # 0x hex of the signed transaction, sendable as is
    nonce: int


def _nonce_of(raw: bytes | str) -> int | None:
    try:
        return int(TypedTransaction.from_bytes(HexBytes(raw)).as_dict()["nonce"])
    except Exception:
        try:
            return int(rlp.decode(bytes(HexBytes(raw)))[0].hex() or "0", 16)
        except Exception:
            return None


# Ether the embedded chain gives a configured signer that is not a genesis account.
EMBEDDED_FUNDING = 10_000 * 10**18


class ChainAdapter:
    def __init__(
        self,
        w3: AsyncWeb3[Any],
        account: LocalAccount,
        *,
        chain_id: int,
        embedded: EmbeddedChain | None = None,
        gas_margin: float = 1.2,
        receipt_timeout: float = 120.0,
        poll_interval: float = 0.05,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.chain_id = chain_id
        self.embedded = embedded
        self.gas_margin = gas_margin
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self.errors = ErrorRegistry()
        self._nonce_lock = asyncio.Lock()
        self._next_nonce: int | None = None

    @classmethod
    async def connect(
        cls,
        settings: Settings,
        *,
        embedded: EmbeddedChain | None = None,
        account_index: int = 0,
        **options: Any,
    ) -> ChainAdapter:
        """The adapter the settings select: CHAIN_RPC_URL's node, else an embedded EVM.

        In embedded mode every service of the process must share one `EmbeddedChain` (one
        EVM), and two adapters must not sign with the same account: each keeps its own nonce
        counter. `account_index` picks another funded genesis account.
        """
        try:
            if settings.chain_rpc_url:
                w3: AsyncWeb3[Any] = AsyncWeb3(AsyncHTTPProvider(settings.chain_rpc_url))
                if not settings.chain_private_key:
                    raise BlockchainError(
                        "CHAIN_PRIVATE_KEY is required with CHAIN_RPC_URL",
                        details={"action": "connect"},
                    )
                account = Account.from_key(settings.chain_private_key)
                embedded = None
            else:
                embedded = embedded or EmbeddedChain()
                w3 = embedded.web3()
                account = embedded.funded_account(account_index)
            chain_id = await w3.eth.chain_id
        except BlockchainError:
            raise
        except Exception as exc:
            raise blockchain_error(exc, ErrorRegistry(), action="connect") from None
        if settings.chain_id is not None and settings.chain_id != chain_id:
            raise BlockchainError(
                "The chain node is on another chain than CHAIN_ID",
                details={"action": "connect", "expected": settings.chain_id, "actual": chain_id},
            )
        adapter = cls(w3, account, chain_id=chain_id, embedded=embedded, **options)
        if embedded is not None and settings.chain_private_key:
            funder = cls(
                w3, embedded.funded_account(account_index), chain_id=chain_id, embedded=embedded
            )
            signer = Account.from_key(settings.chain_private_key)
            if await w3.eth.get_balance(signer.address) == 0:
                await funder.send({"to": signer.address, "value": EMBEDDED_FUNDING})
            adapter.account = signer
        return adapter

    @property
    def address(self) -> str:
        return self.account.address

    # -- contracts ---------------------------------------------------------------------

    def contract(self, artifact: ArtifactSource, address: str) -> AsyncContract:
        """A deployed contract; its custom errors become decodable in revert reasons."""
        art = Artifact.load(artifact)
        self.errors.register(art.abi)
        return self.w3.eth.contract(address=self.w3.to_checksum_address(address), abi=art.abi)

    async def deploy(self, artifact: ArtifactSource, *args: Any, value: int = 0) -> AsyncContract:
        contract, _ = await self.deployment(artifact, *args, value=value)
        return contract

    async def deployment(
        self, artifact: ArtifactSource, *args: Any, value: int = 0
    ) -> tuple[AsyncContract, TxReceipt]:
        """Deploy `artifact` with constructor `args`: the contract and its creation receipt."""
        art = Artifact.load(artifact)
        if not art.bytecode or art.bytecode == "0x":
            raise BlockchainError(
                f"{art.name or 'The contract'} has no bytecode to deploy",
                details={"action": "deploy", "contract": art.name},
            )
        self.errors.register(art.abi)
        data = HexBytes(art.bytecode) + abi_encode(art.constructor_inputs, args)
        receipt = await self.send({"data": data, "value": value}, action=f"deploy {art.name}")
        address = receipt["contractAddress"]
        if address is None:
            raise BlockchainError(
                "The deployment created no contract", details={"action": "deploy"}
            )
        return self.w3.eth.contract(address=address, abi=art.abi), receipt

    async def call(
        self, contract: AsyncContract, function: str, *args: Any, block: int | str = "latest"
    ) -> Any:
        """A read-only call; a revert is a BlockchainError with its reason."""
        try:
            return await contract.functions[function](*args).call(
                {"from": self.address}, block_identifier=block
            )
        except Exception as exc:
            raise blockchain_error(exc, self.errors, action=f"call {function}") from None

    async def transact(
        self,
        contract: AsyncContract,
        function: str,
        *args: Any,
        value: int = 0,
        gas: int | None = None,
    ) -> TxReceipt:
        """Send a contract call as a transaction and wait for its successful receipt.

        `gas` skips the estimate (which is where most reverts are caught before signing).
        """
        data = contract.encode_abi(function, args=list(args))
        tx: TxParams = {"to": contract.address, "data": data, "value": value}
        if gas is not None:
            tx["gas"] = gas
        return await self.send(tx, action=function)

    # -- transactions ------------------------------------------------------------------

    async def send(self, tx: TxParams, *, action: str = "send") -> TxReceipt:
        """Sign, send and wait: the receipt of a successful transaction, or BlockchainError."""
        tx_hash = await self.submit(tx, action=action)
        return await self.wait(tx_hash, tx=tx, action=action)

    async def submit(
        self,
        tx: TxParams,
        *,
        action: str = "send",
        before_send: Callable[[SignedTx], Awaitable[None]] | None = None,
    ) -> HexBytes:
        """Sign and send; returns the transaction hash once the node accepted it.

        `before_send` is given the signed transaction (hash, raw bytes, nonce) before it
        leaves: a caller that must never do a thing twice records it there (its intent), so
        after a crash it can look the hash up, or send the same raw transaction again, instead
        of signing a second one. If it raises, nothing is sent and the nonce stays free.
        """
        tx = dict(tx)  # type: ignore[assignment]
        tx["from"] = self.address
        tx.setdefault("value", 0)
        tx["chainId"] = self.chain_id
        if isinstance(tx.get("to"), str):
            tx["to"] = to_checksum_address(tx["to"])
        try:
            if "gas" not in tx:
                estimate = await self.w3.eth.estimate_gas(tx)
                tx["gas"] = int(estimate * self.gas_margin)
            if "gasPrice" not in tx and "maxFeePerGas" not in tx:
                tx.update(await self._fees())
        except Exception as exc:
            raise blockchain_error(exc, self.errors, action=action) from None
        async with self._nonce_lock:
            try:
                if self._next_nonce is None:
                    self._next_nonce = await self.w3.eth.get_transaction_count(
                        self.address, "pending"
                    )
                tx["nonce"] = self._next_nonce
                signed = self.account.sign_transaction(tx)
            except Exception as exc:
                self._next_nonce = None  # resynchronised from the node on the next send
                raise blockchain_error(exc, self.errors, action=action) from None
            if before_send is not None:
                await before_send(
                    SignedTx(
                        tx_hash=HexBytes(signed.hash).to_0x_hex(),
                        raw=HexBytes(signed.raw_transaction).to_0x_hex(),
                        nonce=int(tx["nonce"]),
                    )
                )
            try:
                tx_hash = await self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Exception as exc:
                self._next_nonce = None  # resynchronised from the node on the next send
                raise blockchain_error(exc, self.errors, action=action) from None
            self._next_nonce += 1
        return HexBytes(tx_hash)

    async def receipt(self, tx_hash: bytes | str, *, action: str = "receipt") -> TxReceipt | None:
        """The transaction's receipt if it was mined, None if the chain does not know it as
        mined (pending, dropped, or never sent). Does not wait."""
        try:
            return await self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        except Exception as exc:
            raise blockchain_error(exc, self.errors, action=action, tx_hash=tx_hash) from None

    async def resend(self, raw: bytes | str, *, action: str = "resend") -> ResendOutcome:
        """Send an already signed transaction again (a recorded intent whose fate is unknown).

        "sent": the node took it (or already had it pending); "nonce_used": its nonce is
        spent, so either it was mined (look its receipt up) or another transaction took the
        nonce and it never will be. Any other refusal is a BlockchainError.
        """
        try:
            async with self._nonce_lock:
                # It spends a nonce the counter did not give out: count again from the node.
                self._next_nonce = None
                await self.w3.eth.send_raw_transaction(HexBytes(raw))
        except Exception as exc:
            text = str(getattr(exc, "message", None) or exc).lower()
            if "already known" in text or "already imported" in text:
                return "sent"
            if "nonce too low" in text or "nonce is too low" in text or "already been used" in text:
                return "nonce_used"
            # Nodes word it differently (eth-tester among them): judge by the mined count.
            mined = await self.w3.eth.get_transaction_count(self.address, "latest")
            signer_nonce = _nonce_of(raw)
            if signer_nonce is not None and signer_nonce < mined:
                return "nonce_used"
            raise blockchain_error(exc, self.errors, action=action) from None
        return "sent"

    async def wait(
        self, tx_hash: bytes | str, *, tx: TxParams | None = None, action: str = "send"
    ) -> TxReceipt:
        """The receipt once mined; a failed (status 0) transaction is a BlockchainError."""
        try:
            receipt = await self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.receipt_timeout, poll_latency=self.poll_interval
            )
        except Exception as exc:
            raise blockchain_error(exc, self.errors, action=action, tx_hash=tx_hash) from None
        if receipt["status"] != 1:
            raise await self._failure(receipt, tx, action)
        return receipt

    async def _failure(
        self, receipt: TxReceipt, tx: TxParams | None, action: str
    ) -> BlockchainError:
        """Why a mined transaction failed: replayed as a call at its block for the reason."""
        tx_hash = receipt["transactionHash"]
        if tx is None:
            tx = await self.w3.eth.get_transaction(tx_hash)  # type: ignore[assignment]
        replay: TxParams = {
            k: v
            for k, v in dict(tx).items()
            if k in ("from", "to", "data", "input", "value", "gas")
        }  # type: ignore[assignment]
        if "input" in replay:
            replay["data"] = replay.pop("input")  # type: ignore[typeddict-item]
        replay["from"] = self.address
        try:
            await self.w3.eth.call(replay, receipt["blockNumber"] - 1)
        except ContractLogicError as exc:
            return blockchain_error(exc, self.errors, action=action, tx_hash=tx_hash)
        except Exception:  # the reason is a courtesy: the failure stands without it
            pass
        return BlockchainError(
            "The transaction failed on chain",
            details={"action": action, "txHash": HexBytes(tx_hash).to_0x_hex(), "status": 0},
        )

    async def resync_nonce(self) -> None:
        """Take the nonce from the node again (after a chain reset, or another sender's use)."""
        async with self._nonce_lock:
            self._next_nonce = None

    async def _fees(self) -> dict[str, int]:
        block = await self.w3.eth.get_block("latest")
        base_fee = block.get("baseFeePerGas")
        if base_fee is None:  # a pre-London chain
            return {"gasPrice": await self.w3.eth.gas_price}
        priority = await self.w3.eth.max_priority_fee
        return {"maxFeePerGas": 2 * base_fee + priority, "maxPriorityFeePerGas": priority}

    async def close(self) -> None:
        if isinstance(self.w3.provider, AsyncHTTPProvider):
            await self.w3.provider.disconnect()  # its cached HTTP sessions
