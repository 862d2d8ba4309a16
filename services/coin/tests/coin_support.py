"""The coin app served on the embedded EVM with PostgreSQL, and wallets that sign their own
transactions: what the chain tests of the lottery and the coins share."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from audifi_coin.app import create_app
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.chain.platform import PlatformChain
from audifi_kit.settings import Settings
from audifi_kit.testing import TokenSigner, drop_databases, served
from eth_account import Account
from eth_account.signers.local import LocalAccount
from litestar import Litestar, get

USDC = 10**6
LOOP_DEADLINE = 30.0


@dataclass
class Wallet:
    """A user's own wallet: a fresh key that signs its own transactions."""

    account: LocalAccount
    chain: PlatformChain

    @property
    def address(self) -> str:
        return self.account.address

    async def _w3(self) -> Any:
        return (await self.chain.adapter("deployer")).w3

    async def send(self, contract: Any, function: str, *args: Any) -> Any:
        tx = await contract.functions[function](*args).build_transaction({"from": self.address})
        return await self.sign_and_send(tx)

    async def sign_and_send(self, tx: dict[str, Any]) -> Any:
        """What a wallet does with a transaction it is handed: fill in nonce and fees, sign,
        send, wait for the receipt (which must succeed)."""
        w3 = await self._w3()
        tx = dict(tx)
        tx["from"] = self.address
        tx["nonce"] = await w3.eth.get_transaction_count(self.address)
        tx["chainId"] = await w3.eth.chain_id
        tx.setdefault("gas", int(await w3.eth.estimate_gas(tx) * 1.25))
        if "gasPrice" not in tx and "maxFeePerGas" not in tx:
            tx["gasPrice"] = await w3.eth.gas_price
        signed = self.account.sign_transaction(tx)
        tx_hash = await w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = await w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1, receipt
        return receipt

    async def sign_prepared(self, prepared: list[dict[str, Any]]) -> list[Any]:
        """The service's prepared transactions (`transactions` of a response), in order."""
        receipts = []
        for p in prepared:
            assert p["from"] == self.address
            tx: dict[str, Any] = {"to": p["to"], "data": p["data"], "value": int(p["value"])}
            if p["gas"] is not None:
                tx["gas"] = int(p["gas"])
            assert p["chainId"] == await (await self._w3()).eth.chain_id
            receipts.append(await self.sign_and_send(tx))
        return receipts


@dataclass
class Served:
    client: httpx.AsyncClient
    signer: TokenSigner
    chain: PlatformChain
    now: list[datetime]
    confirmations: int = 1

    def headers(self, sub: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.signer.token(sub, roles=roles or ('fan',))}"}

    async def contract(self, name: str) -> Any:
        return await self.chain.contract("deployer", name)

    async def wallet(
        self, *, usdc: int = 0, shares: int = 0, master: uuid.UUID | None = None
    ) -> Wallet:
        """A fresh wallet with gas, `usdc` DevUSD (payment mints it) and `shares` of
        `master` (nft mints them)."""
        wallet = Wallet(Account.create(), self.chain)
        deployer = await self.chain.adapter("deployer")
        await deployer.send({"to": wallet.address, "value": 10**18})
        if usdc:
            payment = await self.chain.adapter("payment")
            dev_usd = await self.chain.contract("payment", "DevUSD")
            await payment.transact(dev_usd, "mint", wallet.address, usdc)
        if shares:
            assert master is not None
            nft = await self.chain.adapter("nft")
            master_shares = await self.chain.contract("nft", "MasterShares")
            if not await nft.call(master_shares, "ipoOpened", master.int):
                await nft.transact(master_shares, "openIpo", master.int, 10_000, nft.address, 0)
            await nft.transact(master_shares, "mint", wallet.address, master.int, shares)
        return wallet

    def mine(self, blocks: int = 1) -> None:
        assert self.chain.embedded is not None
        self.chain.embedded.mine_blocks(blocks)

    def travel(self, to: datetime) -> None:
        """The chain's time and the service's clock, both moved to `to`."""
        assert self.chain.embedded is not None
        with self.chain.embedded.lock:
            self.chain.embedded.tester.time_travel(int(to.timestamp()))
        self.now[0] = to

    async def until(
        self, path: str, ready: Callable[[Any], bool], sub: str = "reader"
    ) -> dict[str, Any]:
        """GET `path` until `ready(body)`: the indexers follow the chain in the background,
        a confirmation behind its head (so a block is mined on top first, as a live chain
        would)."""
        self.mine(self.confirmations)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOOP_DEADLINE
        while True:
            response = await self.client.get(path, headers=self.headers(sub))
            assert response.status_code == 200, response.text
            if ready(response.json()) or loop.time() > deadline:
                return response.json()  # type: ignore[no-any-return]
            await asyncio.sleep(0.1)


@asynccontextmanager
async def serving(postgres_url: str, var_dir: Path, *, confirmations: int) -> AsyncIterator[Served]:
    """The coin app on a fresh embedded chain and databases of its own, over HTTP."""
    signer = TokenSigner()

    @get("/.well-known/jwks.json", sync_to_thread=False)
    def jwks() -> dict[str, Any]:
        return signer.jwks()

    prefix = f"audifi_c{uuid.uuid4().hex[:8]}_"
    now = [datetime.now(UTC)]
    async with served(Litestar([jwks])) as auth:
        settings = Settings(
            database_url=postgres_url,
            db_prefix=prefix,
            var_dir=var_dir,
            poll_interval=0.1,
            jwks_url=f"{auth}/.well-known/jwks.json",
            pool_size=3,
            chain_confirmations=confirmations,
        )
        chain = PlatformChain(settings)
        app = create_app(settings, InProcessBus(), chain, clock=lambda: now[0])
        try:
            async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
                yield Served(client, signer, chain, now, confirmations)
        finally:
            await chain.close()
            await drop_databases(postgres_url, prefix)
