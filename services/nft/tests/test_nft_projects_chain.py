"""Coda projects funded on chain, on the in-memory application: the escrow steps nft's
operator takes (against a fake MilestoneEscrow that keeps the contract's rules) and the
fundings and refunds the indexer brings in as logs. What the project says always matches what
the contract holds; a property test drives random stories, reorganisations included."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from audifi_kit.chain.indexer import ChainLog
from audifi_kit.errors import DomainError, ValidationFailed
from audifi_nft.bootstrap import in_memory
from audifi_nft.domain.project import (
    CANCEL,
    CANCELLED,
    CREATE,
    FUNDING,
    IN_PROGRESS,
    RELEASE,
    RELEASED,
    ChainOutOfStep,
    ProjectStateConflict,
    WrongFundingMethod,
    chain_investment_id,
)
from audifi_nft.escrow import ChainTx, Escrow, EscrowCreated
from audifi_nft.holdings import EscrowIndexHandler
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from nft_support import ARTIST, T0

ADMIN = str(uuid.UUID(int=2))
ARTIST_WALLET = "0x" + "aa" * 20
FUNDERS = {str(uuid.UUID(int=100 + i)): "0x" + f"{i + 1:02x}" * 20 for i in range(3)}
USDC = 10**6
ESCROW_ADDRESS = "0x" + "ee" * 20
DEADLINE = T0 + timedelta(days=30)


class FakeEscrow:
    """MilestoneEscrow's rules in Python, as the `EscrowChain` port and a log source."""

    chain_id = 31337
    escrow_address = ESCROW_ADDRESS
    token_address = "0x" + "dd" * 20

    def __init__(self) -> None:
        self.projects: list[dict[str, Any]] = []
        self.contributions: dict[tuple[int, str], int] = {}
        self.logs: list[ChainLog] = []
        self.sent: list[str] = []  # the operator's transactions, in order
        self.lose_next = False  # the next step is done on chain, then "lost" (a crash)

    async def start(self) -> None:
        return None

    def _tx(self, what: str) -> str:
        self.sent.append(what)
        if self.lose_next:
            self.lose_next = False
            raise ConnectionError("lost after sending")
        return "0x" + f"{len(self.sent):064x}"

    async def create(
        self, *, recipient: str, payouts: list[int], is_taken: Callable[[int], Awaitable[bool]]
    ) -> EscrowCreated:
        for i in range(len(self.projects) - 1, -1, -1):
            p = self.projects[i]
            if p["recipient"] == recipient and p["payouts"] == payouts and not await is_taken(i):
                return EscrowCreated(chain_project_id=i, tx_hash=None)
        self.projects.append(
            {
                "recipient": recipient,
                "payouts": payouts,
                "goal": sum(payouts),
                "funded": 0,
                "released": 0,
                "next": 0,
                "status": "active",
                "remaining": 0,
            }
        )
        return EscrowCreated(len(self.projects) - 1, self._tx(f"create {len(self.projects) - 1}"))

    async def release(self, chain_project_id: int, index: int) -> str | None:
        p = self.projects[chain_project_id]
        if p["next"] > index:
            return None
        assert p["status"] == "active" and index == p["next"], "the contract reverts"
        amount = p["payouts"][index]
        assert p["funded"] - p["released"] >= amount, "InsufficientFunds"
        p["released"] += amount
        p["next"] += 1
        if p["next"] == len(p["payouts"]):
            p["status"] = "completed"
        return self._tx(f"release {chain_project_id}/{index}")

    async def cancel(self, chain_project_id: int) -> str | None:
        p = self.projects[chain_project_id]
        if p["status"] == "cancelled":
            return None
        assert p["status"] == "active", "ProjectNotActive"
        p["status"] = "cancelled"
        p["remaining"] = p["funded"] - p["released"]
        return self._tx(f"cancel {chain_project_id}")

    def funding_transactions(self, chain_project_id: int, amount: int) -> list[ChainTx]:
        return []

    # -- what fans do: the contract's rules, and the log it emits --------------------------

    def fund(self, chain_project_id: int, funder: str, amount: int) -> ChainLog | None:
        p = self.projects[chain_project_id]
        if p["status"] != "active" or amount <= 0 or p["funded"] + amount > p["goal"]:
            return None  # reverted
        p["funded"] += amount
        key = (chain_project_id, funder)
        self.contributions[key] = self.contributions.get(key, 0) + amount
        return self._log("ProjectFunded", chain_project_id, funder, amount)

    def refund(self, chain_project_id: int, funder: str) -> ChainLog | None:
        p = self.projects[chain_project_id]
        contribution = self.contributions.get((chain_project_id, funder), 0)
        if p["status"] != "cancelled" or contribution == 0:
            return None
        self.contributions[(chain_project_id, funder)] = 0
        amount = contribution * p["remaining"] // p["funded"]
        return self._log("Refunded", chain_project_id, funder, amount)

    def _log(self, event: str, chain_project_id: int, funder: str, amount: int) -> ChainLog:
        n = len(self.logs)
        log = ChainLog(
            address=ESCROW_ADDRESS,
            block_number=100 + n,
            block_hash="0x" + f"{n:064x}",
            tx_hash="0x" + f"{10_000 + n:064x}",
            log_index=0,
            topics=(),
            data="0x",
            event=event,
            args={"projectId": chain_project_id, "funder": funder, "amount": amount},
        )
        self.logs.append(log)
        return log


class SyncStore:
    """The `Store` port over the in-memory application (no worker thread)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)


def _create(app: Any, *, payouts: tuple[int, ...] = (40 * USDC, 60 * USDC), **kw: Any) -> Any:
    return app.create_project(
        project_id=kw.pop("project_id", uuid.uuid4()),
        artist_id=ARTIST,
        actor_id=ARTIST,
        actor_is_admin=False,
        now=T0,
        title="Second Light",
        description="An album, funded on chain",
        funding_goal=sum(payouts),
        currency=kw.pop("currency", "USDC"),
        funding_deadline=DEADLINE,
        release_date=None,
        share_bps=2_000,
        milestones=[{"name": f"Step {i + 1}", "payout_amount": p} for i, p in enumerate(payouts)],
        funding_method="chain",
        chain_recipient=kw.pop("chain_recipient", ARTIST_WALLET),
    )


def _index(app: Any, log: ChainLog | None, *, revert: bool = False) -> None:
    """What nft's indexer does with one escrow log: the handler's changes, saved."""
    assert log is not None, "the contract reverted"
    handler = EscrowIndexHandler()
    changed = handler.revert(app, log) if revert else handler.apply(app, log)
    if changed:
        app.save(*changed)


def test_a_chain_project_needs_usdc_and_the_artists_wallet() -> None:
    app = in_memory()
    with pytest.raises(ValidationFailed) as usd:
        _create(app, currency="usd")
    assert usd.value.details["fields"][0]["field"] == "currency"
    with pytest.raises(ValidationFailed) as walletless:
        _create(app, chain_recipient=None)
    assert walletless.value.details["fields"][0]["field"] == "fundingMethod"
    project = _create(app)
    assert (project.funding_method, project.currency, project.onchain_reference) == (
        "chain",
        "USDC",
        None,
    )
    assert project.escrow_work() == (CREATE, None)
    assert project.minimum_investment == USDC  # one USDC: 10**6 base units


def test_fans_fund_on_chain_milestones_release_there_and_nothing_happens_twice() -> None:
    app, chain = in_memory(), FakeEscrow()
    escrow = Escrow(SyncStore(app), chain, clock=lambda: T0)
    project = _create(app)
    with pytest.raises(WrongFundingMethod):  # a card reservation of a chain project
        app.invest(
            project.id, investment_id="x", account_id=ADMIN, amount=USDC, method="card", now=T0
        )

    project = asyncio.run(escrow.drive(project.id))
    assert project.chain_project_id == 0 and chain.sent == ["create 0"]
    assert project.onchain_reference == f"eip155:31337:{ESCROW_ADDRESS}/0"
    assert project.escrow_work() is None

    fan, wallet = next(iter(FUNDERS.items()))
    app.register_chain_funder(project.id, address=wallet, account_id=fan, now=T0)
    first = chain.fund(0, wallet, 30 * USDC)
    _index(app, first)
    _index(app, first)  # the same log again: nothing
    for other_fan, other_wallet in list(FUNDERS.items())[1:]:
        app.register_chain_funder(project.id, address=other_wallet, account_id=other_fan, now=T0)
        _index(app, chain.fund(0, other_wallet, 35 * USDC))
    project = app.project(project.id)
    assert (project.status, project.raised, project.escrowed) == (
        IN_PROGRESS,
        100 * USDC,
        100 * USDC,
    )
    mine = project.investment(chain_investment_id(project.id, wallet))
    assert (mine["account_id"], mine["amount"], mine["method"]) == (fan, 30 * USDC, "chain")
    assert chain.fund(0, wallet, 1) is None  # the contract takes nothing past the goal

    app.submit_milestone_proof(
        project.id,
        index=0,
        proof={"url": "https://proof.example/1"},
        actor_id=ARTIST,
        actor_is_admin=False,
        now=T0,
    )
    app.approve_milestone(project.id, index=0, actor_id=ADMIN, actor_is_admin=True, now=T0)
    assert app.project(project.id).escrow_work() == (RELEASE, 0)
    chain.lose_next = True  # released on chain, then lost before it was recorded
    with pytest.raises(ConnectionError):
        asyncio.run(escrow.drive(project.id))
    project = asyncio.run(escrow.drive(project.id))  # found on chain: recorded, not re-sent
    assert chain.sent == ["create 0", "release 0/0"]
    assert (project.chain_released, project.milestones[0]["release_tx"]) == (1, None)
    assert chain.projects[0]["released"] == project.released == 40 * USDC

    with pytest.raises(ProjectStateConflict):  # the second milestone is not released yet
        app.finalize_project(project.id, actor_id=ARTIST, actor_is_admin=False, now=T0)
    app.submit_milestone_proof(
        project.id,
        index=1,
        proof={"url": "https://proof.example/2"},
        actor_id=ARTIST,
        actor_is_admin=False,
        now=T0,
    )
    app.approve_milestone(project.id, index=1, actor_id=ADMIN, actor_is_admin=True, now=T0)
    with pytest.raises(ProjectStateConflict):  # approved, not yet released on chain
        app.finalize_project(project.id, actor_id=ARTIST, actor_is_admin=False, now=T0)
    project = asyncio.run(escrow.drive(project.id))
    assert project.milestones[1]["release_tx"] == "0x" + f"{3:064x}"
    app.finalize_project(project.id, actor_id=ARTIST, actor_is_admin=False, now=T0)
    assert app.project(project.id).status == RELEASED
    assert chain.projects[0]["status"] == "completed"
    with pytest.raises(WrongFundingMethod):  # no USDC in payment's ledger: refused, for now
        app.book_project_revenue(
            project.id, booking_id="s1", amount=USDC, actor_id=ADMIN, actor_is_admin=True, now=T0
        )


def test_a_cancelled_chain_project_is_cancelled_on_chain_and_funders_take_their_refunds() -> None:
    app, chain = in_memory(), FakeEscrow()
    escrow = Escrow(SyncStore(app), chain, clock=lambda: T0)
    project = asyncio.run(escrow.drive(_create(app, payouts=(50 * USDC, 50 * USDC)).id))
    wallets = list(FUNDERS.values())
    for fan, wallet in FUNDERS.items():
        app.register_chain_funder(project.id, address=wallet, account_id=fan, now=T0)
    _index(app, chain.fund(0, wallets[0], 30 * USDC))
    _index(app, chain.fund(0, wallets[1], 20 * USDC))

    assert app.end_project_if_due(project.id, now=DEADLINE)  # short of the goal
    project = app.project(project.id)
    assert (project.status, project.escrow_work()) == (CANCELLED, (CANCEL, None))
    # A fan who funded just before the chain heard of the deadline: still the contract's.
    _index(app, chain.fund(0, wallets[2], 7 * USDC))
    project = asyncio.run(escrow.drive(project.id))
    assert project.chain_cancelled and chain.projects[0]["remaining"] == 57 * USDC
    assert project.escrow_work() is None

    for wallet in wallets:
        _index(app, chain.refund(0, wallet))
    project = app.project(project.id)
    assert (project.raised, project.refunded, project.escrowed) == (57 * USDC, 57 * USDC, 0)
    third = project.investment(chain_investment_id(project.id, wallets[2]))
    assert (third["refunded"], third["account_id"]) == (7 * USDC, list(FUNDERS)[2])
    assert chain.refund(0, wallets[0]) is None  # a refund is taken once


def test_a_funding_whose_block_left_the_chain_is_taken_back_with_the_goal() -> None:
    app, chain = in_memory(), FakeEscrow()
    escrow = Escrow(SyncStore(app), chain, clock=lambda: T0)
    project = asyncio.run(escrow.drive(_create(app, payouts=(10 * USDC,)).id))
    wallet = next(iter(FUNDERS.values()))
    log = chain.fund(0, wallet, 10 * USDC)
    _index(app, log)
    assert app.project(project.id).status == IN_PROGRESS
    _index(app, log, revert=True)
    project = app.project(project.id)
    assert (project.status, project.raised) == (FUNDING, 0)
    assert project.investment(chain_investment_id(project.id, wallet))["state"] == "lapsed"
    _index(app, log)  # mined again in the new chain
    assert app.project(project.id).status == IN_PROGRESS


def test_a_log_of_an_escrow_project_that_is_not_ours_is_passed_over() -> None:
    app, chain = in_memory(), FakeEscrow()
    chain.projects.append({"goal": 5, "funded": 0, "status": "active", "released": 0})
    _index(app, chain.fund(0, "0x" + "99" * 20, 5))  # no error, nothing recorded
    assert EscrowIndexHandler().apply(app, chain.logs[0]) == []


def test_a_refund_log_before_the_project_was_cancelled_stops_the_indexer() -> None:
    app, chain = in_memory(), FakeEscrow()
    escrow = Escrow(SyncStore(app), chain, clock=lambda: T0)
    project = asyncio.run(escrow.drive(_create(app).id))
    wallet = next(iter(FUNDERS.values()))
    _index(app, chain.fund(0, wallet, 5 * USDC))
    chain.projects[0]["status"] = "cancelled"  # a chain that disagrees with the project
    chain.projects[0]["remaining"] = 5 * USDC
    with pytest.raises(ChainOutOfStep):
        _index(app, chain.refund(0, wallet))
    assert app.project(project.id).refunded == 0


# -- the property: whatever happens, the project is what the contract holds ----------------


class ChainProjectMachine(RuleBasedStateMachine):
    @initialize(
        payouts=st.lists(st.integers(USDC // 3, 50 * USDC), min_size=1, max_size=3).filter(
            lambda p: sum(p) >= USDC  # a goal of at least one USDC
        )
    )
    def create(self, payouts: list[int]) -> None:
        self.app, self.chain = in_memory(), FakeEscrow()
        self.escrow = Escrow(SyncStore(self.app), self.chain, clock=lambda: T0)
        self.project_id = _create(self.app, payouts=tuple(payouts)).id
        self.wallets = list(FUNDERS.values())
        for fan, wallet in FUNDERS.items():
            self.app.register_chain_funder(self.project_id, address=wallet, account_id=fan, now=T0)
        self.applied: list[ChainLog] = []  # indexed, newest last (a reorg takes the last)
        self.pending: list[ChainLog] = []  # mined, not indexed yet
        self.drive()

    @property
    def project(self) -> Any:
        return self.app.project(self.project_id)

    def drive(self) -> None:
        asyncio.run(self.escrow.drive(self.project_id))

    @rule(funder=st.integers(0, 2), amount=st.integers(1, 60 * USDC))
    def fund(self, funder: int, amount: int) -> None:
        log = self.chain.fund(0, self.wallets[funder], amount)
        if log is not None:
            self.pending.append(log)

    @rule(funder=st.integers(0, 2))
    def refund(self, funder: int) -> None:
        log = self.chain.refund(0, self.wallets[funder])
        if log is not None:
            self.pending.append(log)

    @precondition(lambda self: self.pending)
    @rule()
    def index(self) -> None:
        log = self.pending.pop(0)
        _index(self.app, log)
        self.applied.append(log)

    @precondition(lambda self: self.applied and self.applied[-1].event == "ProjectFunded")
    @rule()
    def reorganise(self) -> None:
        """The last indexed funding's block left the chain: taken back, when the project
        can still take it back (the chain then takes it back too)."""
        log = self.applied[-1]
        try:
            _index(self.app, log, revert=True)
        except ChainOutOfStep:
            return  # the project moved on: the indexer stops on it (and the test goes on)
        self.applied.pop()
        self.pending.insert(0, log)  # mined again in the new chain

    @rule(index=st.integers(0, 2))
    def prove_and_approve(self, index: int) -> None:
        try:
            self.app.submit_milestone_proof(
                self.project_id,
                index=index,
                proof={"url": "https://proof.example"},
                actor_id=ARTIST,
                actor_is_admin=False,
                now=T0,
            )
            self.app.approve_milestone(
                self.project_id, index=index, actor_id=ADMIN, actor_is_admin=True, now=T0
            )
        except DomainError:
            pass

    @rule()
    def cancel(self) -> None:
        try:
            self.app.cancel_project(
                self.project_id, reason="stopped", actor_id=ADMIN, actor_is_admin=True, now=T0
            )
        except DomainError:
            pass

    @rule()
    def deadline(self) -> None:
        self.app.end_project_if_due(self.project_id, now=DEADLINE)

    @rule()
    def operator(self) -> None:
        self.drive()

    @invariant()
    def mirrors_the_contract(self) -> None:
        p, c = self.project, self.chain.projects[0]
        indexed = [log for log in self.applied]
        funded = sum(log.args["amount"] for log in indexed if log.event == "ProjectFunded")
        refunded = sum(log.args["amount"] for log in indexed if log.event == "Refunded")
        assert p.raised == funded <= c["funded"] <= p.funding_goal
        assert p.refunded == refunded
        # Conserved: what came in is released, refunded or still in escrow, never negative.
        assert p.raised == p.released + p.refunded + p.remainder + p.escrowed
        assert p.escrowed >= 0 and p.remainder == 0
        # The chain released exactly the approved milestones it was told of, in order.
        released_on_chain = sum(m["payout_amount"] for m in p.milestones[: p.chain_released])
        assert c["released"] == released_on_chain and c["next"] == p.chain_released
        assert p.chain_released <= p.next_milestone
        if p.status == IN_PROGRESS or p.status == RELEASED:
            assert p.raised == p.funding_goal
        if p.chain_cancelled:
            assert c["status"] == "cancelled" and p.status == CANCELLED

    def teardown(self) -> None:
        if not hasattr(self, "project_id"):
            return
        # Once the operator caught up and every log is indexed, the two agree exactly.
        self.drive()
        while self.pending:
            self.index()
        p, c = self.project, self.chain.projects[0]
        assert p.escrow_work() is None
        assert p.raised == c["funded"]
        if c["status"] == "cancelled":
            for wallet in self.wallets:
                log = self.chain.refund(0, wallet)
                if log is not None:
                    _index(self.app, log)
            p = self.project
            # Every funder got contribution x remaining // funded; the dust stays on chain.
            assert 0 <= p.escrowed < len(self.wallets)
            assert p.escrowed == c["remaining"] - p.refunded


TestChainProjectMachine = ChainProjectMachine.TestCase
TestChainProjectMachine.settings = settings(
    max_examples=int(os.environ.get("AUDIFI_FUZZ_EXAMPLES", "60")),
    stateful_step_count=30,
    deadline=None,
)
