"""The operator's `audifi` command, run as its own process against a service's database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from uuid import UUID

import asyncpg
from audifi_kit.bus.rabbitmq import RabbitBus
from audifi_kit.eventstore import EventStore
from audifi_kit.inbox import InboxWorker
from audifi_kit.projections import ProjectionRunner, list_parked
from audifi_kit.settings import Settings
from audifi_kit.testing import eventually
from flow_support import TESTS_DIR, delete_queues, ledger_total, run_cli
from kit_sample import Balances, Bank, ledger_consumer
from parking_sample import POISON, rename


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
    credited = await bank.call(bank.app.credit, account_id, 10)

    result = run_cli(settings, "events", "tail", "sample", "--from", "0", "--no-follow")

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(x["event"].rsplit(".", 1)[-1], x["aggregate"]) for x in lines] == [
        ("Opened", str(account_id)),
        ("Credited", str(account_id)),
    ]
    assert lines[0]["id"] < lines[1]["id"] == credited  # sparse ids, in log order
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
        last = await bank.call(bank.app.credit, account_id, 20)

        first = run_cli(settings, "republish", "sample", "--from", "1", "--queue", consumer.name)
        assert first.returncode == 0, first.stderr
        assert "republished 3 message(s)" in first.stdout
        await eventually(lambda: _equals(ledger_pool, account_id, (30, 2)))

        again = run_cli(
            settings, "republish", "sample", "--from", str(last), "--to", str(last),
            "--queue", consumer.name,
        )  # fmt: skip
        assert "republished 1 message(s)" in again.stdout
        await eventually(lambda: worker.duplicates == 1)
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


# ------------------------------------------------------------- parked projection events


def run_fixed_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`audifi` after the fix of `balances` was deployed (parking_sample's spec)."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "AUDIFI_DB_PREFIX": settings.db_prefix,
        "AUDIFI_SERVICE_SPECS": "parking_sample:spec",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "audifi_kit.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def park_a_rename(bank: EventStore[Bank]) -> tuple[UUID, int]:
    """Ada's account with a rename `balances` parked, and a credit after it applied."""
    account_id = await bank.call(bank.app.open_account, "Ada")
    poison = await bank.call(rename, bank.app, account_id, POISON)
    last = await bank.call(bank.app.credit, account_id, 10)
    runner = ProjectionRunner(bank, Balances())
    await runner.start()
    try:
        await runner.wait(last, timeout=5)
    finally:
        await runner.stop()
    assert await view_rows(bank) == [(account_id, "Ada", 10, 2)]
    return account_id, poison


async def parked_now(bank: EventStore[Bank]) -> list[tuple[int, int]]:
    conn = await bank.connect()
    try:
        return [(p.notification_id, p.attempts) for p in await list_parked(conn, "balances")]
    finally:
        await conn.close()


async def test_projections_parked_lists_what_each_projection_skipped(
    bank: EventStore[Bank], settings: Settings
) -> None:
    _, poison = await park_a_rename(bank)

    every = run_cli(settings, "projections", "parked", "sample")
    other = run_cli(settings, "projections", "parked", "sample", "balances_copy")
    unknown = run_cli(settings, "projections", "parked", "sample", "nope")

    assert every.returncode == 0, every.stderr
    assert "1 parked" in every.stdout
    [line] = [x for x in every.stdout.splitlines() if "Account.Renamed" in x]
    assert f" {poison} " in line and "CharacterNotInRepertoireError" in line
    assert "0 parked" in other.stdout
    assert unknown.returncode == 2 and "has no projection 'nope'" in unknown.stdout


async def test_projections_retry_applies_a_parked_event_once_its_handler_is_fixed(
    bank: EventStore[Bank], settings: Settings
) -> None:
    account_id, poison = await park_a_rename(bank)

    unfixed = run_cli(settings, "projections", "retry", "sample", "balances")
    assert unfixed.returncode == 1
    assert "applied 0 event(s) to sample.balances; 1 still parked" in unfixed.stdout
    assert await parked_now(bank) == [(poison, 4)]

    fixed = run_fixed_cli(settings, "projections", "retry", "sample", "balances")
    assert fixed.returncode == 0, fixed.stderr
    assert "applied 1 event(s) to sample.balances; 0 still parked" in fixed.stdout
    assert await view_rows(bank) == [(account_id, "Ada Lovelace", 10, 3)]
    assert await parked_now(bank) == []

    again = run_fixed_cli(settings, "projections", "retry", "sample", "balances")
    assert "applied 0 event(s)" in again.stdout
    assert await view_rows(bank) == [(account_id, "Ada Lovelace", 10, 3)]


async def test_projections_discard_drops_parked_events_for_good(
    bank: EventStore[Bank], settings: Settings
) -> None:
    account_id, poison = await park_a_rename(bank)

    result = run_cli(settings, "projections", "discard", "sample", "balances", "--id", str(poison))

    assert result.returncode == 0, result.stderr
    assert "discarded 1 parked event(s) of sample.balances" in result.stdout
    assert await parked_now(bank) == []
    assert await view_rows(bank) == [(account_id, "Ada", 10, 2)]
