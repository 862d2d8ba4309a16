"""The `EscrowChain` port on the platform's chain: MilestoneEscrow, each Coda chain project's
approver being nft's operator account, funded in the payment token (DevUSD when embedded,
USDC on a public chain).

Every step looks at the contract before it sends (see escrow.py): `create` finds an escrow
project with the same approver, recipient and milestones that none of ours recorded (an
attempt lost before it was recorded) and takes it instead of creating another; `release`
and `cancel` see from the project's `nextMilestone` and status whether they were done."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from audifi_kit.chain.platform import PlatformChain, artifact
from web3.logs import DISCARD

from audifi_nft.escrow import ChainTx, EscrowCreated

ESCROW = "MilestoneEscrow"
CANCELLED = 3  # MilestoneEscrow.Status.Cancelled
# project(id) -> (token, approver, recipient, status, goal, funded, released, nextMilestone,
# remainingAtCancel)
APPROVER, RECIPIENT, STATUS, NEXT_MILESTONE = 1, 2, 3, 7


class ChainEscrow:
    def __init__(self, chain: PlatformChain) -> None:
        self.chain = chain
        self._lock = asyncio.Lock()  # one step at a time: finding a lost one stays exact
        self._chain_id: int | None = None
        self._escrow: str | None = None
        self._token: str | None = None
        self._abis: tuple[list, list] | None = None  # type: ignore[type-arg]
        self._w3 = None  # the operator adapter's web3: encodes the funders' calldata

    async def start(self) -> None:
        deployment = await self.chain.start()
        adapter = await self.chain.adapter("nft")
        self._chain_id = adapter.chain_id
        self._w3 = adapter.w3
        self._escrow = deployment.address(ESCROW)
        self._token = deployment.payment_token
        self._abis = (
            artifact(ESCROW, self.chain.settings).abi,
            artifact("DevUSD", self.chain.settings).abi,  # an ERC-20's ABI
        )

    @property
    def chain_id(self) -> int:
        assert self._chain_id is not None, "start() first"
        return self._chain_id

    @property
    def escrow_address(self) -> str:
        assert self._escrow is not None, "start() first"
        return self._escrow

    @property
    def token_address(self) -> str:
        assert self._token is not None, "start() first"
        return self._token

    async def _contracts(self):  # type: ignore[no-untyped-def]
        if self._abis is None:
            await self.start()
        adapter = await self.chain.adapter("nft")
        return adapter, await self.chain.contract("nft", ESCROW)

    async def create(
        self,
        *,
        recipient: str,
        payouts: list[int],
        is_taken: Callable[[int], Awaitable[bool]],
    ) -> EscrowCreated:
        async with self._lock:
            adapter, escrow = await self._contracts()
            count = int(await adapter.call(escrow, "projectCount"))
            for i in range(count - 1, -1, -1):
                p = await adapter.call(escrow, "project", i)
                if (
                    p[APPROVER] == adapter.address
                    and p[RECIPIENT].lower() == recipient.lower()
                    and [int(x) for x in await adapter.call(escrow, "milestones", i)] == payouts
                    and not await is_taken(i)
                ):
                    return EscrowCreated(chain_project_id=i, tx_hash=None)
            receipt = await adapter.transact(
                escrow, "createProject", self.token_address, adapter.address, recipient, payouts
            )
            created = escrow.events.ProjectCreated().process_receipt(receipt, errors=DISCARD)
            return EscrowCreated(
                chain_project_id=int(created[0]["args"]["projectId"]),
                tx_hash=receipt["transactionHash"].to_0x_hex(),
            )

    async def release(self, chain_project_id: int, index: int) -> str | None:
        async with self._lock:
            adapter, escrow = await self._contracts()
            p = await adapter.call(escrow, "project", chain_project_id)
            if int(p[NEXT_MILESTONE]) > index:  # released by an attempt not recorded
                return None
            receipt = await adapter.transact(escrow, "releaseMilestone", chain_project_id, index)
            return receipt["transactionHash"].to_0x_hex()

    async def cancel(self, chain_project_id: int) -> str | None:
        async with self._lock:
            adapter, escrow = await self._contracts()
            p = await adapter.call(escrow, "project", chain_project_id)
            if int(p[STATUS]) == CANCELLED:  # cancelled by an attempt not recorded
                return None
            receipt = await adapter.transact(escrow, "cancel", chain_project_id)
            return receipt["transactionHash"].to_0x_hex()

    def funding_transactions(self, chain_project_id: int, amount: int) -> list[ChainTx]:
        """What a funder's wallet signs: the token's approval of the escrow, then `fund`."""
        assert self._abis is not None and self._w3 is not None, "start() first"
        escrow = self._w3.eth.contract(address=self.escrow_address, abi=self._abis[0])
        token = self._w3.eth.contract(address=self.token_address, abi=self._abis[1])
        return [
            ChainTx(
                to=self.token_address,
                data=token.encode_abi("approve", args=[self.escrow_address, amount]),
                value=0,
                description=f"Allow the escrow to take {amount} base units of the token",
            ),
            ChainTx(
                to=self.escrow_address,
                data=escrow.encode_abi("fund", args=[chain_project_id, amount]),
                value=0,
                description=f"Fund escrow project {chain_project_id} with {amount} base units",
            ),
        ]
