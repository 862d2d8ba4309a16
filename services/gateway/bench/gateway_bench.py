"""`make bench` for the gateway: one authenticated GET through the gateway beside the same GET
straight to the service, in the same run.

auth and the gateway run as their own processes (`audifi serve`), as in the distributed
topology, against this machine's PostgreSQL, RabbitMQ and Redis (or DATABASE_URL, AMQP_URL,
REDIS_URL). The load comes from a separate process: a small keep-alive HTTP/1.1 client on
loopback that holds `--connections` requests in flight for `--seconds`. The request is
`GET /auth/session` with a bearer token, which the service verifies; through the gateway it is
also verified at the edge, rate-limited (in Redis) and proxied.

Printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
from audifi_auth.keys import SigningKey, SigningKeys
from audifi_kit.testing import LOCAL_DEFAULTS, free_port
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.table import Table

console = Console()


# ------------------------------------------------------------------------- load generator


async def _one_connection(
    host: str, port: int, request: bytes, until: float, latencies: list[float], errors: list[str]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != b"200":
                errors.append(status.decode())
    finally:
        writer.close()


async def _load(url: str, token: str, seconds: float, connections: int) -> dict[str, float]:
    parts = urlsplit(url)
    request = (
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {token}\r\nConnection: keep-alive\r\n\r\n"
    ).encode()
    warmup: list[float] = []
    await asyncio.gather(
        *(
            _one_connection(
                parts.hostname, parts.port, request, time.perf_counter() + 1.0, warmup, []
            )
            for _ in range(connections)
        )
    )
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _one_connection(
                parts.hostname, parts.port, request, started + seconds, latencies, errors
            )
            for _ in range(connections)
        )
    )
    elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "errors": len(errors),
    }


# ------------------------------------------------------------------------------- harness


def _serve(name: str, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
    log = (log_dir / f"{name}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "audifi_kit.cli", "serve", name],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return process


def _wait(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up")


def _measure(url: str, token: str, seconds: float, connections: int) -> dict[str, float]:
    """The load, from its own process."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--load",
            url,
            "--token",
            token,
            "--seconds",
            str(seconds),
            "--connections",
            str(connections),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        print(json.dumps(asyncio.run(_load(args.load, args.token, args.seconds, args.connections))))
        return

    database = os.environ.get("DATABASE_URL") or LOCAL_DEFAULTS["DATABASE_URL"][0]
    prefix = f"audifi_gwbench{uuid.uuid4().hex[:6]}_"
    keys = SigningKeys([SigningKey(Ed25519PrivateKey.generate())])
    ports = {"auth": free_port(), "gateway": free_port()}
    var_dir = Path(tempfile.mkdtemp(prefix="audifi-gwbench-"))
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "AMQP_URL": os.environ.get("AMQP_URL") or LOCAL_DEFAULTS["AMQP_URL"][0],
        "REDIS_URL": os.environ.get("REDIS_URL") or LOCAL_DEFAULTS["REDIS_URL"][0],
        "AUDIFI_DB_PREFIX": prefix,
        "AUDIFI_VAR_DIR": str(var_dir),
        "AUDIFI_AUTH_PORT": str(ports["auth"]),
        "AUDIFI_GATEWAY_PORT": str(ports["gateway"]),
        "AUDIFI_GATEWAY_KEY_PREFIX": f"{prefix}gw",
        # The limiter still counts every request in Redis; the budget is only out of reach.
        "AUDIFI_RATE_LIMITS": "default=100000000/60,auth=100000000/60",
        "JWT_PRIVATE_KEY": keys.current.pem().decode(),
        "AUDIFI_LOG_LEVEL": "WARNING",
    }
    processes = []
    try:
        processes.append(_serve("auth", env, var_dir))
        _wait(f"http://127.0.0.1:{ports['auth']}/ready")
        processes.append(_serve("gateway", env, var_dir))
        _wait(f"http://127.0.0.1:{ports['gateway']}/ready")
        token = keys.sign(
            {
                "sub": str(uuid.uuid4()),
                "roles": ["fan"],
                "sid": "bench",
                "exp": int(time.time()) + 3600,
            }
        )
        direct_url = f"http://127.0.0.1:{ports['auth']}/auth/session"
        gateway_url = f"http://127.0.0.1:{ports['gateway']}/api/v1/auth/session"
        console.print(
            f"gateway benchmark: GET /auth/session, {args.connections} connections, "
            f"{args.seconds:.0f} s each, load from a separate process"
        )
        direct = _measure(direct_url, token, args.seconds, args.connections)
        through = _measure(gateway_url, token, args.seconds, args.connections)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        with psycopg.connect(database, autocommit=True) as conn:
            for (name,) in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{prefix}%",)
            ).fetchall():
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    table = Table("path", "requests/s", "p50 ms", "p99 ms", "non-200", title="audifi gateway")
    for label, r in (("straight to auth", direct), ("through the gateway", through)):
        table.add_row(
            label, f"{r['rps']:,.0f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", str(r["errors"])
        )
    console.print(table)
    console.print(
        f"gateway/direct: throughput ratio {through['rps'] / direct['rps']:.2f}, "
        f"p50 latency ratio {through['p50_ms'] / direct['p50_ms']:.2f}"
    )


if __name__ == "__main__":
    main()
