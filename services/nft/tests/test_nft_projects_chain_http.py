"""Coda projects funded on chain, served for real: the nft app on PostgreSQL and the embedded
EVM with the platform's MilestoneEscrow. Fans sign the transactions the API prepares with
their own wallets; the indexer brings the chain's word back; nft's operator releases and
cancels on chain. What artists, fans and admins see, and what the token balances say."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from audifi_events.auth import WalletLinked
from audifi_kit.chain.adapter import ChainAdapter
from audifi_kit.testing import eventually
from eth_account import Account
from test_nft_http import ADMIN, ARTIST, Nft
from test_nft_http import nft as nft  # the served app, as a fixture of this module

USDC = 10**6


def _terms(**overrides: Any) -> dict[str, Any]:
    return {
        "title": "Third Album",
        "description": "Funded in USDC, released milestone by milestone on chain.",
        "fundingGoal": 100 * USDC,
        "currency": "USDC",
        "fundingMethod": "chain",
        "fundingDeadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "revenueShareBps": 1_000,
        "milestones": [
            {"name": "Recording", "payoutAmount": 40 * USDC},
            {"name": "Mixing", "payoutAmount": 60 * USDC},
        ],
        **overrides,
    }


class Wallets:
    """Fresh wallets on the embedded chain, with gas and test USDC (DevUSD)."""

    def __init__(self, nft: Nft) -> None:
        self.nft = nft

    async def start(self) -> None:
        self.treasury = await self.nft.chain.adapter("payment")  # DevUSD's owner
        self.dev_usd = await self.nft.chain.contract("payment", "DevUSD")
        self.escrow = await self.nft.chain.contract("nft", "MilestoneEscrow")

    async def new(self, account_id: str, usdc: int = 0) -> ChainAdapter:
        wallet = ChainAdapter(
            self.treasury.w3,
            Account.create(),
            chain_id=self.treasury.chain_id,
            embedded=self.nft.chain.embedded,
        )
        await self.treasury.send({"to": wallet.address, "value": 10**18})
        if usdc:
            await self.treasury.transact(self.dev_usd, "mint", wallet.address, usdc)
        await self.nft.publish(
            WalletLinked(
                account_id=account_id,
                wallet_address=wallet.address,
                chain="evm",
                linked_at=datetime.now(UTC),
            )
        )
        return wallet

    async def balance(self, address: str) -> int:
        return int(await self.treasury.call(self.dev_usd, "balanceOf", address))


async def _signed(wallet: ChainAdapter, funding: dict[str, Any]) -> None:
    """The fan's wallet signs and sends what the API prepared, in order."""
    assert funding["walletAddress"] == wallet.address
    for tx in funding["transactions"]:
        await wallet.send({"to": tx["to"], "data": tx["data"], "value": int(tx["value"])})


async def test_fans_fund_a_project_on_chain_its_milestones_pay_the_artists_wallet(
    nft: Nft,
) -> None:
    admin, artist = nft.headers(ADMIN, "admin"), nft.headers(ARTIST, "artist")
    fans = [str(uuid.uuid4()) for _ in range(3)]
    wallets = Wallets(nft)
    await wallets.start()
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        walletless = await c.post("/projects", json=_terms(), headers=artist)
        assert (walletless.status_code, walletless.json()["error"]["code"]) == (
            409,
            "NO_WALLET_LINKED",
        )
        artist_wallet = await wallets.new(ARTIST)
        fan_wallets = [await wallets.new(fan, usdc=50 * USDC) for fan in fans]

        async def created_with_wallet() -> dict | None:  # the wallet link was consumed
            answer = await c.post("/projects", json=_terms(), headers=artist)
            return answer.json() if answer.status_code == 201 else None

        project = await eventually(created_with_wallet, within=30, every=0.2)
        pid = project["id"]
        assert (project["fundingMethod"], project["currency"]) == ("chain", "USDC")
        assert project["escrow"]["recipient"] == artist_wallet.address

        async def escrowed() -> dict | None:  # nft's operator created the escrow project
            p = (await c.get(f"/projects/{pid}")).json()
            return p if p["escrow"]["projectId"] is not None else None

        project = await eventually(escrowed, within=30, every=0.2)
        chain_project_id = project["escrow"]["projectId"]
        assert project["escrow"]["address"] == wallets.escrow.address
        assert project["onchainReference"].endswith(f"{wallets.escrow.address}/{chain_project_id}")

        async def listed() -> dict | None:  # the catalogue (a read model) says it too
            items = (await c.get("/projects", params={"artistId": ARTIST})).json()["items"]
            return next((i for i in items if i["id"] == pid and i["onchainReference"]), None)

        summary = await eventually(listed, within=30, every=0.2)
        assert (summary["fundingMethod"], summary["onchainReference"]) == (
            "chain",
            project["onchainReference"],
        )
        on_chain = await wallets.treasury.call(wallets.escrow, "project", chain_project_id)
        assert (on_chain[2], on_chain[4]) == (artist_wallet.address, 100 * USDC)

        by_card = await c.post(
            f"/projects/{pid}/fund", json={"amount": 10 * USDC}, headers=nft.headers(fans[0])
        )
        assert (by_card.status_code, by_card.json()["error"]["code"]) == (
            409,
            "WRONG_FUNDING_METHOD",
        )
        not_mine = await c.post(
            f"/projects/{pid}/fund",
            json={"amount": 10 * USDC, "method": "chain", "walletAddress": fan_wallets[1].address},
            headers=nft.headers(fans[0]),
        )
        assert not_mine.status_code == 400
        assert not_mine.json()["error"]["details"]["fields"][0]["field"] == "walletAddress"

        for fan, wallet, amount in zip(fans, fan_wallets, (30, 35, 35), strict=True):
            if fan == fans[2]:  # past what is left: refused with what is left
                over = await c.post(
                    f"/projects/{pid}/fund",
                    json={"amount": 36 * USDC, "method": "chain"},
                    headers=nft.headers(fan),
                )
                assert (over.status_code, over.json()["error"]["code"]) == (
                    409,
                    "FUNDING_EXCEEDS_GOAL",
                )
                assert over.json()["error"]["details"]["left"] == 35 * USDC
            funding = await c.post(
                f"/projects/{pid}/fund",
                json={"amount": amount * USDC, "method": "chain"},
                headers=nft.headers(fan),
            )
            assert funding.status_code == 201, funding.text
            assert [t["to"] for t in funding.json()["transactions"]] == [
                wallets.dev_usd.address,
                wallets.escrow.address,
            ]
            await _signed(wallet, funding.json())

            async def counted(total: int = sum((30, 35, 35)[: fans.index(fan) + 1])) -> bool:
                p = (await c.get(f"/projects/{pid}")).json()
                return p["amountRaised"] == total * USDC

            await eventually(counted, within=30, every=0.2)

        project = (await c.get(f"/projects/{pid}")).json()
        assert (project["status"], project["funders"], project["escrowed"]) == (
            "in_progress",
            3,
            100 * USDC,
        )
        mine = (await c.get("/user/investments", headers=nft.headers(fans[0]))).json()["items"]
        assert [(i["method"], i["amount"], i["walletAddress"]) for i in mine] == [
            ("chain", 30 * USDC, fan_wallets[0].address)
        ]

        first = f"{pid}.1"
        proof = await c.post(
            f"/milestones/{first}/submit-proof",
            json={"proofUrl": "https://studio.example/recording"},
            headers=artist,
        )
        assert proof.status_code == 200, proof.text
        approved = await c.post(f"/milestones/{first}/approve", headers=admin)
        assert approved.status_code == 200, approved.text

        async def released() -> dict | None:  # the operator released it on chain
            m = (await c.get(f"/projects/{pid}/milestones")).json()[0]
            return m if m["onchainReference"] else None

        milestone = await eventually(released, within=30, every=0.2)
        assert milestone["status"] == "unlocked"
        assert await wallets.balance(artist_wallet.address) == 40 * USDC
        early = await c.post(f"/projects/{pid}/finalize", headers=artist)
        assert (early.status_code, early.json()["error"]["code"]) == (
            409,
            "PROJECT_STATE_CONFLICT",
        )


async def test_a_cancelled_chain_project_is_cancelled_on_chain_and_each_funder_takes_a_refund(
    nft: Nft,
) -> None:
    admin, artist = nft.headers(ADMIN, "admin"), nft.headers(ARTIST, "artist")
    fan = str(uuid.uuid4())
    wallets = Wallets(nft)
    await wallets.start()
    await wallets.new(ARTIST)
    wallet = await wallets.new(fan, usdc=20 * USDC)
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:

        async def created() -> dict | None:
            answer = await c.post("/projects", json=_terms(), headers=artist)
            return answer.json() if answer.status_code == 201 else None

        pid = (await eventually(created, within=30, every=0.2))["id"]

        async def ready() -> dict | None:  # escrow made, and the fan's wallet link consumed
            funding = await c.post(
                f"/projects/{pid}/fund",
                json={"amount": 20 * USDC, "method": "chain"},
                headers=nft.headers(fan),
            )
            return funding.json() if funding.status_code == 201 else None

        funding = await eventually(ready, within=30, every=0.2)
        await _signed(wallet, funding)
        assert await wallets.balance(wallet.address) == 0

        async def invested() -> dict | None:
            items = (await c.get("/user/investments", headers=nft.headers(fan))).json()["items"]
            return items[0] if items else None

        investment = await eventually(invested, within=30, every=0.2)
        assert (investment["amount"], investment["refundable"]) == (20 * USDC, 0)

        cancelled = await c.post(
            f"/projects/{pid}/cancel", json={"reason": "The band split up"}, headers=admin
        )
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

        async def cancelled_on_chain() -> dict | None:
            p = (await c.get(f"/projects/{pid}")).json()
            return p if p["escrow"]["cancelled"] else None

        project = await eventually(cancelled_on_chain, within=30, every=0.2)
        chain_project_id = project["escrow"]["projectId"]
        mine = (await c.get(f"/investments/{investment['id']}", headers=nft.headers(fan))).json()
        assert (mine["refundable"], mine["refunded"]) == (20 * USDC, 0)

        escrow = wallet.contract(
            {"abi": wallets.escrow.abi, "bytecode": "0x"}, wallets.escrow.address
        )
        await wallet.transact(escrow, "refund", chain_project_id)  # the fan takes it back

        async def refunded() -> dict | None:
            i = (await c.get(f"/investments/{investment['id']}", headers=nft.headers(fan))).json()
            return i if i["refunded"] else None

        mine = await eventually(refunded, within=30, every=0.2)
        assert (mine["refunded"], mine["refundable"]) == (20 * USDC, 0)
        assert mine["refundTx"] is not None
        assert await wallets.balance(wallet.address) == 20 * USDC
        project = (await c.get(f"/projects/{pid}")).json()
        assert (project["refunded"], project["escrowed"]) == (20 * USDC, 0)
