"""The `Distributor` port on the platform's chain: RevenueDistributor, owned by nft's operator,
funded from the operator's balance of the payment token (the treasury, where on-chain share
purchases are paid)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from audifi_kit.chain.platform import PlatformChain, artifact
from hexbytes import HexBytes
from web3.logs import DISCARD

from audifi_nft.distributions import Funding, Sweep, TreasuryShort


class ChainDistributor:
    def __init__(self, chain: PlatformChain) -> None:
        self.chain = chain
        self._lock = asyncio.Lock()  # one funding at a time: finding a lost one stays exact

    async def _contracts(self):  # type: ignore[no-untyped-def]
        adapter = await self.chain.adapter("nft")
        distributor = await self.chain.contract("nft", "RevenueDistributor")
        deployment = await self.chain.start()
        # The payment token (DevUSD when embedded, USDC on a real chain): an ERC-20's ABI.
        token = adapter.contract(artifact("DevUSD", self.chain.settings), deployment.payment_token)
        return adapter, distributor, token

    async def head(self) -> int:
        adapter, _, _ = await self._contracts()
        return int(await adapter.w3.eth.block_number)

    async def find(
        self, root: str, total: int, is_taken: Callable[[int], Awaitable[bool]]
    ) -> int | None:
        """A distribution already created with this root and total that no other
        distribution of ours has recorded (a funding sent, then lost before it was recorded)."""
        adapter, distributor, _ = await self._contracts()
        count = int(await adapter.call(distributor, "distributionCount"))
        wanted = HexBytes(root)
        for i in range(count - 1, -1, -1):
            d = await adapter.call(distributor, "distribution", i)
            if HexBytes(d[1]) == wanted and int(d[2]) == total and not await is_taken(i):
                return i
        return None

    async def fund(
        self,
        root: str,
        total: int,
        expires_at: datetime,
        is_taken: Callable[[int], Awaitable[bool]],
    ) -> Funding:
        """Create the distribution on chain (approve, then createDistribution), unless a lost
        earlier attempt created it already."""
        async with self._lock:
            found = await self.find(root, total, is_taken)
            if found is not None:
                return Funding(chain_distribution_id=found, tx_hash=None)
            adapter, distributor, token = await self._contracts()
            balance = int(await adapter.call(token, "balanceOf", adapter.address))
            if balance < total:
                raise TreasuryShort(details={"needed": str(total), "available": str(balance)})
            allowance = int(
                await adapter.call(token, "allowance", adapter.address, distributor.address)
            )
            if allowance < total:
                await adapter.transact(token, "approve", distributor.address, total)
            receipt = await adapter.transact(
                distributor,
                "createDistribution",
                token.address,
                root,
                total,
                int(expires_at.timestamp()),
            )
            # The receipt also holds the token's Transfer: only DistributionCreated is read.
            created = distributor.events.DistributionCreated().process_receipt(
                receipt, errors=DISCARD
            )
            return Funding(
                chain_distribution_id=int(created[0]["args"]["distributionId"]),
                tx_hash=receipt["transactionHash"].to_0x_hex(),
            )

    async def sweep(self, chain_distribution_id: int) -> Sweep:
        async with self._lock:
            adapter, distributor, _ = await self._contracts()
            d = await adapter.call(distributor, "distribution", chain_distribution_id)
            rest = int(d[2]) - int(d[3])  # total - claimed
            if d[5]:  # swept already: by an attempt that was not recorded
                return Sweep(amount=rest, tx_hash=None)
            receipt = await adapter.transact(
                distributor, "sweep", chain_distribution_id, adapter.address
            )
            return Sweep(amount=rest, tx_hash=receipt["transactionHash"].to_0x_hex())
