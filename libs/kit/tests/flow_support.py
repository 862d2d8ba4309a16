"""Two services wired through a real bus: `sample` publishes, `ledger` consumes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import aio_pika
import asyncpg
from audifi_kit.bus import parking_queue, retry_queue
from audifi_kit.settings import Settings

TESTS_DIR = Path(__file__).parent


async def ledger_total(pool: asyncpg.Pool, account_id: UUID) -> tuple[int, int]:
    row = await pool.fetchrow(
        "SELECT credited, credits FROM ledger_totals WHERE account_id=$1", account_id
    )
    return (0, 0) if row is None else (row["credited"], row["credits"])


async def delete_queues(amqp_url: str, *queues: str, retries: int = 3) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        for q in queues:
            names = [q, parking_queue(q), *(retry_queue(q, i) for i in range(retries))]
            for name in names:
                await channel.queue_delete(name)
    finally:
        await connection.close()


def run_cli(
    settings: Settings, *args: str, amqp_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real `audifi` command, in its own process, with a service's environment."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "AUDIFI_DB_PREFIX": settings.db_prefix,
        "AMQP_URL": amqp_url if amqp_url is not None else (settings.amqp_url or ""),
        "AUDIFI_SERVICE_SPECS": "kit_sample:spec",
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
