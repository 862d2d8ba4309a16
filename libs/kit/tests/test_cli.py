"""The operator's `audifi` command, run as its own process against a service's database."""

from __future__ import annotations

import json

import asyncpg
from audifi_kit.bus.rabbitmq import RabbitBus
from audifi_kit.eventstore import EventStore
from audifi_kit.inbox import InboxWorker
from audifi_kit.projections import ProjectionRunner
from audifi_kit.settings import Settings
from flow_support import delete_queues, eventually, ledger_total, run_cli
from kit_sample import Balances, Bank, ledger_consumer


async def view_rows(bank: EventStore[Bank]) -> list[tuple]:
    conn = await bank.connect()
    try:
        return [tuple(r) for r in await conn.fetch("SELECT * FROM balances.accounts ORDER BY id")]
    finally:
        await conn.close()


async def test_replay_rebuilds_the_view_from_the_log(
    bank: EventStore[Bank], settings: Settings
) -> None:
    runner = ProjectionRunner(bank, Balances())
    await runner.start()
    account_id = await bank.call(bank.app.open_account, "Ada")
    for amount in (10, 20, 30):
        last = await bank.call(bank.app.credit, account_id, amount)
    await runner.wait(last)
    await runner.stop()
    conn = await bank.connect()
    try:
        await conn.execute("DELETE FROM balances.accounts")  # the view is lost
    finally:
        await conn.close()

    result = run_cli(settings, "replay", "sample", "balances")

    assert result.returncode == 0, result.stderr
    assert f"rebuilt and swapped in at position {last}" in result.stdout
    assert await view_rows(bank) == [(account_id, "Ada", 60, 4)]


async def test_replay_names_an_unknown_projection(
    bank: EventStore[Bank], settings: Settings
) -> None:
    result = run_cli(settings, "replay", "sample", "nope")
    assert result.returncode == 2
    assert "has no projection 'nope'" in result.stdout
    assert "balances" in result.stdout


async def test_history_prints_events_and_the_state_at_a_version(
    bank: EventStore[Bank], settings: Settings
) -> None:
    account_id = await bank.call(bank.app.open_account, "Ada")
    await bank.call(bank.app.credit, account_id, 10)
    await bank.call(bank.app.credit, account_id, 5)

    latest = run_cli(settings, "history", "sample", str(account_id))
    at_two = run_cli(settings, "history", "sample", str(account_id), "--version", "2")

    assert latest.returncode == 0, latest.stderr
    for name in ("Opened", "Credited"):
        assert name in latest.stdout
    assert '"balance": 15' in latest.stdout
    assert "state at version 2" in at_two.stdout
    assert '"balance": 10' in at_two.stdout


async def test_history_of_an_unknown_aggregate_says_so(
    bank: EventStore[Bank], settings: Settings
) -> None:
    result = run_cli(settings, "history", "sample", "00000000-0000-0000-0000-000000000001")
    assert result.returncode == 2
    assert "no aggregate" in result.stdout


async def test_events_tail_prints_the_log_as_json_lines(
    bank: EventStore[Bank], settings: Settings
) -> None:
    account_id = await bank.call(bank.app.open_account, "Ada")
    await bank.call(bank.app.credit, account_id, 10)

    result = run_cli(settings, "events", "tail", "sample", "--from", "0", "--no-follow")

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(x["id"], x["event"].rsplit(".", 1)[-1], x["aggregate"]) for x in lines] == [
        (1, "Opened", str(account_id)),
        (2, "Credited", str(account_id)),
    ]
    assert lines[1]["data"]["amount"] == 10


async def test_republish_to_one_queue_is_deduplicated_by_its_consumer(
    bank: EventStore[Bank],
    settings: Settings,
    ledger_pool: asyncpg.Pool,
    amqp_url: str,
    unique_name: str,
) -> None:
    bus = RabbitBus(amqp_url)
    await bus.connect()
    consumer = ledger_consumer(f"replayed-{unique_name}")
    worker = InboxWorker(consumer, bus, ledger_pool)
    await worker.start()
    try:
        account_id = await bank.call(bank.app.open_account, "Ada")
        await bank.call(bank.app.credit, account_id, 10)
        await bank.call(bank.app.credit, account_id, 20)

        first = run_cli(settings, "republish", "sample", "--from", "1", "--queue", consumer.name)
        assert first.returncode == 0, first.stderr
        assert "republished 3 message(s)" in first.stdout
        await eventually(lambda: _equals(ledger_pool, account_id, (30, 2)))

        again = run_cli(
            settings, "republish", "sample", "--from", "3", "--to", "3", "--queue", consumer.name
        )
        assert "republished 1 message(s)" in again.stdout
        await eventually(lambda: _true(worker.duplicates == 1))
        assert await ledger_total(ledger_pool, account_id) == (30, 2)
    finally:
        await worker.stop()
        await bus.close()
        await delete_queues(amqp_url, consumer.name)


async def test_bus_commands_explain_that_they_need_the_distributed_bus(settings: Settings) -> None:
    result = run_cli(settings, "dlq", "list", "ledger.anything", amqp_url="")
    assert result.returncode == 2
    assert "AMQP_URL is not set" in result.stdout


async def _equals(pool: asyncpg.Pool, account_id, expected) -> bool:
    return await ledger_total(pool, account_id) == expected


async def _true(value: bool) -> bool:
    return value


async def test_the_cli_finds_the_embedded_database_without_database_url(tmp_path) -> None:
    """`make run`'s mode: no DATABASE_URL, the embedded server under AUDIFI_VAR_DIR."""
    import asyncio
    import os
    import subprocess
    import sys

    from audifi_kit.eventstore import open_event_store
    from audifi_kit.postgres import stop_embedded_server
    from flow_support import TESTS_DIR

    embedded = Settings(var_dir=tmp_path / "var")
    store = await open_event_store("sample", Bank, embedded)
    try:
        account_id = await store.call(store.app.open_account, "Ada")
        await store.call(store.app.credit, account_id, 7)
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AMQP_URL")}
        env |= {
            "AUDIFI_VAR_DIR": str(embedded.var_dir),
            "AUDIFI_SERVICE_SPECS": "kit_sample:spec",
            "PYTHONPATH": str(TESTS_DIR),
            "COLUMNS": "200",
        }
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "audifi_kit.cli", "history", "sample", str(account_id)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert '"balance": 7' in result.stdout
    finally:
        store.close()
        stop_embedded_server(embedded.var_dir)
