"""The `SharesChain` port on the platform's chain: MasterShares, signed by nft's operator
key (it holds the contract's admin and minter roles)."""

from __future__ import annotations

from audifi_kit.chain.platform import PlatformChain


class ChainShares:
    def __init__(self, chain: PlatformChain) -> None:
        self.chain = chain

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
