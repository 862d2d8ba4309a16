from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from audifi_kit.eventstore import EventStore, open_event_store
from audifi_kit.postgres import service_database
from audifi_kit.settings import Settings
from audifi_kit.testing import drop_databases
from kit_sample import LEDGER_DDL, Bank


@pytest.fixture
async def settings(postgres_url: str, amqp_url: str) -> AsyncIterator[Settings]:
    """Settings on the real servers; every database this test creates is dropped after it."""
    prefix = f"audifi_t{uuid.uuid4().hex[:8]}_"
    yield Settings(
        database_url=postgres_url, amqp_url=amqp_url, db_prefix=prefix, poll_interval=0.2
    )
    await drop_databases(postgres_url, prefix)


@pytest.fixture
async def bank(settings: Settings) -> AsyncIterator[EventStore[Bank]]:
    store = await open_event_store("sample", Bank, settings)
    yield store
    store.close()


@pytest.fixture
async def ledger_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """The consuming `ledger` service's own database, with its totals table."""
    location = await service_database(settings, "ledger")
    pool = await asyncpg.create_pool(location.asyncpg_dsn, min_size=1, max_size=4)
    await pool.execute(LEDGER_DDL)
    yield pool
    await pool.close()
