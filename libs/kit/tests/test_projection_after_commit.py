"""A projection's after-commit hook: what its handlers said they changed, heard once the page's
transaction committed (visible to every other connection) and before the runner's position
says the events are applied; never from a rebuild; a failing hook stops nothing."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

import asyncpg
import pytest
from audifi_kit.eventstore import EventStore
from audifi_kit.projections import ProjectionRunner, handles, rebuild
from kit_sample import Account, Balances, Bank


class Announcing(Balances):
    """`balances` whose handlers tell which account they changed."""

    name = "announcing"

    def __init__(self) -> None:
        self.heard: list[tuple[list[Hashable], int, dict[Any, int]]] = []
        self.runner: ProjectionRunner | None = None
        self.store: EventStore[Bank] | None = None
        self.fail = False

    @handles(Account.Opened)
    async def opened(self, conn: asyncpg.Connection, e: Any, n: object) -> None:
        await super().opened(conn, e, n)
        self.changed(conn, ("account", e.originator_id))

    @handles(Account.Credited)
    async def credited(self, conn: asyncpg.Connection, e: Any, n: object) -> None:
        await super().credited(conn, e, n)
        self.changed(conn, ("account", e.originator_id))
        self.changed(conn, "some credit")

    async def committed(self, changes: list[Hashable]) -> None:
        assert self.store is not None and self.runner is not None
        conn = await self.store.connect()  # another connection: what any reader sees now
        try:
            rows = await conn.fetch("SELECT id, balance FROM announcing.accounts")
        finally:
            await conn.close()
        self.heard.append((changes, self.runner.position, {r["id"]: r["balance"] for r in rows}))
        if self.fail:
            raise RuntimeError("the cache is down")


async def test_the_hook_hears_each_change_once_after_the_commit_and_before_the_position_moves(
    bank: EventStore[Bank],
) -> None:
    account = await bank.call(bank.app.open_account, "Ada")
    for _ in range(3):
        last = await bank.call(bank.app.credit, account, 5)
    projection = Announcing()
    runner = ProjectionRunner(bank, projection, page_size=100)
    projection.store, projection.runner = bank, runner
    await runner.start()
    try:
        await runner.wait(last)
        # One page, one transaction: each change once, in the order told.
        [(changes, position, seen)] = projection.heard
        assert changes == [("account", account), "some credit"]
        assert position < last  # heard before `wait` could return
        assert seen == {account: 15}  # committed: another connection reads it

        projection.fail = True  # a failing hook is logged; the view moves on
        more = await bank.call(bank.app.credit, account, 1)
        await runner.wait(more)
        assert projection.heard[-1][0] == [("account", account), "some credit"]
        projection.fail = False
        again = await bank.call(bank.app.credit, account, 1)
        await runner.wait(again)
        assert projection.heard[-1][2] == {account: 17}
    finally:
        await runner.stop()


async def test_a_rebuild_tells_nothing(bank: EventStore[Bank]) -> None:
    account = await bank.call(bank.app.open_account, "Ada")
    await bank.call(bank.app.credit, account, 5)
    projection = Announcing()
    await rebuild(bank, projection)
    assert projection.heard == []


async def test_a_failing_hook_is_logged(
    bank: EventStore[Bank], caplog: pytest.LogCaptureFixture
) -> None:
    account = await bank.call(bank.app.open_account, "Ada")
    projection = Announcing()
    projection.fail = True
    runner = ProjectionRunner(bank, projection, page_size=100)
    projection.store, projection.runner = bank, runner
    with caplog.at_level(logging.ERROR, logger="audifi_kit.projections"):
        await runner.start()
        try:
            position = await bank.call(bank.app.credit, account, 1)
            await runner.wait(position)
        finally:
            await runner.stop()
    assert "after-commit hook failed" in caplog.text
    assert runner.applied == 2
