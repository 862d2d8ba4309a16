"""The coin application builds in memory and on PostgreSQL, before any domain exists."""

from __future__ import annotations

import uuid
from pathlib import Path

from audifi_coin import bootstrap
from audifi_kit.settings import Settings
from audifi_kit.testing import drop_databases
from eventsourcing.domain import Aggregate


def test_the_application_runs_in_memory() -> None:
    app = bootstrap.in_memory()
    probe = Aggregate()
    app.save(probe)
    assert app.repository.get(probe.id).version == 1
    assert len(app.notification_log.select(1, 10)) == 1


async def test_the_application_runs_on_its_own_postgres_database(
    postgres_url: str, tmp_path: Path
) -> None:
    prefix = f"audifi_b{uuid.uuid4().hex[:8]}_"
    settings = Settings(database_url=postgres_url, db_prefix=prefix, var_dir=tmp_path)
    store = await bootstrap.on_postgres(settings)
    try:
        assert store.location.dbname.startswith(prefix)
        assert await store.call(store.app.notification_log.select, 1, 10) == []
    finally:
        store.close()
        await drop_databases(postgres_url, prefix)
