"""The lottery on the chain: the coin app served over HTTP on the embedded EVM with the real
Lottery contract, PostgreSQL and its indexer, wallets signing their own transactions.

A round's story as its buyers see it: a paid transaction checked and ticketed, a purchase on
the contract itself and a burn of master shares both become tickets, a reused hash and a
payment a reorganisation dropped issue nothing, and after the end date the draw pays the
winner on chain and anyone recomputes the winner from the proof endpoint alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from audifi_coin.app import create_app
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.chain.platform import PlatformChain
from audifi_kit.settings import Settings
from audifi_kit.testing import TokenSigner, drop_databases, served
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from litestar import Litestar, get

ADMIN, FAN = str(uuid.uuid4()), str(uuid.uuid4())
USDC = 10**6
PRICE = 5 * USDC
MASTER = uuid.uuid4()
LOOP_DEADLINE = 30.0


@dataclass
class Wallet:
    """A buyer's own wallet: a fresh key that signs its own transactions."""

    account: LocalAccount
    chain: PlatformChain

    @property
    def address(self) -> str:
        return self.account.address

    async def send(self, contract: Any, function: str, *args: Any) -> Any:
        w3 = (await self.chain.adapter("deployer")).w3
        tx = await contract.functions[function](*args).build_transaction(
            {
                "from": self.address,
                "nonce": await w3.eth.get_transaction_count(self.address),
                "chainId": await w3.eth.chain_id,
            }
        )
        signed = self.account.sign_transaction(tx)
        tx_hash = await w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = await w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
        return receipt


@dataclass
class Served:
    client: httpx.AsyncClient
    signer: TokenSigner
    chain: PlatformChain
    now: list[datetime]

    def headers(self, sub: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.signer.token(sub, roles=roles or ('fan',))}"}

    async def contract(self, name: str) -> Any:
        return await self.chain.contract("deployer", name)

    async def wallet(self, *, usdc: int = 0, shares: int = 0) -> Wallet:
        """A fresh wallet with gas, `usdc` DevUSD (payment mints it) and `shares` of MASTER
        (nft mints them)."""
        wallet = Wallet(Account.create(), self.chain)
        deployer = await self.chain.adapter("deployer")
        await deployer.send({"to": wallet.address, "value": 10**18})
        if usdc:
            payment = await self.chain.adapter("payment")
            dev_usd = await self.chain.contract("payment", "DevUSD")
            await payment.transact(dev_usd, "mint", wallet.address, usdc)
        if shares:
            nft = await self.chain.adapter("nft")
            master_shares = await self.chain.contract("nft", "MasterShares")
            if not await nft.call(master_shares, "ipoOpened", MASTER.int):
                await nft.transact(master_shares, "openIpo", MASTER.int, 10_000, nft.address, 0)
            await nft.transact(master_shares, "mint", wallet.address, MASTER.int, shares)
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

    async def until(self, path: str, ready: Any, sub: str = FAN) -> dict[str, Any]:
        """GET `path` until `ready(body)`: the indexer follows the chain in the background."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOOP_DEADLINE
        while True:
            response = await self.client.get(path, headers=self.headers(sub))
            assert response.status_code == 200, response.text
            if ready(response.json()) or loop.time() > deadline:
                return response.json()  # type: ignore[no-any-return]
            await asyncio.sleep(0.1)


@pytest.fixture
async def coin(postgres_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    signer = TokenSigner()

    @get("/.well-known/jwks.json", sync_to_thread=False)
    def jwks() -> dict[str, Any]:
        return signer.jwks()

    prefix = f"audifi_l{uuid.uuid4().hex[:8]}_"
    now = [datetime.now(UTC)]
    async with served(Litestar([jwks])) as auth:
        settings = Settings(
            database_url=postgres_url,
            db_prefix=prefix,
            var_dir=tmp_path,
            poll_interval=0.1,
            jwks_url=f"{auth}/.well-known/jwks.json",
            pool_size=3,
            chain_confirmations=2,
        )
        chain = PlatformChain(settings)
        app = create_app(settings, InProcessBus(), chain, clock=lambda: now[0])
        try:
            async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
                yield Served(client, signer, chain, now)
        finally:
            await chain.close()
            await drop_databases(postgres_url, prefix)


async def test_a_round_on_chain_from_purchases_to_a_draw_anyone_can_recompute(
    coin: Served,
) -> None:
    start = coin.now[0] - timedelta(minutes=5)
    end = coin.now[0] + timedelta(hours=1)
    created = await coin.client.post(
        "/lottery/rounds",
        json={
            "id": "chain-round-1",
            "ticketPrice": PRICE,
            "nativeTicketPrice": 0,
            "burnMasterId": str(MASTER),
            "sharesPerTicket": 5,
            "maxTicketsPerWallet": 10,
            "startDate": start.isoformat(),
            "endDate": end.isoformat(),
        },
        headers=coin.headers(ADMIN, "admin"),
    )
    assert created.status_code == 201, created.text
    current = (await coin.client.get("/lottery/rounds/current", headers=coin.headers(FAN))).json()
    pay_to = current["payTo"]
    chain_round = current["chainRoundId"]
    dev_usd = await coin.contract("DevUSD")
    lottery = await coin.contract("Lottery")

    # Alice pays the treasury and names her transaction: checked, then ticketed on chain.
    alice = await coin.wallet(usdc=100 * USDC)
    paid = await alice.send(dev_usd, "transfer", pay_to["treasury"], 2 * PRICE)
    tx = paid["transactionHash"].to_0x_hex()
    body = {
        "walletAddress": alice.address,
        "ticketCount": 2,
        "paymentMethod": "USDC",
        "transactionSignature": tx,
        "amountPaid": 2 * PRICE,
    }
    early = await coin.client.post("/lottery/purchase", json=body, headers=coin.headers(FAN))
    assert early.status_code == 409 and early.json()["error"]["code"] == "PAYMENT_NOT_CONFIRMED"
    coin.mine()
    bought = await coin.client.post("/lottery/purchase", json=body, headers=coin.headers(FAN))
    assert bought.status_code == 200, bought.text
    assert bought.json()["ticketsIssued"] == [1, 2] and bought.json()["transactionVerified"]
    again = await coin.client.post("/lottery/purchase", json=body, headers=coin.headers(FAN))
    assert again.status_code == 409 and again.json()["error"]["code"] == "TX_HASH_USED"

    # Bob buys on the contract itself: the indexer turns its log into his tickets.
    bob = await coin.wallet(usdc=100 * USDC)
    await bob.send(dev_usd, "approve", lottery.address, 3 * PRICE)
    await bob.send(lottery, "buyTickets", chain_round, 3)
    coin.mine(2)
    bobs = await coin.until(f"/lottery/tickets/{bob.address}", lambda b: b["totalTickets"] == 3)
    assert bobs["ticketNumbers"] == [3, 4, 5]

    # Carol burns 10 of the round's master's shares and claims their 2 tickets.
    carol = await coin.wallet(shares=20)
    master_shares = await coin.contract("MasterShares")
    burnt = await carol.send(master_shares, "burn", carol.address, MASTER.int, 10)
    coin.mine()
    claim = {
        "walletAddress": carol.address,
        "nftsBurned": [str(MASTER)],
        "transactionSignatures": [burnt["transactionHash"].to_0x_hex()],
        "ticketsClaimed": 2,
    }
    earned = await coin.client.post("/lottery/burn-claim", json=claim, headers=coin.headers(FAN))
    assert earned.status_code == 200, earned.text
    assert earned.json()["ticketsIssued"] == [6, 7]

    # Dave's payment is dropped by a reorganisation before it is confirmed: no ticket.
    dave = await coin.wallet(usdc=100 * USDC)
    assert coin.chain.embedded is not None
    fork = coin.chain.embedded.take_snapshot()
    dropped = await dave.send(dev_usd, "transfer", pay_to["treasury"], PRICE)
    daves = {
        "walletAddress": dave.address,
        "ticketCount": 1,
        "paymentMethod": "USDC",
        "transactionSignature": dropped["transactionHash"].to_0x_hex(),
        "amountPaid": PRICE,
    }
    pending = await coin.client.post("/lottery/purchase", json=daves, headers=coin.headers(FAN))
    assert pending.json()["error"]["code"] == "PAYMENT_NOT_CONFIRMED"
    coin.chain.embedded.revert_to_snapshot(fork)
    coin.mine(3)
    gone = await coin.client.post("/lottery/purchase", json=daves, headers=coin.headers(FAN))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "PAYMENT_NOT_FOUND"
    daves_tickets = await coin.client.get(
        f"/lottery/tickets/{dave.address}", headers=coin.headers(FAN)
    )
    assert daves_tickets.json()["totalTickets"] == 0

    # After the end date the admin draws; the winner is paid on chain.
    settled = await coin.until(
        "/lottery/rounds/current",
        lambda b: b["totalTicketsSold"] == 7 and b["prizePool"] == str(5 * PRICE),
    )
    assert settled["status"] == "active"
    coin.travel(end + timedelta(minutes=1))
    balances = {
        w.address: await dev_usd.functions.balanceOf(w.address).call() for w in (alice, bob, carol)
    }
    drawn = await coin.client.post(
        "/lottery/rounds/chain-round-1/draw", headers=coin.headers(ADMIN, "admin")
    )
    assert drawn.status_code == 200, drawn.text
    assert drawn.json()["status"] == "completed"
    proof = (
        await coin.client.get("/lottery/rounds/chain-round-1/proof", headers=coin.headers(FAN))
    ).json()

    # An independent recomputation from the proof alone names the same ticket...
    seed = bytes.fromhex(proof["seed"][2:])
    assert keccak(seed).hex() == proof["seedHash"][2:]
    block_hash = bytes.fromhex(proof["drawBlockHash"][2:])
    index = int.from_bytes(keccak(seed + block_hash), "big") % proof["ticketsSold"]
    assert (index, index + 1) == (proof["winningIndex"], proof["winningTicket"])
    # ...the block hash is the chain's own, and the winner holds that ticket and got the pot.
    w3 = (await coin.chain.adapter("deployer")).w3
    assert (await w3.eth.get_block(proof["drawBlock"]))["hash"] == block_hash
    assert proof["drawBlock"] == proof["closeBlock"] + 1
    holder = await lottery.functions.ticketHolder(chain_round, index).call()
    assert proof["winner"] == holder and proof["prize"] == str(5 * PRICE)
    assert await dev_usd.functions.balanceOf(holder).call() == balances[holder] + 5 * PRICE
