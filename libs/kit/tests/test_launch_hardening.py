"""What the process does for the platform's safety (issue 9): a crashed run's PostgreSQL, who may
name the client, malformed HTTP, the descriptor limit and repeated log lines."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from audifi_kit.logsafety import RepeatFilter
from audifi_kit.postgres import start_embedded_server, stop_embedded_server
from audifi_kit.server import Server, raise_descriptor_limit, server_config
from audifi_kit.settings import Settings
from audifi_kit.testing import free_port
from litestar import Litestar, Request, get

# ------------------------------------------------------------------ a crashed run's PostgreSQL


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def var_dir() -> Iterator[Path]:
    # Not under pytest's basetemp: each pytest session resets it to 0700, which would lock the
    # unprivileged PostgreSQL user (when we are root) out of its data mid-test.
    with tempfile.TemporaryDirectory(prefix="audifi-var-") as tmp:
        var = Path(tmp) / "var"
        yield var
        stop_embedded_server(var)


_STARTER = textwrap.dedent(
    """
    import json, sys
    from audifi_kit.postgres import start_embedded_server
    server = start_embedded_server(sys.argv[1])
    print(json.dumps({"pid": server.pid, "started_here": server.started_here}), flush=True)
    sys.stdin.read()
    """
)


def test_a_postgres_left_running_by_a_killed_run_is_stopped_and_started_afresh(
    var_dir: Path,
) -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", _STARTER, str(var_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert starter.stdout is not None
    first = json.loads(starter.stdout.readline())
    assert first["started_here"]
    starter.send_signal(signal.SIGKILL)  # as a segfault would: no atexit, no clean stop
    starter.wait()
    assert not _gone(first["pid"]), "the killed run's PostgreSQL should outlive it"

    again = start_embedded_server(var_dir)

    assert again.started_here and again.pid != first["pid"]  # this run owns it: stops it at exit
    assert _gone(first["pid"])
    assert stop_embedded_server(var_dir)
    assert _gone(again.pid)


def test_a_pid_file_naming_a_live_process_that_is_not_postgres_does_not_block_the_start(
    var_dir: Path,
) -> None:
    first = start_embedded_server(var_dir)
    pid_file = var_dir / "postgres" / "data" / "postmaster.pid"
    lines = pid_file.read_text().splitlines()
    assert stop_embedded_server(var_dir)
    # After a crash and a reboot the dead postmaster's pid may belong to any process of the
    # same user; PostgreSQL then refuses to start ("Is another postmaster running?").
    user: dict[str, Any] = {"user": "embedded_postgres"} if os.geteuid() == 0 else {}
    squatter = subprocess.Popen(["sleep", "60"], **user)
    try:
        pid_file.write_text("\n".join([str(squatter.pid), *lines[1:]]) + "\n")
        again = start_embedded_server(var_dir)
        assert again.started_here and again.location == first.location
    finally:
        squatter.kill()
        squatter.wait()


# ------------------------------------------------------------------ serving through the kit


@get("/who", sync_to_thread=False)
def who(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return {"client": request.client.host if request.client else None}


@contextlib.asynccontextmanager
async def serving(name: str, settings: Settings) -> AsyncIterator[str]:
    """`who` served as deployable `name` with the configuration `audifi serve` gives it."""
    port = free_port()
    server = Server(server_config(Litestar([who]), name, settings, port=port))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _client_seen(url: str, source: str = "127.0.0.1", **headers: str) -> str:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(f"{url}/who", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["client"])


async def test_the_gateway_takes_no_forwarded_address_unless_proxies_are_configured() -> None:
    async with serving("gateway", Settings()) as url:
        assert await _client_seen(url, **{"X-Forwarded-For": "203.0.113.9"}) == "127.0.0.1"
    async with serving("gateway", Settings(trusted_proxies="127.0.0.1")) as url:
        assert await _client_seen(url, **{"X-Forwarded-For": "203.0.113.9"}) == "203.0.113.9"


async def test_a_service_takes_the_forwarded_address_only_from_the_internal_proxies() -> None:
    spoofed = {"X-Forwarded-For": "203.0.113.9"}
    async with serving("auth", Settings()) as url:
        # The gateway, on loopback, names the client...
        assert await _client_seen(url, "127.0.0.1", **spoofed) == "203.0.113.9"
        # ...any other peer is itself the client, whatever it claims.
        assert await _client_seen(url, "127.0.0.2", **spoofed) == "127.0.0.2"
    async with serving("auth", Settings(internal_proxies="10.0.0.0/8")) as url:
        assert await _client_seen(url, "127.0.0.1", **spoofed) == "127.0.0.1"


async def test_uvicorns_forwarded_allow_ips_does_not_widen_the_trust(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    spoofed = {"X-Forwarded-For": "203.0.113.9"}
    async with serving("gateway", Settings()) as url:
        assert await _client_seen(url, **spoofed) == "127.0.0.1"
    async with serving("auth", Settings()) as url:
        assert await _client_seen(url, "127.0.0.2", **spoofed) == "127.0.0.2"


def _exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /who HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    ],
    ids=["header-without-colon", "nul-in-request-line", "bad-chunk", "websocket-without-key"],
)
async def test_malformed_http_is_answered_in_the_error_envelope(request_bytes: bytes) -> None:
    async with serving("auth", Settings()) as url:
        port = int(url.rsplit(":", 1)[1])
        raw = await asyncio.to_thread(_exchange, port, request_bytes)
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    assert status_line == "HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer["error"]["code"] == "BAD_REQUEST"
    assert answer["requestId"] == headers["x-request-id"]


# ------------------------------------------------------------------ the descriptor limit


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one() -> None:
    script = (
        "import resource; from audifi_kit.server import raise_descriptor_limit;"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 1024));"
        "print(raise_descriptor_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["1024", "1024"]
    assert raise_descriptor_limit() >= 1024


_CEILING_SERVER = textwrap.dedent(
    """
    import asyncio, contextlib, resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[2]), int(sys.argv[2])))
    from audifi_kit.http.requests import configure_logging
    from audifi_kit.server import build_servers
    from audifi_kit.settings import Settings
    from litestar import Litestar, WebSocket, get, websocket
    from litestar.exceptions import WebSocketDisconnect

    @get("/ping", sync_to_thread=False)
    def ping() -> str:
        return "pong"

    @websocket("/ws")
    async def hold(socket: WebSocket) -> None:
        await socket.accept()
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await socket.receive_text()

    async def main() -> None:
        configure_logging("ceiling", "INFO")
        settings = Settings(ports={"vstudio": int(sys.argv[1])})
        app = Litestar([ping, hold], logging_config=None)
        [server] = build_servers({"vstudio": app}, settings)
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
        print(server.config.http.ceiling.limit, flush=True)
        await asyncio.to_thread(sys.stdin.read)
        server.should_exit = True
        await task

    asyncio.run(main())
    """
)

_HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def _open_websocket(port: int) -> tuple[int, bytes, asyncio.StreamWriter]:
    """A raw WebSocket handshake: (status, body of a refusal, the open connection)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_HANDSHAKE)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status = int(head.split(b" ", 2)[1])
    body = b""
    if status != 101:
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        body = await asyncio.wait_for(reader.readexactly(length), 10)
    return status, body, writer


async def test_above_the_connection_ceiling_connections_get_503_and_the_server_recovers(
    tmp_path: Path,
) -> None:
    """With 512 descriptors a server without a ceiling runs out of them past ~500 sockets:
    asyncio then logs each failed accept and answers nobody."""
    port, limit = free_port(), 512
    log_file = tmp_path / "server.log"
    with log_file.open("w") as log_out:
        child = await asyncio.create_subprocess_exec(
            *(sys.executable, "-c", _CEILING_SERVER, str(port), str(limit)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_out,
        )
    assert child.stdout is not None and child.stdin is not None
    held: list[asyncio.StreamWriter] = []
    try:
        ceiling = int(await asyncio.wait_for(child.stdout.readline(), 60))
        assert 0 < ceiling < limit - 100
        statuses: dict[int, int] = {}
        refusal = b""
        for _ in range(0, limit + 100, 20):  # more sockets than the server has descriptors
            opened = await asyncio.gather(*(_open_websocket(port) for _ in range(20)))
            for status, body, writer in opened:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 101:
                    held.append(writer)
                else:
                    refusal = body or refusal
                    writer.close()
        assert statuses.get(101, 0) >= ceiling - 20
        assert statuses.get(503, 0) >= 100
        assert set(statuses) == {101, 503}
        envelope = json.loads(refusal)
        assert envelope["error"]["code"] == "UNAVAILABLE" and envelope["requestId"]

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            busy = await client.get("/ping")
            assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
            assert busy.json()["error"]["code"] == "UNAVAILABLE"
            for writer in held:
                writer.close()
            held.clear()
            deadline = time.monotonic() + 20
            while (answer := await client.get("/ping")).status_code != 200:
                assert time.monotonic() < deadline, answer.text
                await asyncio.sleep(0.05)
            assert answer.text == "pong"
    finally:
        for writer in held:
            writer.close()
        child.stdin.close()
        await asyncio.wait_for(child.wait(), 30)
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    # One line per accepted WebSocket (uvicorn's access line); beyond those, a handful.
    warnings = [line for line in lines if line["level"] not in ("debug", "info")]
    assert not [line for line in warnings if "out of system resource" in line["event"]]
    refusals = [line for line in warnings if "connection limit reached" in line["event"]]
    assert len(refusals) == 1, refusals  # once per interval, not once per refused connection
    assert len(warnings) < 5, warnings


# ------------------------------------------------------------------ repeated log lines


def test_a_repeated_warning_is_written_once_then_once_per_interval_with_its_count() -> None:
    now = [0.0]
    stream = io.StringIO()
    logger = logging.getLogger("test.repeat")
    handler = logging.StreamHandler(stream)
    repeat = RepeatFilter(60, clock=lambda: now[0])
    logger.addFilter(repeat)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        for i in range(100_000):
            logger.error("socket.accept() out of system resource\nsocket: <fd=%s>", i % 8)
        logger.warning("Invalid HTTP request received.")
        for failure in (KeyError("a"), KeyError("a"), ValueError("b")):  # two distinct failures
            try:
                raise failure
            except Exception:
                logger.exception("Task exception was never retrieved")
        logger.info("a per-request line %s", 1)
        logger.info("a per-request line %s", 2)
        now[0] = 61.0
        logger.error("socket.accept() out of system resource\nsocket: <fd=%s>", 3)
    finally:
        logger.removeHandler(handler)
        logger.removeFilter(repeat)
    lines = [
        line
        for line in stream.getvalue().splitlines()
        if not line.startswith(("socket:", "Traceback", "  ", "    "))
    ]
    assert lines == [
        "socket.accept() out of system resource",
        "Invalid HTTP request received.",
        "Task exception was never retrieved",
        "KeyError: 'a'",
        "Task exception was never retrieved",
        "ValueError: b",
        "a per-request line 1",
        "a per-request line 2",
        "socket.accept() out of system resource (99999 more like it in the last 61s)",
    ]
