"""The `CoinChain` port on the platform's chain: ArtistCoinFactory (operated by coin's account),
a Pool and a Staking per coin (deployed and owned by that account), the payment token.

Idempotence: the factory keeps one coin per artist key (the artist's id hashed to an address:
`artist_key`), so a retried `create_coin` finds the coin a lost attempt made. A lost pool or
staking deployment leaves an unused contract behind and the retry deploys another (no funds
are at stake before the service records it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from audifi_kit.chain.adapter import SignedTx
from audifi_kit.chain.payments import check_payment
from audifi_kit.chain.platform import PlatformChain, artifact
from audifi_kit.chain.reverts import blockchain_error
from audifi_kit.errors import BlockchainError
from eth_utils import keccak, to_checksum_address
from web3.logs import DISCARD

from audifi_coin.coins import Created, CustodyOutcome, PreparedTx, StakeFacts
from audifi_coin.domain.coin import ArtistCoin, CoinTerms

OPERATOR = "coin"
GAS_MARGIN = 1.25
ZERO = "0x" + "00" * 20
MAX_ALLOWANCE = 2**256 - 1
ARTIFACTS = {"Pool": "Pool", "Staking": "Staking", "ERC20": "ArtistCoin"}


def artist_key(artist_id: str) -> str:
    """The address the factory keys an artist's coin by: their id hashed (no key behind it)."""
    return to_checksum_address(keccak(text=f"audifi artist {artist_id}")[-20:])


class ChainCoins:
    def __init__(self, chain: PlatformChain, *, confirmations: int = 1) -> None:
        self.chain = chain
        self.confirmations = max(1, confirmations)
        self._lock = asyncio.Lock()  # the operator's deployments and hand-overs one at a time

    async def _operator(self):  # type: ignore[no-untyped-def]
        return await self.chain.adapter(OPERATOR)

    def _at(self, adapter: Any, kind: str, address: str) -> Any:
        return adapter.contract(artifact(ARTIFACTS[kind], self.chain.settings), address)

    async def custody(self) -> str:
        return (await self._operator()).address  # type: ignore[no-any-return]

    async def chain_id(self) -> int:
        return (await self.chain.start()).chain_id

    def payment_token(self) -> str:
        assert self.chain.deployment is not None
        return self.chain.deployment.payment_token

    # -- deployment ----------------------------------------------------------------------------

    async def create_coin(self, artist_id: str, terms: CoinTerms) -> Created:
        adapter = await self._operator()
        factory = await self.chain.contract(OPERATOR, "ArtistCoinFactory")
        key = artist_key(artist_id)
        async with self._lock:
            existing = await adapter.call(factory, "coinOf", key)
            if int(existing, 16) != 0:  # made by an attempt that was not recorded
                logs = await factory.events.ArtistCoinCreated().get_logs(
                    argument_filters={"artist": key}, from_block=self._factory_block()
                )
                tx = logs[0]["transactionHash"].to_0x_hex() if logs else "0x" + "00" * 32
                block = logs[0]["blockNumber"] if logs else 0
                return Created(to_checksum_address(existing), tx, block)
            receipt = await adapter.transact(
                factory, "createCoin", key, terms.name, terms.symbol, terms.supply, terms.recipient
            )
        (log,) = factory.events.ArtistCoinCreated().process_receipt(receipt, errors=DISCARD)
        return Created(
            to_checksum_address(log["args"]["coin"]),
            receipt["transactionHash"].to_0x_hex(),
            receipt["blockNumber"],
        )

    def _factory_block(self) -> int:
        assert self.chain.deployment is not None
        return self.chain.deployment.contracts["ArtistCoinFactory"].block

    async def create_pool(self, coin: str, symbol: str) -> Created:
        adapter = await self._operator()
        async with self._lock:
            contract, receipt = await adapter.deployment(
                artifact("Pool", self.chain.settings),
                coin,
                self.payment_token(),
                f"AudiFi {symbol}/USDC LP",
                f"{symbol}-LP",
            )
        return Created(
            contract.address, receipt["transactionHash"].to_0x_hex(), receipt["blockNumber"]
        )

    async def create_staking(self, coin: str, duration: int) -> Created:
        adapter = await self._operator()
        async with self._lock:
            contract, receipt = await adapter.deployment(
                artifact("Staking", self.chain.settings), coin, coin, duration, adapter.address
            )
        return Created(
            contract.address, receipt["transactionHash"].to_0x_hex(), receipt["blockNumber"]
        )

    # -- the user's transactions ---------------------------------------------------------------

    async def prepare(
        self, sender: str, steps: list[tuple[str, str, str, list[Any]]]
    ) -> list[PreparedTx]:
        """Each step (description, contract kind, address, [function, *args]) as an unsigned
        transaction from `sender`; the first is estimated, the later ones only when no
        approval comes before them (an estimate would fail until it is mined)."""
        adapter = await self._operator()
        prepared: list[PreparedTx] = []
        for i, (description, kind, address, call) in enumerate(steps):
            contract = self._at(adapter, kind, address)
            function, *args = call
            data = contract.encode_abi(function, args=args)
            gas: int | None = None
            if i == 0 or not any(s[3][0] == "approve" for s in steps[:i]):
                try:
                    estimate = await adapter.w3.eth.estimate_gas(
                        {"from": sender, "to": contract.address, "data": data, "value": 0}
                    )
                except Exception as exc:
                    raise blockchain_error(exc, adapter.errors, action=function) from None
                gas = int(estimate * GAS_MARGIN)
            prepared.append(
                PreparedTx(
                    description=description,
                    chain_id=adapter.chain_id,
                    sender=sender,
                    to=contract.address,
                    data=data,
                    value=0,
                    gas=gas,
                )
            )
        return prepared

    async def allowance(self, token: str, owner: str, spender: str) -> int:
        adapter = await self._operator()
        return int(
            await adapter.call(self._at(adapter, "ERC20", token), "allowance", owner, spender)
        )

    async def stake_facts(self, staking: str, account: str) -> StakeFacts:
        adapter = await self._operator()
        contract = self._at(adapter, "Staking", staking)
        latest = await adapter.w3.eth.get_block("latest")
        return StakeFacts(
            earned=int(await adapter.call(contract, "earned", account)),
            reward_rate=int(await adapter.call(contract, "rewardRate")),
            period_finish=int(await adapter.call(contract, "periodFinish")),
            chain_time=int(latest["timestamp"]),
        )

    # -- rewards -------------------------------------------------------------------------------

    async def check_funding(self, coin: str, tx_hash: str, amount: int) -> None:
        adapter = await self._operator()
        await check_payment(
            adapter.w3,
            tx_hash,
            recipient=adapter.address,
            amount=amount,
            token=coin,
            confirmations=self.confirmations,
        )

    async def notify_reward(self, staking: str, coin: str, amount: int) -> str:
        adapter = await self._operator()
        contract = self._at(adapter, "Staking", staking)
        token = self._at(adapter, "ERC20", coin)
        async with self._lock:
            if int(await adapter.call(token, "allowance", adapter.address, staking)) < amount:
                await adapter.transact(token, "approve", staking, MAX_ALLOWANCE)
            try:
                receipt = await adapter.transact(contract, "notifyRewardAmount", amount)
            except BlockchainError as exc:
                if "ERC20InsufficientBalance" in str(exc.details.get("error", "")):
                    raise BlockchainError(
                        "The operator no longer holds these coins: they were handed to staking",
                        details={"staking": staking, "amount": str(amount)},
                    ) from None
                raise
        return receipt["transactionHash"].to_0x_hex()  # type: ignore[no-any-return]

    # -- custody: the operator signs for accounts without a wallet -----------------------------

    async def custody_submit(
        self,
        kind: str,
        coin: ArtistCoin,
        amount: int,
        to: str | None,
        before_send: Callable[[SignedTx], Awaitable[None]],
    ) -> str:
        """Sign the custody operation's transaction, hand it to `before_send` (recorded),
        then send it. Staking is approved once beforehand where the operation spends coins."""
        adapter = await self._operator()
        assert coin.address is not None and coin.staking is not None
        token = self._at(adapter, "ERC20", coin.address)
        staking = self._at(adapter, "Staking", coin.staking)
        if kind in ("stake", "fund"):
            async with self._lock:
                allowed = int(
                    await adapter.call(token, "allowance", adapter.address, staking.address)
                )
                if allowed < amount:
                    await adapter.transact(token, "approve", staking.address, MAX_ALLOWANCE)
        target, call = {
            "stake": (staking, ["stake", amount]),
            "unstake": (staking, ["unstake", amount]),
            "claim": (staking, ["claim"]),
            "fund": (staking, ["notifyRewardAmount", amount]),
            "withdraw": (token, ["transfer", to, amount]),
        }[kind]
        function, *args = call
        data = target.encode_abi(function, args=args)
        tx_hash = await adapter.submit(
            {"to": target.address, "data": data}, action=f"custody {kind}", before_send=before_send
        )
        return tx_hash.to_0x_hex()  # type: ignore[no-any-return]

    async def custody_outcome(
        self, kind: str, tx_hash: str, *, wait: bool = True
    ) -> CustodyOutcome | None:
        """The operation's outcome once mined (`wait`), or None: not mined (not waiting, or
        not found). A claim's reward is read from its RewardPaid log."""
        adapter = await self._operator()
        action = f"custody {kind}"
        receipt = await adapter.receipt(tx_hash, action=action)
        if receipt is None and wait:
            try:
                receipt = await adapter.wait(tx_hash, action=action)
            except BlockchainError:
                receipt = await adapter.receipt(tx_hash, action=action)
        if receipt is None:
            return None
        if receipt["status"] != 1:
            try:  # mined and reverted: replayed for the contract's reason
                await adapter.wait(tx_hash, action=action)
            except BlockchainError as failure:
                return CustodyOutcome(ok=False, received=None, reason=failure.message)
            return CustodyOutcome(ok=False, received=None, reason="reverted")
        received = None
        if kind == "claim":
            staking = self._at(adapter, "Staking", receipt["to"])
            paid = staking.events.RewardPaid().process_receipt(receipt, errors=DISCARD)
            received = sum(int(p["args"]["reward"]) for p in paid)
        return CustodyOutcome(ok=True, received=received)

    async def custody_resend(self, raw: str) -> None:
        adapter = await self._operator()
        await adapter.resend(raw, action="custody resend")
