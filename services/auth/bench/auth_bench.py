"""`make bench` for auth: password logins/s, beside the raw argon2id verifications/s that bound
them, measured in the same run with the same parameters.

The auth service is served in this process (uvicorn) on PostgreSQL (DATABASE_URL, else an
embedded server under a temporary directory) with the in-process bus. Each login is a full
`POST /auth/login`: index lookup, account load, argon2id verify, a session started and saved,
an EdDSA access token signed. Parameters are the production defaults unless AUTH_ARGON2_* say
otherwise; they are printed with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
from audifi_auth.adapters.passwords import Passwords
from audifi_auth.app import create_app
from audifi_auth.config import AuthConfig
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.http import configure_logging
from audifi_kit.postgres import embedded_server
from audifi_kit.settings import Settings
from audifi_kit.testing import free_port, served

PASSWORD = "benchmark password 1"


def raw_verifications(passwords: Passwords, seconds: float, threads: int) -> float:
    digest = passwords.hash(PASSWORD)
    deadline = time.perf_counter() + seconds

    def work() -> int:
        n = 0
        while time.perf_counter() < deadline:
            passwords.verify(digest, PASSWORD)
            n += 1
        return n

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(lambda _: work(), range(threads)))
    return total / (time.perf_counter() - started)


async def logins(url: str, users: int, seconds: float, connections: int) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        emails = [f"bench{i}-{uuid.uuid4().hex[:6]}@example.com" for i in range(users)]
        for email in emails:
            r = await client.post("/auth/signup", json={"email": email, "password": PASSWORD})
            r.raise_for_status()
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker(i: int) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                email = emails[(i + done) % len(emails)]
                r = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
                r.raise_for_status()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(connections)))
        return done / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--users", type=int, default=20)
    args = parser.parse_args()
    configure_logging("auth-bench", "WARNING")

    with tempfile.TemporaryDirectory() as tmp:
        var_dir = Path(tmp)
        server = os.environ.get("DATABASE_URL") or (await embedded_server(var_dir)).url
        prefix = f"bench{uuid.uuid4().hex[:8]}_"
        port = free_port()
        # Generous limits: the benchmark logs in far more often than a person would.
        os.environ.setdefault("AUTH_LOGIN_MAX_FAILURES_PER_IP", "1000000")
        os.environ.setdefault("AUTH_PER_IP_MAX", "1000000")
        settings = Settings(
            database_url=server, db_prefix=prefix, var_dir=var_dir, ports={"auth": port}
        )
        config = AuthConfig.from_env(settings)
        passwords = Passwords(
            time_cost=config.argon2_time_cost,
            memory_kib=config.argon2_memory_kib,
            parallelism=config.argon2_parallelism,
        )
        print(
            f"argon2id: time_cost={config.argon2_time_cost}, "
            f"memory={config.argon2_memory_kib} KiB, parallelism={config.argon2_parallelism}"
        )
        raw = raw_verifications(passwords, args.seconds, args.connections)
        print(f"raw argon2id verify ({args.connections} threads): {raw:8.1f}/s")
        try:
            async with served(create_app(settings, InProcessBus()), port=port) as url:
                rate = await logins(url, args.users, args.seconds, args.connections)
            print(f"POST /auth/login ({args.connections} connections): {rate:8.1f}/s")
            print(f"ratio login / raw verify: {rate / raw:.2f}")
        finally:
            conn = await asyncpg.connect(server)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{prefix}auth" WITH (FORCE)')
            finally:
                await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
