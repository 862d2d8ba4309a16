"""The vstudio application builds in memory and on PostgreSQL, before any domain exists."""

from __future__ import annotations

from pathlib import Path

from audifi_kit.testing import check_runs_in_memory, check_runs_on_postgres
from audifi_vstudio import bootstrap


def test_the_application_runs_in_memory() -> None:
    check_runs_in_memory(bootstrap.in_memory())


async def test_the_application_runs_on_its_own_postgres_database(
    postgres_url: str, tmp_path: Path
) -> None:
    await check_runs_on_postgres(bootstrap.on_postgres, postgres_url, tmp_path)
