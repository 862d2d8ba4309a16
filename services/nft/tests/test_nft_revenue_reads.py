"""The Revenue Pass read side served for real (test_nft_http's app: PostgreSQL, the embedded
chain, real tokens): months listed and read (N18, N19), a wallet's claims (N20), the admin's
claim status and its CSV (N23, N24), a master's distributions. What a client sees once pass
holders were paid on chain and one of them claimed."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from audifi_events.auth import WalletLinked
from audifi_events.payment import OrderPaid, Product
from audifi_kit.chain.adapter import ChainAdapter
from audifi_kit.eventstore import EventStore
from audifi_kit.projections import rebuild
from audifi_kit.settings import Settings
from audifi_kit.testing import drop_databases, eventually
from audifi_nft import bootstrap
from audifi_nft.application import NftApplication
from audifi_nft.projections.distributions import CUSTODY, DISTRIBUTIONS, LEAVES, Distributions
from eth_account import Account
from eth_utils import to_checksum_address
from nft_support import ARTIST as SUPPORT_ARTIST
from nft_support import T0, register
from test_nft_http import ADMIN, ARTIST, FAN, Nft, _open_ipo
from test_nft_http import nft as nft  # the served app, as a fixture of this module

PASS_MASTER_ENV = "NFT_REVENUE_PASS_MASTER"

OCTOBER = {
    "month": "2026-10",
    "totalRevenue": 100_000,  # $1,000.00
    "sources": [{"name": "streaming", "amount": 100_000}],
    "distributionBps": 5_000,  # $500.00 to the holders
}
NOVEMBER = {
    "month": "2026-11",
    "totalRevenue": 200_000,  # $2,000.00
    "sources": [{"name": "streaming", "amount": 150_000}, {"name": "sync", "amount": 50_000}],
    "distributionBps": 3_000,  # $600.00 to the holders
}


async def _custody_purchase(c: httpx.AsyncClient, nft: Nft, ipo: dict, buyer: str) -> None:
    """`buyer`, with no wallet, buys 2 passes by card: minted into the platform's custody."""
    bought = await c.post(
        f"/ipos/{ipo['id']}/purchase", json={"quantity": 2}, headers=nft.headers(buyer)
    )
    assert bought.status_code == 201, bought.text
    purchase = bought.json()
    await nft.publish(
        OrderPaid(
            order_id=purchase["id"],
            product=Product(service="nft", kind="ipo_shares", reference=ipo["id"]),
            buyer_id=buyer,
            seller_id=ARTIST,
            quantity=purchase["quantity"],
            amount_cents=purchase["amountCents"],
            currency="USD",
            payment_intent_id=f"pi_{purchase['id'][:8]}",
            paid_at=datetime.now(UTC),
            ledger_transaction_id=None,
        )
    )


async def test_pass_months_a_wallets_claims_and_the_admins_claim_status_are_read(
    nft: Nft, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three pass holders (two wallets, one buyer in custody); the admin uploads October and
    November and triggers both; one wallet claims November on chain. Everyone signed in sees
    the months and that wallet's claim; admins see every leaf, claimed or not, and export it."""
    monkeypatch.delenv(PASS_MASTER_ENV, raising=False)
    claimer_id, custody_buyer = str(uuid.uuid4()), str(uuid.uuid4())
    operator = await nft.chain.adapter("nft")  # also the custody address and the treasury
    claimer = ChainAdapter(
        operator.w3,
        nft.chain.embedded.funded_account(9),  # type: ignore[union-attr]
        chain_id=operator.chain_id,
        embedded=nft.chain.embedded,
    )
    other = Account.create().address
    await nft.publish(
        WalletLinked(
            account_id=claimer_id,
            wallet_address=claimer.address,
            chain="evm",
            linked_at=datetime.now(UTC),
        )
    )
    admin, fan = nft.headers(ADMIN, "admin"), nft.headers(FAN)
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:

        async def read(path: str, headers: dict[str, str] = fan, **params: Any) -> Any:
            answer = await c.get(path, headers=headers, params=params)
            assert answer.status_code == 200, answer.text
            return answer.json()

        unset = await c.get("/revenue-pass/distributions", headers=fan)
        assert (unset.status_code, unset.json()["error"]["code"]) == (
            409,
            "REVENUE_PASS_NOT_CONFIGURED",
        )

        ipo = await _open_ipo(c, nft, cap=100)
        pass_id = ipo["masterId"]
        monkeypatch.setenv(PASS_MASTER_ENV, pass_id)
        await _custody_purchase(c, nft, ipo, custody_buyer)
        passes = await nft.chain.contract("nft", "MasterShares")
        token_id = int(pass_id.replace("-", ""), 16)
        await operator.transact(passes, "mint", claimer.address, token_id, 3)
        await operator.transact(passes, "mint", other, token_id, 1)

        async def indexed() -> bool:
            lines = {
                i["address"]: i["amount"]
                for i in (await read(f"/masters/{pass_id}/shares", nft.headers(ARTIST)))["items"]
            }
            held = (await read("/user/holdings", nft.headers(custody_buyer)))["items"]
            return lines == {claimer.address: 3, other: 1, operator.address: 2} and len(held) == 1

        await eventually(indexed, within=30, what="the passes indexed, custody's part known")
        dev_usd = await nft.chain.contract("payment", "DevUSD")
        await (await nft.chain.adapter("payment")).transact(
            dev_usd, "mint", operator.address, 10**12
        )

        for upload in (OCTOBER, NOVEMBER):
            declared = await c.post("/revenue-pass/distributions", json=upload, headers=admin)
            assert declared.status_code == 201, declared.text
            funded = await c.post(
                f"/revenue-pass/distributions/{upload['month']}/trigger", headers=admin
            )
            assert funded.status_code == 200 and funded.json()["status"] == "funded", funded.text
        november_id = funded.json()["id"]

        proof = await read(f"/distributions/{november_id}/proof", nft.headers(claimer_id))
        distributor = await nft.chain.contract("nft", "RevenueDistributor")
        mine = claimer.contract({"abi": distributor.abi, "bytecode": "0x"}, distributor.address)
        receipt = await claimer.transact(
            mine,
            "claim",
            proof["chainDistributionId"],
            proof["index"],
            proof["account"],
            int(proof["amount"]),
            proof["proof"],
        )
        claim_tx = receipt["transactionHash"].to_0x_hex()

        async def claim_shown() -> dict | None:
            month = await read("/revenue-pass/distributions/2026-11")
            return month if month["claimedCount"] == 1 else None

        # N19: the seed's fields (cents, and base units per pass), then ours.
        november = await eventually(claim_shown, within=30, what="the claim in the month")
        assert {k: november[k] for k in ("month", "totalRevenue", "distributionAmount")} == {
            "month": "2026-11",
            "totalRevenue": 200_000,
            "distributionAmount": 60_000,
        }
        assert november["perPassAmount"] == "100000000"  # $600 over 6 passes, 6 decimals
        assert november["sources"] == NOVEMBER["sources"]
        assert (november["status"], november["currency"], november["tokenDecimals"]) == (
            "funded",
            "USD",
            6,
        )
        assert (november["supply"], november["holders"]) == (6, 3)
        assert (november["fundedBaseUnits"], november["custodyBaseUnits"]) == (
            "400000000",
            "200000000",
        )
        assert november["claimedBaseUnits"] == "300000000"
        assert november["id"] == november_id and november["masterId"] == pass_id
        assert datetime.fromisoformat(november["expiresAt"]) > datetime.now(UTC)

        # N18: both months, newest first; October's rounding left one base unit behind.
        listed = await read("/revenue-pass/distributions")
        assert [d["month"] for d in listed["distributions"]] == ["2026-11", "2026-10"]
        october = listed["distributions"][1]
        assert (october["perShareBaseUnits"], october["remainderBaseUnits"]) == ("83333333", "1")
        assert [d["claimedCount"] for d in listed["distributions"]] == [1, 0]
        assert listed["totalDistributed"] == 110_000  # cents: $500 + $600
        assert listed["totalDistributedBaseUnits"] == "1099999999"
        dividends = await read(f"/masters/{pass_id}/distributions")
        assert dividends["masterId"] == pass_id
        assert dividends["distributions"] == listed["distributions"]

        # N20: anyone signed in reads a wallet's claims (public on chain), in any case.
        claims = await read(f"/revenue-pass/claims/{claimer.address.lower()}")
        assert (claims["walletAddress"], claims["totalClaimed"]) == (claimer.address, "300000000")
        [claim] = claims["claimHistory"]
        assert (claim["distributionId"], claim["month"], claim["index"]) == (
            november_id,
            "2026-11",
            proof["index"],
        )
        assert (claim["amount"], claim["txHash"]) == ("300000000", claim_tx)
        none = await read(f"/revenue-pass/claims/{other}")
        assert (none["totalClaimed"], none["claimHistory"]) == ("0", [])

        # N23: every leaf with its claim, paged in leaf order.
        first = await read("/revenue-pass/distributions/2026-11/claims", admin, limit=1)
        assert first["nextCursor"] is not None
        second = await read(
            "/revenue-pass/distributions/2026-11/claims", admin, limit=1, cursor=first["nextCursor"]
        )
        assert second["nextCursor"] is None
        lines = {i["account"]: i for i in first["items"] + second["items"]}
        assert [i["index"] for i in first["items"] + second["items"]] == [0, 1]
        assert (first["leaves"], first["claimedCount"], first["custodyHolders"]) == (2, 1, 1)
        assert lines[claimer.address]["claimedAt"] is not None
        assert lines[claimer.address] | {"claimedAt": None} == {
            "index": proof["index"],
            "account": claimer.address,
            "amount": "300000000",
            "claimed": True,
            "txHash": claim_tx,
            "claimedAt": None,
        }
        assert (lines[other]["amount"], lines[other]["claimed"], lines[other]["txHash"]) == (
            "100000000",
            False,
            None,
        )

        # N24: the same as CSV, with the custody holder's line.
        export = await c.get("/revenue-pass/distributions/2026-11/claims.csv", headers=admin)
        assert export.status_code == 200, export.text
        assert export.headers["content-type"].startswith("text/csv")
        assert "revenue-pass-2026-11-claims.csv" in export.headers["content-disposition"]
        header, *rows = list(csv.reader(io.StringIO(export.text)))
        assert header == ["kind", "index", "account", "amount", "claimed", "txHash", "claimedAt"]
        by_account = {r[2]: r for r in rows}
        assert len(rows) == 3
        assert by_account[claimer.address][:6] == [
            "wallet",
            str(proof["index"]),
            claimer.address,
            "300000000",
            "true",
            claim_tx,
        ]
        assert by_account[claimer.address][6] == lines[claimer.address]["claimedAt"].replace(
            "Z", "+00:00"
        )
        assert by_account[other][3:] == ["100000000", "false", "", ""]
        assert by_account[custody_buyer] == ["custody", "", custody_buyer, "200000000", "", "", ""]

        for path in ("claims", "claims.csv"):
            refused = await c.get(f"/revenue-pass/distributions/2026-11/{path}", headers=fan)
            assert (refused.status_code, refused.json()["error"]["code"]) == (403, "FORBIDDEN")

        for path, field in (
            ("/revenue-pass/distributions/2026-13", "month"),
            ("/revenue-pass/distributions/11-2026/claims", "month"),
            ("/revenue-pass/claims/0x1234", "walletAddress"),
        ):
            bad = await c.get(path, headers=admin)
            assert bad.status_code == 400, (path, bad.text)
            assert bad.json()["error"]["details"]["fields"][0]["field"] == field
        for path in (
            "/revenue-pass/distributions/2025-01",
            "/revenue-pass/distributions/2025-01/claims",
        ):
            unknown = await c.get(path, headers=admin)
            assert (unknown.status_code, unknown.json()["error"]["code"]) == (
                404,
                "DISTRIBUTION_NOT_FOUND",
            )
        no_master = await c.get(f"/masters/{uuid.uuid4()}/distributions", headers=fan)
        assert (no_master.status_code, no_master.json()["error"]["code"]) == (
            404,
            "MASTER_NOT_FOUND",
        )


# -- the view on its own: claims recorded from the chain, and one taken back by a reorg -----

A, B = (to_checksum_address(f"0x{c * 40}") for c in "ab")
TX_A, TX_B, TX_B_AGAIN = (f"0x{c * 64}" for c in "123")


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[EventStore[NftApplication]]:
    prefix = f"audifi_r{uuid.uuid4().hex[:8]}_"
    opened = await bootstrap.on_postgres(Settings(database_url=postgres_url, db_prefix=prefix))
    try:
        yield opened
    finally:
        opened.close()
        await drop_databases(postgres_url, prefix)


def _funded(app: NftApplication) -> UUID:
    """September's dividends of a master: $10.00 to two wallets (2 and 1 shares) and an
    account in custody (4), funded as RevenueDistributor's distribution 7."""
    master = register(app)
    d = app.declare_distribution(
        master.id,
        collection="master",
        month="2026-09",
        total_revenue=1_000,
        bps=10_000,
        sources=[{"name": "streaming", "amount": 1_000}],
        actor_id=SUPPORT_ARTIST,
        actor_is_admin=False,
        now=T0,
    )
    app.snapshot_distribution(d.id, block=5, wallets={A: 2, B: 1}, custody={"acc-1": 4}, now=T0)
    app.fund_distribution(
        d.id,
        chain_distribution_id=7,
        tx_hash=f"0x{'f' * 64}",
        expires_at=T0 + timedelta(days=365),
        now=T0,
    )
    return d.id


def _leaf(app: NftApplication, distribution_id: UUID, account: str) -> tuple[int, int]:
    [(index, amount)] = [
        (i, n) for i, a, n in app.distribution(distribution_id).leaves if a == account
    ]
    return index, amount


def _claim(app: NftApplication, distribution_id: UUID, account: str, tx: str, block: int) -> None:
    d = app.distribution(distribution_id)
    index, amount = _leaf(app, distribution_id, account)
    d.record_claim(index=index, account=account, amount=amount, tx_hash=tx, block=block, at=T0)
    app.save(d)


def _reorged(app: NftApplication, distribution_id: UUID, account: str, tx: str) -> None:
    d = app.distribution(distribution_id)
    d.undo_claim(index=_leaf(app, distribution_id, account)[0], tx_hash=tx, at=T0)
    app.save(d)


async def test_the_view_counts_claims_and_forgets_one_whose_block_left_the_chain(
    store: EventStore[NftApplication],
) -> None:
    app = store.app
    distribution_id = await store.call(_funded, app)
    await store.call(_claim, app, distribution_id, A, TX_A, 10)
    await store.call(_claim, app, distribution_id, B, TX_B, 11)
    await store.call(_reorged, app, distribution_id, B, TX_B)
    pool = await store.create_pool()
    try:
        await rebuild(store, Distributions())
        d = await pool.fetchrow(f"SELECT * FROM {DISTRIBUTIONS} WHERE id = $1", distribution_id)
        assert (d["status"], d["chain_distribution_id"], d["supply"], d["holders"]) == (
            "funded",
            7,
            7,
            3,
        )
        # $10 = 10,000,000 base units over 7 shares: 1,428,571 each, 2 left by rounding.
        assert (int(d["per_share"]), int(d["remainder"])) == (1_428_571, 2)
        assert (int(d["funded"]), int(d["custody"])) == (2_857_142 + 1_428_571, 5_714_285)
        assert (d["claimed_count"], int(d["claimed"])) == (1, 2_857_142)
        leaves = {
            r["account"]: r
            for r in await pool.fetch(
                f"SELECT * FROM {LEAVES} WHERE distribution_id = $1", distribution_id
            )
        }
        assert (leaves[A]["claimed_tx"], leaves[A]["claimed_block"]) == (TX_A, 10)
        assert leaves[B]["claimed_tx"] is None and leaves[B]["claimed_at"] is None
        custody = await pool.fetch(
            f"SELECT account_id, amount FROM {CUSTODY} WHERE distribution_id = $1",
            distribution_id,
        )
        assert [(r["account_id"], int(r["amount"])) for r in custody] == [("acc-1", 5_714_285)]

        await store.call(_claim, app, distribution_id, B, TX_B_AGAIN, 12)  # mined again
        await rebuild(store, Distributions())
        d = await pool.fetchrow(f"SELECT * FROM {DISTRIBUTIONS} WHERE id = $1", distribution_id)
        assert (d["claimed_count"], int(d["claimed"])) == (2, 2_857_142 + 1_428_571)
        again = await pool.fetchrow(
            f"SELECT claimed_tx, claimed_block FROM {LEAVES} WHERE distribution_id = $1 "
            "AND account = $2",
            distribution_id,
            B,
        )
        assert tuple(again) == (TX_B_AGAIN, 12)
    finally:
        await pool.close()
