"""Holdings come from the chain: MasterShares' transfers, indexed into `ShareToken`s, read by
holders and artists.

In memory: the aggregate and the indexer's handler on fabricated logs (mints, transfers,
batches, burns, reorganisations taken back newest first), and a property: whatever the
transfers, taking back the newest of them leaves the balances the older ones made, and the
balances add up to the shares minted less those burnt.

Served: the nft app on PostgreSQL with the platform's contracts on the embedded EVM. Shares
are minted by nft's operator and moved wallet to wallet by a holder's own signature, the
indexer follows the chain (through a reorganisation made with eth-tester's snapshots), and
holders, the artist and an admin read what the chain says over HTTP.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.chain import ChainAdapter
from audifi_kit.chain.indexer import ChainIndexer, ChainLog
from audifi_kit.chain.platform import PlatformChain, artifact
from audifi_kit.launch import service_app
from audifi_kit.runtime import RUNTIME_STATE_KEY, ServiceRuntime
from audifi_kit.settings import Settings
from audifi_kit.spec import ServiceSpec
from audifi_kit.testing import TokenSigner, drop_databases, served
from audifi_nft.adapters.storage_local import LocalStorage
from audifi_nft.api.dependencies import CONTEXT_STATE_KEY, NftContext
from audifi_nft.api.holdings import (
    WALLET_LINKS_STATE_KEY,
    HoldingsController,
    ShareholdersController,
    WalletLinks,
)
from audifi_nft.application import NftApplication
from audifi_nft.bootstrap import in_memory
from audifi_nft.domain.holdings import (
    REORG_WINDOW,
    ZERO_ADDRESS,
    HoldingsOutOfStep,
    ShareToken,
    movement_kind,
    share_token_id,
)
from audifi_nft.holdings import SharesIndexHandler, share_indexer, share_token
from audifi_nft.projections.holdings import BALANCES, MASTERS, Holdings
from eth_account import Account
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar, get
from nft_support import ARTIST, T0, register, terms

SHARES = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
OPERATOR = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
A, B, C = (to_checksum_address(f"0x{c * 40}") for c in "abc")  # as the indexer decodes them
MASTER = uuid.UUID("9a1b6e1e-58a4-4f5a-9d1e-3c0a4f2b7d10")
OTHER_MASTER = uuid.UUID("0f3c2d4e-1a2b-4c5d-8e9f-a0b1c2d3e4f5")


def single(
    block: int, sender: str, recipient: str, amount: int, *, master: UUID = MASTER, index: int = 0
) -> ChainLog:
    """A TransferSingle as the indexer decodes it (its block's hash made from its number)."""
    return ChainLog(
        address=SHARES,
        block_number=block,
        block_hash=f"0x{block:064x}",
        tx_hash=f"0x{block:062x}{index:02x}",
        log_index=index,
        topics=(),
        data="0x",
        event="TransferSingle",
        args={
            "operator": OPERATOR,
            "from": sender,
            "to": recipient,
            "id": master.int,
            "value": amount,
        },
    )


def batch(
    block: int, sender: str, recipient: str, moves: Sequence[tuple[UUID, int]], index: int = 0
) -> ChainLog:
    return ChainLog(
        address=SHARES,
        block_number=block,
        block_hash=f"0x{block:064x}",
        tx_hash=f"0x{block:062x}{index:02x}",
        log_index=index,
        topics=(),
        data="0x",
        event="TransferBatch",
        args={
            "operator": OPERATOR,
            "from": sender,
            "to": recipient,
            "ids": [m.int for m, _ in moves],
            "values": [amount for _, amount in moves],
        },
    )


def index(app: NftApplication, *logs: ChainLog) -> None:
    """What the indexer does with each log: the handler decides, the changed tokens are saved."""
    handler = SharesIndexHandler()
    for chain_log in logs:
        app.save(*handler.apply(app, chain_log))


def take_back(app: NftApplication, *logs: ChainLog) -> None:
    """A reorganisation's rollback: the orphaned logs taken back, newest first."""
    handler = SharesIndexHandler()
    for chain_log in reversed(logs):
        app.save(*handler.revert(app, chain_log))


def holdings(app: NftApplication, master: UUID = MASTER) -> tuple[dict[str, int], int]:
    token = share_token(app, master)
    assert token is not None
    return dict(token.balances), token.supply


def history(app: NftApplication, master: UUID = MASTER) -> list[str]:
    return [type(e).__name__ for e in app.events.get(share_token_id(master))]


# -- in memory -----------------------------------------------------------------------------


def test_a_mint_then_a_wallet_to_wallet_transfer_gives_each_holder_their_shares() -> None:
    app = in_memory()
    index(app, single(1, ZERO_ADDRESS, A, 10), single(2, A, B, 3))

    assert holdings(app) == ({A: 7, B: 3}, 10)
    mint, moved = list(app.events.get(share_token_id(MASTER)))[1:]
    assert [movement_kind(e.from_address, e.to_address) for e in (mint, moved)] == [
        "mint",
        "transfer",
    ]
    assert (moved.from_address, moved.to_address, moved.amount) == (A, B, 3)
    assert (moved.from_balance, moved.to_balance, moved.supply) == (7, 3, 10)
    assert (moved.master_id, moved.token_id) == (str(MASTER), str(MASTER.int))
    assert (moved.block_number, moved.tx_hash) == (2, f"0x{2:062x}00")


def test_a_batch_moves_several_masters_shares_in_one_log() -> None:
    app = in_memory()
    index(
        app,
        batch(1, ZERO_ADDRESS, A, [(MASTER, 5), (OTHER_MASTER, 8)]),
        batch(2, A, B, [(MASTER, 2), (OTHER_MASTER, 8), (MASTER, 1)]),  # MASTER twice
    )

    assert holdings(app, MASTER) == ({A: 2, B: 3}, 5)
    assert holdings(app, OTHER_MASTER) == ({B: 8}, 8)
    take_back(app, batch(2, A, B, [(MASTER, 2), (OTHER_MASTER, 8), (MASTER, 1)]))
    assert holdings(app, MASTER) == ({A: 5}, 5)
    assert holdings(app, OTHER_MASTER) == ({A: 8}, 8)


def test_a_burn_lowers_the_supply_and_an_emptied_holder_holds_nothing() -> None:
    app = in_memory()
    index(app, single(1, ZERO_ADDRESS, A, 4), single(2, A, ZERO_ADDRESS, 4))

    assert holdings(app) == ({}, 0)
    burnt = list(app.events.get(share_token_id(MASTER)))[-1]
    assert movement_kind(burnt.from_address, burnt.to_address) == "burn"
    assert (burnt.from_balance, burnt.to_balance, burnt.supply) == (0, None, 0)


def test_a_reorganisation_takes_transfers_back_newest_first_and_keeps_their_history() -> None:
    app = in_memory()
    kept = single(1, ZERO_ADDRESS, A, 10)
    orphaned = [single(2, A, B, 4), single(3, B, C, 4), single(4, ZERO_ADDRESS, C, 1)]
    index(app, kept, *orphaned)
    assert holdings(app) == ({A: 6, C: 5}, 11)

    take_back(app, *orphaned)

    assert holdings(app) == ({A: 10}, 10)
    assert history(app) == [
        "Issued",
        *["SharesTransferred"] * 4,
        *["TransferReverted"] * 3,  # compensated, never deleted
    ]
    index(app, orphaned[0])  # the block comes back (a reorganisation back): applied again
    assert holdings(app) == ({A: 6, B: 4}, 10)


def test_shares_moved_that_the_holdings_never_saw_stop_the_indexer_loudly() -> None:
    app = in_memory()
    index(app, single(1, ZERO_ADDRESS, A, 2))

    with pytest.raises(HoldingsOutOfStep):
        index(app, single(2, A, B, 3))  # A holds 2 here: a log before this one was missed
    with pytest.raises(HoldingsOutOfStep):
        take_back(app, single(7, A, B, 1))  # never applied
    assert holdings(app) == ({A: 2}, 2)


def test_a_transfer_to_oneself_and_logs_that_move_nothing_change_no_balance() -> None:
    app = in_memory()
    index(app, single(1, ZERO_ADDRESS, A, 3), single(2, A, A, 3))
    opened = ChainLog(SHARES, 3, "0x03", "0x04", 0, (), "0x", "IpoOpened", {"masterId": 1})
    minted = single(4, ZERO_ADDRESS, A, 1)
    alien = dataclasses.replace(minted, args={**minted.args, "id": 2**200})  # no UUID reads so

    assert SharesIndexHandler().apply(app, opened) == []
    assert SharesIndexHandler().apply(app, alien) == []
    assert holdings(app) == ({A: 3}, 3)


def test_transfers_older_than_any_reorganisation_are_forgotten() -> None:
    token = ShareToken.issue(MASTER)
    for block in (1, 2, 2 + REORG_WINDOW):
        token.apply_transfer(
            log_key=f"k{block}",
            operator=OPERATOR,
            from_address=ZERO_ADDRESS,
            to_address=A,
            amount=1,
            block_number=block,
            block_hash=f"0x{block:x}",
            tx_hash=f"0x{block:x}",
            log_index=0,
        )

    assert list(token.transfers) == ["k2", f"k{2 + REORG_WINDOW}"]
    with pytest.raises(HoldingsOutOfStep):
        token.revert_transfer("k1")


MOVE = st.tuples(
    st.sampled_from(["mint", "transfer", "burn"]),
    st.sampled_from([A, B, C]),
    st.sampled_from([A, B, C]),
    st.integers(0, 20),
)


@settings(max_examples=75, deadline=None)
@given(moves=st.lists(MOVE, max_size=20), data=st.data())
def test_taking_back_the_newest_transfers_leaves_the_balances_of_the_older_ones(
    moves: list[tuple[str, str, str, int]], data: st.DataObject
) -> None:
    app = in_memory()
    token = ShareToken.issue(MASTER)
    after: list[tuple[dict[str, int], int]] = [({}, 0)]  # balances and supply after i moves
    keys: list[str] = []
    minted = burnt = 0
    for i, (kind, sender, recipient, amount) in enumerate(moves):
        sender = ZERO_ADDRESS if kind == "mint" else sender
        recipient = ZERO_ADDRESS if kind == "burn" else recipient
        if sender != ZERO_ADDRESS:
            amount = min(amount, token.balance_of(sender))  # the chain moves no more than held
        minted += amount if kind == "mint" else 0
        burnt += amount if kind == "burn" else 0
        keys.append(f"0x{i + 1:064x}:0")
        token.apply_transfer(
            log_key=keys[-1],
            operator=OPERATOR,
            from_address=sender,
            to_address=recipient,
            amount=amount,
            block_number=i + 1,
            block_hash=f"0x{i + 1:064x}",
            tx_hash=f"0x{i + 1:064x}",
            log_index=0,
        )
        after.append((dict(token.balances), token.supply))
        assert sum(token.balances.values()) == token.supply == minted - burnt
        assert all(balance > 0 for balance in token.balances.values())

    orphaned = data.draw(st.integers(0, len(keys)), label="transfers taken back")
    for key in reversed(keys[len(keys) - orphaned :]):
        token.revert_transfer(key)

    assert (token.balances, token.supply) == after[len(keys) - orphaned]
    assert sum(token.balances.values()) == token.supply
    app.save(token)
    rebuilt = app.repository.get(token.id)  # from its events alone
    assert (rebuilt.balances, rebuilt.supply) == (token.balances, token.supply)


# -- served: the chain, PostgreSQL and HTTP ------------------------------------------------

ADMIN, FAN, BUYER = (str(uuid.uuid4()) for _ in range(3))
RECEIVER = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
SPEC = ServiceSpec(name="nft", application=NftApplication, projections=(Holdings,))


@dataclass
class Served:
    client: httpx.AsyncClient
    app: Litestar
    signer: TokenSigner
    chain: PlatformChain
    settings: Settings
    wallets: dict[str, list[str]] = field(default_factory=dict)  # auth's links, as nft is told
    opened: list[ChainAdapter] = field(default_factory=list)

    @property
    def runtime(self) -> ServiceRuntime:
        runtime: ServiceRuntime = self.app.state[RUNTIME_STATE_KEY]
        return runtime

    def headers(self, sub: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.signer.token(sub, roles=roles or ('fan',))}"}

    async def wallet(self, index: int) -> ChainAdapter:
        """A holder's own wallet: a funded genesis account no service signs with."""
        adapter = await ChainAdapter.connect(
            Settings(), embedded=self.chain.embedded, account_index=index
        )
        self.opened.append(adapter)
        return adapter

    async def indexer(self) -> ChainIndexer:
        runtime = self.runtime
        indexer = await share_indexer(
            "nft.shares", self.chain, runtime.store, runtime.pool, self.settings
        )
        await indexer.create_tables()
        return indexer

    async def settled(self) -> None:
        """Until the holdings view has every event stored so far."""
        runtime = self.runtime
        table = runtime.store.table.replace('"', '""')
        head = await runtime.pool.fetchval(
            f'SELECT coalesce(max(notification_id), 0) FROM "{table}"'
        )
        await runtime.projections["holdings"].wait(head)

    async def lines(self, master_id: UUID) -> dict[str, int]:
        rows = await self.runtime.pool.fetch(
            f"SELECT address, amount FROM {BALANCES} WHERE master_id = $1", master_id
        )
        return {r["address"]: r["amount"] for r in rows}

    async def totals(self, master_id: UUID) -> tuple[int, int]:
        row = await self.runtime.pool.fetchrow(
            f"SELECT supply, holders FROM {MASTERS} WHERE master_id = $1", master_id
        )
        return (row["supply"], row["holders"]) if row else (0, 0)


@pytest.fixture
async def nft(postgres_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    signer = TokenSigner()

    @get("/.well-known/jwks.json", sync_to_thread=False)
    def jwks() -> dict[str, Any]:
        return signer.jwks()

    prefix = f"audifi_h{uuid.uuid4().hex[:8]}_"
    async with served(Litestar([jwks])) as auth:
        settings = Settings(
            database_url=postgres_url,
            db_prefix=prefix,
            var_dir=tmp_path,
            poll_interval=0.2,
            jwks_url=f"{auth}/.well-known/jwks.json",
            pool_size=3,
        )
        chain = PlatformChain(settings)
        wallets: dict[str, list[str]] = {}

        async def linked(account_id: str) -> Sequence[str]:
            return wallets.get(account_id, [])

        async def owners(addresses: Sequence[str]) -> Mapping[str, str]:
            return {
                a: account
                for account, theirs in wallets.items()
                for a in addresses
                if a.lower() in (w.lower() for w in theirs)
            }

        app = service_app(
            SPEC,
            settings,
            InProcessBus(),
            chain=chain,
            route_handlers=[HoldingsController, ShareholdersController],
            state={
                CONTEXT_STATE_KEY: NftContext(settings, LocalStorage(tmp_path / "media")),
                WALLET_LINKS_STATE_KEY: WalletLinks(addresses_of=linked, owners_of=owners),
            },
        )
        opened: list[ChainAdapter] = []
        try:
            async with served(app) as url, httpx.AsyncClient(base_url=url) as client:
                yield Served(client, app, signer, chain, settings, wallets, opened)
        finally:
            for adapter in opened:
                await adapter.close()
            await chain.close()
            await drop_databases(postgres_url, prefix)


async def test_holdings_follow_the_chain_wallet_to_wallet_and_through_a_reorganisation(
    nft: Served,
) -> None:
    master_id = uuid.uuid4()
    token = master_id.int
    operator = await nft.chain.adapter("nft")
    shares = await nft.chain.contract("nft", "MasterShares")
    fan = await nft.wallet(9)
    fans_shares = fan.contract(artifact("MasterShares"), shares.address)
    friend, stranger = Account.create().address, Account.create().address
    await operator.transact(shares, "openIpo", token, 100, RECEIVER, 500)
    await operator.transact(shares, "mint", fan.address, token, 10)
    await fan.transact(fans_shares, "safeTransferFrom", fan.address, friend, token, 4, b"")
    indexer = await nft.indexer()

    first = await indexer.catch_up()
    await nft.settled()

    assert first.applied == 2  # the mint's TransferSingle and the fan's own transfer
    assert await nft.lines(master_id) == {fan.address: 6, friend: 4}
    assert await nft.totals(master_id) == (10, 2)

    fork = nft.chain.embedded.take_snapshot()
    await fan.transact(fans_shares, "safeTransferFrom", fan.address, stranger, token, 6, b"")
    await indexer.catch_up()
    await nft.settled()
    assert await nft.lines(master_id) == {friend: 4, stranger: 6}

    nft.chain.embedded.revert_to_snapshot(fork)  # that block leaves the chain
    await fan.resync_nonce()
    await fan.transact(fans_shares, "safeBatchTransferFrom", fan.address, friend, [token], [1], b"")
    nft.chain.embedded.mine_blocks(2)
    after = await indexer.catch_up()
    await nft.settled()

    assert (after.reorgs, after.reverted, after.applied) == (1, 1, 1)
    assert await nft.lines(master_id) == {fan.address: 5, friend: 5}
    assert await nft.totals(master_id) == (10, 2)
    assert await nft.runtime.store.call(history, nft.runtime.store.app, master_id) == [
        "Issued",
        *["SharesTransferred"] * 3,
        "TransferReverted",
        "SharesTransferred",
    ]
    again = await indexer.catch_up()
    assert (again.applied, again.reverted) == (0, 0)


async def test_a_holder_sees_their_lines_and_the_artist_or_an_admin_every_holder(
    nft: Served,
) -> None:
    store = nft.runtime.store
    app: NftApplication = store.app
    master = await store.call(register, app)
    ipo = await store.call(
        app.configure_ipo, master_id=master.id, actor_id=ARTIST, actor_is_admin=False, **terms()
    )
    await store.call(app.launch_ipo, ipo.id, T0)
    await store.call(
        app.reserve,
        ipo.id,
        reservation_id="r-1",
        account_id=BUYER,
        quantity=3,
        method="card",
        now=T0,
    )
    await store.call(app.record_payment, ipo.id, reservation_id="r-1", payment="pi_1", paid_at=T0)
    operator = await nft.chain.adapter("nft")
    shares = await nft.chain.contract("nft", "MasterShares")
    custody = operator.address  # the platform holds the buyer's shares for them
    fan = await nft.wallet(9)
    other = Account.create().address
    await operator.transact(shares, "openIpo", master.chain_id, 100, RECEIVER, 500)
    minted = await operator.transact(shares, "mint", custody, master.chain_id, 3)
    await store.call(
        app.record_mint,
        ipo.id,
        reservation_id="r-1",
        tx_hash=minted["transactionHash"].to_0x_hex(),
        to=custody,
        custody=True,
    )
    await operator.transact(shares, "mint", fan.address, master.chain_id, 5)
    await operator.transact(shares, "mint", other, master.chain_id, 2)
    nft.wallets[FAN] = [fan.address.lower()]  # linked in any case: read as the chain writes it
    await (await nft.indexer()).catch_up()
    await nft.settled()
    c = nft.client
    url = f"/masters/{master.id}/shares"

    buyers = (await c.get("/user/holdings", headers=nft.headers(BUYER))).json()
    fans = (await c.get("/user/holdings", headers=nft.headers(FAN))).json()
    fans_view = await c.get(url, headers=nft.headers(FAN))
    artists = (await c.get(url, params={"limit": 2}, headers=nft.headers(ARTIST, "artist"))).json()
    rest = await c.get(
        url, params={"limit": 2, "cursor": artists["nextCursor"]}, headers=nft.headers(ARTIST)
    )
    admins = (await c.get(url, headers=nft.headers(ADMIN, "admin"))).json()

    assert [(h["masterId"], h["amount"], h["custody"]) for h in buyers["items"]] == [
        (str(master.id), 3, True)
    ]
    assert buyers["items"][0]["address"] == custody
    assert buyers["items"][0]["chainId"] == str(master.chain_id)
    assert [(h["address"], h["amount"], h["custody"]) for h in fans["items"]] == [
        (fan.address, 5, False)
    ]
    assert fans_view.status_code == 200, fans_view.text
    seen = fans_view.json()
    assert (seen["visibility"], seen["totalSupply"], seen["holders"]) == ("own", 10, 3)
    assert [(s["address"], s["amount"]) for s in seen["items"]] == [(fan.address, 5)]
    assert artists["visibility"] == "all" and artists["nextCursor"]
    every = artists["items"] + rest.json()["items"]
    assert rest.json()["nextCursor"] is None
    assert {(s["address"], s["amount"], s["custody"], s["accountId"]) for s in every} == {
        (custody, 3, True, None),  # many buyers' parts
        (fan.address, 5, False, FAN),  # a wallet auth knows is the fan's
        (other, 2, False, None),  # a wallet no account linked
    }
    assert admins["visibility"] == "all" and len(admins["items"]) == 3


async def test_shares_of_an_unknown_master_are_404_and_a_bad_cursor_400(nft: Served) -> None:
    unknown = uuid.uuid4()
    missing = await nft.client.get(f"/masters/{unknown}/shares", headers=nft.headers(FAN))
    bad = await nft.client.get(
        "/user/holdings", params={"cursor": "nope"}, headers=nft.headers(FAN)
    )
    empty = await nft.client.get("/user/holdings", headers=nft.headers(FAN))

    assert missing.status_code == 404, missing.text
    assert missing.json()["error"]["code"] == "MASTER_NOT_FOUND"
    assert missing.json()["error"]["details"]["masterId"] == str(unknown)
    assert bad.status_code == 400, bad.text
    assert empty.json() == {"items": [], "nextCursor": None}
