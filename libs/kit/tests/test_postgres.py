"""Where each service's database comes from: URL parsing, ensure_database, embedded server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import asyncpg
import psutil
import pytest
from audifi_kit.postgres import (
    PgLocation,
    check_identifier,
    embedded_server,
    ensure_database,
    parse_server_url,
    read_embedded_location,
    resolve_server,
    service_database,
    start_embedded_server,
    stop_embedded_server,
)
from audifi_kit.settings import Settings

# --------------------------------------------------------------------------- URL parsing


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://postgres@127.0.0.1:5432/postgres",
            PgLocation("127.0.0.1", 5432, "postgres", None, "postgres"),
        ),
        ("postgres://db.example", PgLocation("db.example", 5432, "postgres", None, "postgres")),
        (
            "postgresql+asyncpg://app:s3cret@db:6543/audifi",
            PgLocation("db", 6543, "app", "s3cret", "audifi"),
        ),
        (
            "postgresql+psycopg://app:@db/x",  # empty password = none
            PgLocation("db", 5432, "app", None, "x"),
        ),
        (
            "postgresql://us%40er:p%40ss%3Aw%2Fd@h:1/my%20db",
            PgLocation("h", 1, "us@er", "p@ss:w/d", "my db"),
        ),
        ("postgresql://[::1]:5433/db", PgLocation("::1", 5433, "postgres", None, "db")),
        ("postgresql://[fe80::1]/db", PgLocation("fe80::1", 5432, "postgres", None, "db")),
        (
            "postgresql:///audifi?host=/var/run/postgresql&user=me",
            PgLocation("/var/run/postgresql", 5432, "me", None, "audifi"),
        ),
        ("postgresql://%2Ftmp%2FSock/db", PgLocation("/tmp/Sock", 5432, "postgres", None, "db")),
        ("POSTGRESQL://Host.Example/Db", PgLocation("Host.Example", 5432, "postgres", None, "Db")),
        ("postgresql://", PgLocation("localhost", 5432, "postgres", None, "postgres")),
        (
            "postgresql://u:p@h:7/?sslmode=disable",
            PgLocation("h", 7, "u", "p", "postgres"),
        ),
    ],
)
def test_parse_server_url(url: str, expected: PgLocation) -> None:
    assert parse_server_url(url) == expected  # the password takes part in ==


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root@localhost/db",
        "127.0.0.1:5432",
        "postgresql://h:notaport/db",
        "postgresql://h:70000/db",
        "postgresql://h1:5432,h2:5432/db",
        "postgresql://[::1/db",
    ],
)
def test_parse_server_url_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        parse_server_url(url)


def test_rejection_never_echoes_the_password() -> None:
    with pytest.raises(ValueError) as info:
        parse_server_url("postgresql://u:hunter2@h:99999/db")
    assert "hunter2" not in str(info.value)


def test_location_url_round_trips_and_hides_the_password() -> None:
    loc = PgLocation("h", 6000, "us@er", "p@ss:w/d", "my db")
    assert loc.url == "postgresql://us%40er:p%40ss%3Aw%2Fd@h:6000/my%20db"
    assert parse_server_url(loc.url) == loc
    assert loc.asyncpg_dsn == loc.url
    assert "p@ss" not in repr(loc) and "p%40ss" not in repr(loc)
    assert loc.redacted_url == "postgresql://us%40er:***@h:6000/my%20db"
    for other in (
        PgLocation("::1", 5432, "postgres", None, "x"),
        PgLocation("/var/run/postgresql", 5433, "me", "pw", "x"),
    ):
        assert parse_server_url(other.url) == other
    assert PgLocation("::1").url == "postgresql://postgres@[::1]:5432/postgres"


def test_eventsourcing_env() -> None:
    env = PgLocation("db", 6543, "app", None, "audifi_nft").eventsourcing_env()
    assert env == {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": "audifi_nft",
        "POSTGRES_HOST": "db",
        "POSTGRES_PORT": "6543",
        "POSTGRES_USER": "app",
        "POSTGRES_PASSWORD": "",
    }
    assert PgLocation("db", password="pw").eventsourcing_env()["POSTGRES_PASSWORD"] == "pw"
    assert not any("ENABLE_DB_FUNCTIONS" in k for k in env)  # ARCHITECTURE §10


@pytest.mark.parametrize("name", ["audifi_nft", "_x", "A-b_9", "a" * 63])
def test_identifier_accepts(name: str) -> None:
    assert check_identifier(name) == name


@pytest.mark.parametrize("name", ["", "9lives", 'x"; DROP DATABASE y; --', "a b", "a" * 64, "é"])
def test_identifier_rejects(name: str) -> None:
    with pytest.raises(ValueError):
        check_identifier(name)


# --------------------------------------------------------------------------- ensure_database


async def _exists(server: PgLocation, dbname: str) -> bool:
    conn = await asyncpg.connect(server.asyncpg_dsn)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", dbname))
    finally:
        await conn.close()


async def _drop(server: PgLocation, dbname: str) -> None:
    conn = await asyncpg.connect(server.asyncpg_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def db_name(postgres_url: str) -> object:
    name = f"audifi_test_{uuid.uuid4().hex[:12]}"
    yield name
    await _drop(parse_server_url(postgres_url), name)


async def test_ensure_database_creates_once(postgres_url: str, db_name: str) -> None:
    server = parse_server_url(postgres_url)
    assert not await _exists(server, db_name)
    loc = await ensure_database(server, db_name)
    assert loc == server.with_dbname(db_name)
    assert await _exists(server, db_name)
    conn = await asyncpg.connect(loc.asyncpg_dsn)
    try:
        assert await conn.fetchval("SELECT current_database()") == db_name
        await conn.execute("CREATE TABLE kept (x int)")
    finally:
        await conn.close()
    assert await ensure_database(server, db_name) == loc  # again: nothing happens
    conn = await asyncpg.connect(loc.asyncpg_dsn)
    try:  # the database was not recreated
        assert await conn.fetchval("SELECT to_regclass('kept') IS NOT NULL")
    finally:
        await conn.close()


async def test_ensure_database_concurrent_calls(postgres_url: str, db_name: str) -> None:
    server = parse_server_url(postgres_url)
    results = await asyncio.gather(*(ensure_database(server, db_name) for _ in range(5)))
    assert {r.dbname for r in results} == {db_name}
    assert await _exists(server, db_name)


async def test_ensure_database_rejects_unsafe_names(postgres_url: str) -> None:
    with pytest.raises(ValueError):
        await ensure_database(parse_server_url(postgres_url), 'x"; DROP DATABASE postgres; --')


async def test_service_database_uses_the_settings_server(
    postgres_url: str, unique_name: str
) -> None:
    settings = Settings(database_url=postgres_url, db_prefix=f"audifi_test_{unique_name}_")
    server = await resolve_server(settings)
    assert server == parse_server_url(postgres_url)
    try:
        loc = await service_database(settings, "nft")
        assert loc.dbname == f"audifi_test_{unique_name}_nft"
        assert await _exists(server, loc.dbname)
    finally:
        await _drop(server, settings.database_name("nft"))


async def test_eventsourcing_reads_the_env(postgres_url: str, db_name: str) -> None:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate

    loc = await ensure_database(parse_server_url(postgres_url), db_name)

    class Thing(Aggregate):
        pass

    def roundtrip() -> bool:
        app = Application(env=loc.eventsourcing_env())
        try:
            thing = Thing()
            app.save(thing)
            return app.repository.get(thing.id).id == thing.id
        finally:
            app.close()

    assert await asyncio.to_thread(roundtrip)


# --------------------------------------------------------------------------- embedded server


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def var_dir(tmp_path: Path) -> object:
    var = tmp_path / "var"
    yield var
    stop_embedded_server(var)  # whatever a test left running


async def test_embedded_server_lifecycle(var_dir: Path) -> None:
    first = await asyncio.to_thread(start_embedded_server, var_dir)
    assert first.started_here and first.initialised_here
    assert first.start_seconds is not None and first.start_seconds < 30
    assert first.location.host == "127.0.0.1" and first.location.password
    assert (var_dir / "postgres" / "data" / "PG_VERSION").read_text().strip() == "18"
    if os.geteuid() == 0:  # PostgreSQL refuses root: it runs as an unprivileged user
        assert psutil.Process(first.pid).username() == "embedded_postgres"

    conn = await asyncpg.connect(first.location.asyncpg_dsn)
    try:
        assert (await conn.fetchval("SHOW server_version")).startswith("18")
    finally:
        await conn.close()
    with pytest.raises(asyncpg.InvalidPasswordError):  # password auth, even on 127.0.0.1
        await asyncpg.connect(PgLocation("127.0.0.1", first.location.port, password="x").url)

    created = await ensure_database(first.location, "audifi_nft")
    conn = await asyncpg.connect(created.asyncpg_dsn)
    try:
        assert await conn.fetchval("SELECT current_database()") == "audifi_nft"
    finally:
        await conn.close()

    # a second call (sync or async) reuses the running server
    again = await asyncio.to_thread(start_embedded_server, var_dir)
    assert again.pid == first.pid and again.location == first.location
    assert await embedded_server(var_dir) == first.location

    # another process finds it through location.json
    saved = json.loads((var_dir / "postgres" / "location.json").read_text())
    assert (saved["host"], saved["port"], saved["pid"]) == (
        "127.0.0.1",
        first.location.port,
        first.pid,
    )
    assert oct((var_dir / "postgres" / "location.json").stat().st_mode & 0o777) == "0o600"
    assert read_embedded_location(var_dir) == first.location

    settings = Settings(var_dir=var_dir)
    assert await resolve_server(settings) == first.location
    assert (await service_database(settings, "coin")).dbname == "audifi_coin"

    assert stop_embedded_server(var_dir)
    assert _gone(first.pid)
    assert read_embedded_location(var_dir) is None
    assert not stop_embedded_server(var_dir)

    # restarted on the kept data: same port when free, no initdb, databases still there
    restarted = await asyncio.to_thread(start_embedded_server, var_dir)
    assert restarted.started_here and not restarted.initialised_here
    assert restarted.location == first.location and restarted.pid != first.pid
    conn = await asyncpg.connect(restarted.location.with_dbname("audifi_nft").asyncpg_dsn)
    await conn.close()
    assert stop_embedded_server(var_dir)
    assert _gone(restarted.pid)


_HOLDER = textwrap.dedent(
    """
    import json, sys
    from audifi_kit.postgres import start_embedded_server
    server = start_embedded_server(sys.argv[1])
    print(json.dumps({"pid": server.pid, "port": server.location.port,
                      "started_here": server.started_here}), flush=True)
    sys.stdin.read()  # hold the server until the test closes our stdin; atexit stops it
    """
)


def test_embedded_server_from_another_process_is_reused_not_stopped(var_dir: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(var_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        started = json.loads(holder.stdout.readline())
        assert started["started_here"]

        reused = start_embedded_server(var_dir)
        assert not reused.started_here
        assert (reused.pid, reused.location.port) == (started["pid"], started["port"])

        holder.stdin.close()  # the starter exits and stops its server
        assert holder.wait(timeout=60) == 0
        assert _gone(started["pid"])
        assert read_embedded_location(var_dir) is None
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_the_starting_process_stops_its_server_at_exit(var_dir: Path) -> None:
    script = (
        "import sys, json; from audifi_kit.postgres import start_embedded_server;"
        "s = start_embedded_server(sys.argv[1]); print(json.dumps([s.pid, s.start_seconds]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(var_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    pid, seconds = json.loads(out.stdout)
    assert seconds > 0
    assert _gone(pid)
