"""Distributions declared, snapshotted and funded once (in memory: the application, the
distributions service and the distributor's twin)."""

from __future__ import annotations

import uuid

import pytest
from audifi_kit.errors import Forbidden, ValidationFailed
from audifi_kit.eventstore import DirectCalls
from audifi_nft.adapters.shares_memory import InMemoryDistributor, ProcessDied
from audifi_nft.bootstrap import in_memory
from audifi_nft.distributions import Distributions, Holders, TreasuryShort
from audifi_nft.domain.distribution import NothingToDistribute
from audifi_nft.domain.revenue import (
    Distribution,
    DistributionExists,
    DistributionNotFound,
    distribution_id_of,
)
from eth_utils import keccak, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from nft_support import ARTIST, T0, register

ADMIN = str(uuid.UUID(int=99))
A, B, C = (to_checksum_address(f"0x{n:040x}") for n in (0xA1, 0xB2, 0xC3))


class Snapshot:
    def __init__(self, holders: Holders) -> None:
        self.value = holders

    async def holders(self, master_id):  # type: ignore[no-untyped-def]
        return self.value

    async def owners(self, addresses):  # type: ignore[no-untyped-def]
        return {A: "fan-a"} if A in addresses else {}


def _setup(holders: Holders, treasury: int = 10**18):
    app = in_memory()
    master = register(app)
    distributor = InMemoryDistributor(treasury)
    service = Distributions(DirectCalls(app), Snapshot(holders), distributor, clock=lambda: T0)
    return app, master, distributor, service


def _declare(app, master, month="2026-11", total=100_000, bps=5_000, **kwargs):  # type: ignore[no-untyped-def]
    return app.declare_distribution(
        master.id,
        collection="master",
        month=month,
        total_revenue=total,
        bps=bps,
        sources=kwargs.pop("sources", [{"name": "streaming", "amount": total}]),
        actor_id=kwargs.pop("actor_id", ARTIST),
        actor_is_admin=kwargs.pop("actor_is_admin", False),
        now=T0,
    )


def _verify(proof: list[str], root: str, index: int, account: str, amount: int) -> bool:
    node = keccak(
        index.to_bytes(32, "big") + bytes.fromhex(account[2:]) + amount.to_bytes(32, "big")
    )
    for sibling in proof:
        other = bytes.fromhex(sibling[2:])
        node = keccak(node + other) if node < other else keccak(other + node)
    return "0x" + node.hex() == root


async def test_a_month_of_revenue_is_shared_pro_rata_and_funded_once() -> None:
    holders = Holders(block=42, wallets={A: 3, B: 1}, custody={"fan-c": 1})
    app, master, distributor, service = _setup(holders)
    d = _declare(app, master, total=100_001, bps=5_000)  # $1,000.01; half to holders
    assert d.distribution_amount == 50_000  # cents, rounded down

    d = await service.trigger(d.id)
    per_share = 50_000 * 10_000 // 5  # base units (6 decimals) per share
    assert d.status == "funded" and d.block == 42 and d.per_share == per_share
    assert d.wallet_amounts == {A: 3 * per_share, B: per_share}
    assert d.custody_amounts == {"fan-c": per_share}
    assert d.remainder == 0 and d.funded_total == 4 * per_share  # custody's stays in treasury
    assert distributor.created == [(d.root, 4 * per_share, d.expires_at)]
    owed = [
        (e.account_id, e.amount, e.wallet)
        for e in app.events.get(d.id)
        if isinstance(e, Distribution.Owed)
    ]  # told: the custody account, and the account that linked wallet A (B linked by none)
    assert owed == [("fan-c", per_share, None), ("fan-a", 3 * per_share, A)]
    for index, account, amount in d.leaves:
        assert _verify(d.tree().proof(account), d.root, index, account, amount)

    assert (await service.trigger(d.id)).version == d.version  # again: nothing more
    assert len(distributor.created) == 1


async def test_a_funding_sent_but_not_recorded_is_found_not_sent_again() -> None:
    app, master, distributor, service = _setup(Holders(7, {A: 1, B: 2}, {}))
    d = _declare(app, master)
    distributor.lose_next = True
    with pytest.raises(ProcessDied):
        await service.trigger(d.id)
    assert app.distribution(d.id).status == "declared"

    d = await service.trigger(d.id)
    assert (d.status, d.chain_distribution_id, d.funding_tx) == ("funded", 0, None)
    assert len(distributor.created) == 1


async def test_every_holder_in_custody_needs_nothing_on_chain() -> None:
    app, master, distributor, service = _setup(Holders(7, {}, {"fan-a": 2, "fan-b": 1}))
    d = await service.trigger(_declare(app, master, total=999, bps=10_000).id)
    assert d.status == "funded" and d.chain_distribution_id is None and d.root is None
    assert d.custody_amounts == {"fan-a": 6_660_000, "fan-b": 3_330_000}
    assert d.remainder == 9_990_000 - 9_990_000 and distributor.created == []


async def test_a_treasury_short_of_the_amount_funds_nothing() -> None:
    app, master, distributor, service = _setup(Holders(7, {A: 1}, {}), treasury=10)
    d = _declare(app, master)
    with pytest.raises(TreasuryShort):
        await service.trigger(d.id)
    assert app.distribution(d.id).status == "declared" and distributor.created == []


async def test_nobody_holding_shares_is_refused() -> None:
    app, master, _, service = _setup(Holders(7, {}, {}))
    d = _declare(app, master)
    with pytest.raises(NothingToDistribute):
        await service.trigger(d.id)


def test_one_distribution_per_collection_and_month_and_bad_input_changes_nothing() -> None:
    app, master, _, _ = _setup(Holders(7, {A: 1}, {}))
    _declare(app, master, month="2026-11")
    with pytest.raises(DistributionExists):
        _declare(app, master, month="2026-11")
    assert _declare(app, master, month="2026-12").month == "2026-12"
    for bad in (
        {"month": "2026-13"},
        {"month": "2026/11"},
        {"month": "26-11"},
        {"total": -1},
        {"bps": 0},
        {"bps": 10_001},
        {"total": 100, "sources": [{"name": "streaming", "amount": 99}]},
        {"sources": []},
        {"sources": [{"name": "", "amount": 100_000}]},
    ):
        with pytest.raises(ValidationFailed):
            _declare(app, master, **({"month": "2027-01"} | bad))
    with pytest.raises(Forbidden):
        _declare(app, master, month="2027-02", actor_id=str(uuid.UUID(int=5)))
    assert _declare(app, master, month="2027-02", actor_id=ADMIN, actor_is_admin=True)
    with pytest.raises(DistributionNotFound):  # none of the refused ones was recorded
        app.distribution(distribution_id_of(master.id, "2027-01"))


@settings(max_examples=60, deadline=None)
@given(
    total=st.integers(min_value=1, max_value=10**9),
    bps=st.integers(min_value=1, max_value=10_000),
    wallets=st.lists(st.integers(min_value=0, max_value=10_000), min_size=0, max_size=8),
    custody=st.lists(st.integers(min_value=0, max_value=10_000), min_size=0, max_size=4),
)
def test_what_is_funded_owed_and_kept_adds_up_to_the_distribution(
    total, bps, wallets, custody
) -> None:
    """Conservation: claims on chain + custody amounts + remainder = the distribution, to
    the base unit, and nobody is owed more than their pro rata share."""
    held_w = {to_checksum_address(f"0x{i + 1:040x}"): n for i, n in enumerate(wallets)}
    held_c = {f"fan-{i}": n for i, n in enumerate(custody)}
    app = in_memory()
    master = register(app)
    try:
        d = _declare(app, master, total=total, bps=bps)
    except NothingToDistribute:
        assert total * bps // 10_000 == 0
        return
    supply = sum(held_w.values()) + sum(held_c.values())
    if supply == 0:
        with pytest.raises(NothingToDistribute):
            app.snapshot_distribution(d.id, block=1, wallets=held_w, custody=held_c, now=T0)
        return
    d = app.snapshot_distribution(d.id, block=1, wallets=held_w, custody=held_c, now=T0)
    owed = d.funded_total + sum(d.custody_amounts.values())
    assert owed + d.remainder == d.amount_base_units
    assert 0 <= d.remainder < max(1, sum(1 for n in [*wallets, *custody] if n > 0))
    for address, amount in d.wallet_amounts.items():
        assert amount == d.amount_base_units * held_w[address] // supply


async def test_unclaimed_amounts_go_back_to_the_treasury_once_claims_expire() -> None:
    from datetime import timedelta

    from audifi_nft.domain.revenue import DistributionStateConflict

    app, master, distributor, service = _setup(Holders(7, {A: 1, B: 3}, {}))
    d = await service.trigger(_declare(app, master).id)
    distributor.claimed[d.chain_distribution_id] = d.wallet_amounts[A]  # A claimed, B did not
    treasury = distributor.treasury
    assert (await service.sweep_expired(d.id)).status == "funded"  # not expired: nothing

    service.clock = lambda: d.expires_at + timedelta(seconds=1)
    swept = await service.sweep_expired(d.id)
    assert (swept.status, swept.swept_amount) == ("swept", d.wallet_amounts[B])
    assert distributor.treasury == treasury + d.wallet_amounts[B]
    assert (await service.sweep_expired(d.id)).version == swept.version  # once
    with pytest.raises(DistributionStateConflict):
        app.sweep_distribution(
            _declare(app, master, month="2027-03").id, amount=0, tx_hash=None, now=T0
        )
