"""The `SharesChain` port on the platform's chain: MasterShares, signed by nft's operator
key (it holds the contract's admin and minter roles). The operator's address is also the
custody address: shares of buyers without a wallet are minted to it and held for them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from audifi_kit.chain.adapter import ResendOutcome, SignedTx
from audifi_kit.chain.platform import PlatformChain
from audifi_kit.errors import BlockchainError

from audifi_nft.ipos import MintReceipt


class ChainShares:
    def __init__(self, chain: PlatformChain, custody_address: str | None = None) -> None:
        self.chain = chain
        self._custody = custody_address

    async def _shares(self):  # type: ignore[no-untyped-def]
        return await self.chain.adapter("nft"), await self.chain.contract("nft", "MasterShares")

    async def ipo_opened(self, master_chain_id: int) -> bool:
        adapter, shares = await self._shares()
        return bool(await adapter.call(shares, "ipoOpened", master_chain_id))

    async def open_ipo(
        self, master_chain_id: int, cap: int, royalty_receiver: str, royalty_bps: int
    ) -> str:
        adapter, shares = await self._shares()
        receipt = await adapter.transact(
            shares, "openIpo", master_chain_id, cap, royalty_receiver, royalty_bps
        )
        return receipt["transactionHash"].to_0x_hex()

    async def cap_of(self, master_chain_id: int) -> int:
        adapter, shares = await self._shares()
        return int(await adapter.call(shares, "capOf", master_chain_id))

    async def minted_of(self, master_chain_id: int) -> int:
        adapter, shares = await self._shares()
        return int(await adapter.call(shares, "mintedOf", master_chain_id))

    @property
    def custody_address(self) -> str:
        assert self._custody is not None, "start() first: the operator's address is read there"
        return self._custody

    async def start(self) -> None:
        """Learn the operator's address (the custody address unless one was given)."""
        if self._custody is None:
            adapter = await self.chain.adapter("nft")
            self._custody = adapter.address

    async def submit_mint(
        self,
        to: str,
        master_chain_id: int,
        amount: int,
        before_send: Callable[[SignedTx], Awaitable[None]],
    ) -> str:
        adapter, shares = await self._shares()
        data = shares.encode_abi("mint", args=[to, master_chain_id, amount])
        tx_hash = await adapter.submit(
            {"to": shares.address, "data": data}, action="mint", before_send=before_send
        )
        return tx_hash.to_0x_hex()

    async def submit_transfer(
        self,
        from_address: str,
        to: str,
        master_chain_id: int,
        amount: int,
        before_send: Callable[[SignedTx], Awaitable[None]],
    ) -> str:
        adapter, shares = await self._shares()
        data = shares.encode_abi(
            "safeTransferFrom", args=[from_address, to, master_chain_id, amount, b""]
        )
        tx_hash = await adapter.submit(
            {"to": shares.address, "data": data}, action="withdraw", before_send=before_send
        )
        return tx_hash.to_0x_hex()

    async def mint_receipt(self, tx_hash: str) -> MintReceipt | None:
        adapter, _ = await self._shares()
        receipt = await adapter.receipt(tx_hash, action="mint")
        if receipt is None:
            return None
        block = int(receipt["blockNumber"])
        if receipt["status"] == 1:
            return MintReceipt(tx_hash=tx_hash, ok=True, block_number=block)
        try:  # mined and failed: replayed for the contract's reason
            await adapter.wait(tx_hash, action="mint")
        except BlockchainError as failure:
            error = {"message": failure.message, "details": failure.details}
        else:  # pragma: no cover - a failed receipt always raises
            error = {"message": "The transaction failed on chain", "details": {}}
        return MintReceipt(tx_hash=tx_hash, ok=False, block_number=block, error=error)

    async def wait_mint(self, tx_hash: str) -> MintReceipt:
        """The outcome once mined (BlockchainError when it is not mined in time)."""
        adapter, _ = await self._shares()
        try:
            receipt = await adapter.wait(tx_hash, action="mint")
        except BlockchainError:
            found = await self.mint_receipt(tx_hash)  # mined and reverted: with its reason
            if found is None:
                raise
            return found
        return MintReceipt(tx_hash=tx_hash, ok=True, block_number=int(receipt["blockNumber"]))

    async def resend(self, raw_tx: str) -> ResendOutcome:
        adapter, _ = await self._shares()
        return await adapter.resend(raw_tx, action="mint")
