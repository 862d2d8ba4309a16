"""Launching an IPO opens it on MasterShares first, then records it open (in memory)."""

from __future__ import annotations

import pytest
from audifi_kit.errors import BlockchainError
from audifi_kit.eventstore import DirectCalls
from audifi_nft.adapters.shares_memory import InMemoryShares
from audifi_nft.bootstrap import in_memory
from audifi_nft.ipos import Ipos
from nft_support import ARTIST, RECEIVER, T0, register, terms


def _configured(**overrides):
    app = in_memory()
    master = register(app)
    ipo = app.configure_ipo(
        master_id=master.id, actor_id=ARTIST, actor_is_admin=False, **terms(**overrides)
    )
    shares = InMemoryShares()
    return app, master, ipo, shares, Ipos(DirectCalls(app), shares, clock=lambda: T0)


async def test_launch_opens_the_cap_and_royalty_on_chain_then_records_the_ipo_open() -> None:
    _app, master, ipo, shares, ipos = _configured(cap=250, royalty_bps=700)
    assert (await ipos.launch(ipo.id)).status == "open"
    assert shares.transactions == [("openIpo", (master.id.int, 250, RECEIVER, 700))]
    assert await shares.cap_of(master.id.int) == 250
    assert (await ipos.launch(ipo.id)).status == "open"  # again: nothing more on chain
    assert len(shares.transactions) == 1


async def test_a_launch_retried_after_the_chain_opened_it_does_not_open_it_twice() -> None:
    app, master, ipo, shares, ipos = _configured()
    await shares.open_ipo(master.id.int, 100, RECEIVER, 500)  # then the service stopped
    assert app.ipo(ipo.id).status == "configured"
    assert (await ipos.launch(ipo.id)).status == "open"
    assert len(shares.transactions) == 1


async def test_a_chain_failure_leaves_the_ipo_configured() -> None:
    app, _, ipo, shares, ipos = _configured()
    shares.fail_next = "out of gas"
    with pytest.raises(BlockchainError):
        await ipos.launch(ipo.id)
    assert app.ipo(ipo.id).status == "configured"
    assert (await ipos.launch(ipo.id)).status == "open"
