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
import jwt
from audifi_auth.adapters.signing_keys import SigningKey, SigningKeys
from audifi_gateway.edge_auth import EdgeAuth
from audifi_kit.http.auth import JwksKeys, TokenVerifier
from audifi_kit.http.revocations import RedisRevocations
from audifi_kit.testing import LOCAL_DEFAULTS, drop_databases, free_port
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table

console = Console()


# ------------------------------------------------------------------------- load generator


async def _one_connection(
    host: str,
    port: int,
    requests: list[bytes],
    offset: int,
    until: float,
    latencies: list[float],
    errors: list[str],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    n = offset
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(requests[n % len(requests)])
            n += 1
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


async def _load(url: str, tokens: list[str], seconds: float, connections: int) -> dict[str, float]:
    """`connections` keep-alive connections, each sending the next user's request in turn."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = [
        (
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {token}\r\nConnection: keep-alive\r\n\r\n"
        ).encode()
        for token in tokens
    ]
    stride = max(1, len(requests) // connections)
    warmup_until = time.perf_counter() + 1.0
    await asyncio.gather(
        *(
            _one_connection(host, port, requests, i * stride, warmup_until, [], [])
            for i in range(connections)
        )
    )
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(
            _one_connection(host, port, requests, i * stride, started + seconds, latencies, errors)
            for i in range(connections)
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


# --------------------------------------------------------------------- token verification


async def _verifications(
    jwks_url: str, redis_url: str, tokens: list[str], keys: SigningKeys
) -> dict:
    """The gateway's edge check of a token (JWKS key by kid, signature, claims, revocation in
    Redis) per second, beside PyJWT's bare signature-and-expiry decode of the same tokens."""
    public = keys.current.private.public_key()
    started = time.perf_counter()
    for token in tokens:
        jwt.decode(token, public, algorithms=["EdDSA"])
    raw = len(tokens) / (time.perf_counter() - started)

    redis = Redis.from_url(redis_url)
    jwks = JwksKeys(jwks_url)
    edge = EdgeAuth(TokenVerifier(jwks), RedisRevocations(redis, f"bench{uuid.uuid4().hex[:6]}"))
    try:
        await edge.verify(tokens[0])  # fetch the JWKS once, as a running gateway has
        started = time.perf_counter()
        for token in tokens:
            await edge.verify(token)
        checked = len(tokens) / (time.perf_counter() - started)
    finally:
        await jwks.close()
        await redis.aclose()
    return {"raw": raw, "edge": checked}


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


def _measure(url: str, tokens: Path, seconds: float, connections: int) -> dict[str, float]:
    """The load, from its own process."""
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--load",
            url,
            "--tokens",
            str(tokens),
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
    parser.add_argument(
        "--users", type=int, default=3000, help="distinct callers, each within its rate limit"
    )
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        callers = Path(args.tokens).read_text().split()
        print(json.dumps(asyncio.run(_load(args.load, callers, args.seconds, args.connections))))
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
        "JWT_PRIVATE_KEY": keys.current.pem().decode(),
        "AUDIFI_LOG_LEVEL": "WARNING",
    }
    processes = []
    try:
        processes.append(_serve("auth", env, var_dir))
        _wait(f"http://127.0.0.1:{ports['auth']}/ready")
        processes.append(_serve("gateway", env, var_dir))
        _wait(f"http://127.0.0.1:{ports['gateway']}/ready")
        # Many callers, as real traffic has: the shipped rate limits stay in force and every
        # request is counted in Redis, but no caller crosses its budget in one run.
        tokens = var_dir / "tokens.txt"
        claims = {"roles": ["fan"], "exp": int(time.time()) + 3600}
        tokens.write_text(
            "\n".join(
                keys.sign({**claims, "sub": str(uuid.uuid4()), "sid": str(uuid.uuid4())})
                for _ in range(args.users)
            )
        )
        direct_url = f"http://127.0.0.1:{ports['auth']}/auth/session"
        gateway_url = f"http://127.0.0.1:{ports['gateway']}/api/v1/auth/session"
        console.print(
            f"gateway benchmark: GET /auth/session, {args.connections} connections, "
            f"{args.users} users, {args.seconds:.0f} s each, load from a separate process"
        )
        direct = _measure(direct_url, tokens, args.seconds, args.connections)
        through = _measure(gateway_url, tokens, args.seconds, args.connections)
        verified = asyncio.run(
            _verifications(
                f"http://127.0.0.1:{ports['auth']}/.well-known/jwks.json",
                env["REDIS_URL"],
                tokens.read_text().split(),
                keys,
            )
        )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        asyncio.run(drop_databases(database, prefix))

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
    console.print(
        f"access-token verification at the edge (one task): {verified['edge']:,.0f}/s  |  "
        f"baseline PyJWT decode {verified['raw']:,.0f}/s  |  "
        f"ratio {verified['edge'] / verified['raw']:.2f}"
    )


if __name__ == "__main__":
    main()
