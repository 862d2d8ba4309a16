"""Launching an IPO opens it on MasterShares first, then records it open (in memory)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from audifi_kit.errors import BlockchainError
from audifi_kit.eventstore import DirectCalls, open_event_store
from audifi_kit.settings import Settings
from audifi_kit.testing import drop_databases
from audifi_nft.adapters.shares_memory import InMemoryShares
from audifi_nft.application import NftApplication
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


async def test_launchers_racing_for_one_ipo_all_find_it_open(
    postgres_url: str, tmp_path: Path
) -> None:
    """The route that configured an IPO, the IPO clock and replicas may launch it at once: on
    PostgreSQL, where their saves race, each answers the open IPO and it opens once."""
    prefix = f"audifi_nl{uuid.uuid4().hex[:8]}_"
    settings = Settings(database_url=postgres_url, db_prefix=prefix, var_dir=tmp_path, pool_size=6)
    store = await open_event_store("nft", NftApplication, settings)
    try:
        ipo = await store.call(
            lambda: store.app.configure_ipo(
                master_id=register(store.app).id,
                actor_id=ARTIST,
                actor_is_admin=False,
                **terms(),
            )
        )
        shares = InMemoryShares()
        launchers = [Ipos(store, shares, clock=lambda: T0) for _ in range(6)]
        opened = await asyncio.gather(*(launcher.launch(ipo.id) for launcher in launchers))
        assert {i.status for i in opened} == {"open"}
        assert [a for a, _ in shares.transactions] == ["openIpo"]
        launched = [e for e in store.app.events.get(ipo.id) if type(e).__name__ == "Launched"]
        assert len(launched) == 1
    finally:
        store.close()
        await drop_databases(postgres_url, prefix)
