"""`make up`: the distributed topology, one supervised process per service."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import uuid
from pathlib import Path

import httpx
from audifi_kit.settings import DEFAULT_PORTS
from audifi_kit.testing import drop_databases, eventually_sync, free_port
from platform_processes import SMALL_FOOTPRINT, make, stop_group, wait_http


def test_make_up_runs_each_service_in_its_own_process_and_restarts_a_crashed_one(
    tmp_path: Path, postgres_url: str, amqp_url: str, redis_url: str
) -> None:
    ports = {name: free_port() for name in DEFAULT_PORTS}
    node, stripe_port = free_port(), free_port()
    prefix = f"e2eup{uuid.uuid4().hex[:6]}_"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIFI_")}
    env |= {f"AUDIFI_{n.upper()}_PORT": str(p) for n, p in ports.items()}
    env |= {
        "DATABASE_URL": postgres_url,
        "AMQP_URL": amqp_url,
        "REDIS_URL": redis_url,
        "AUDIFI_DB_PREFIX": prefix,
        "AUDIFI_VAR_DIR": str(tmp_path / "var"),
        "AUDIFI_GATEWAY_KEY_PREFIX": f"{prefix}gw",
        "AUDIFI_CHAIN_NODE_PORT": str(node),
        "AUDIFI_STRIPE_LOCAL_PORT": str(stripe_port),
        **SMALL_FOOTPRINT,
    }
    log = tmp_path / "up.log"
    process = make("up", env, log)
    health = f"http://127.0.0.1:{ports['gateway']}/api/v1/admin/health"
    try:
        try:
            wait_http(health, 90)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n{log.read_text()[-6000:]}") from None
        pids = dict(re.findall(r"started (\w+) \(pid (\d+)\)", log.read_text()))
        # a process each, the development chain they share (no CHAIN_RPC_URL given) and the
        # local Stripe (no STRIPE_SECRET_KEY given)
        assert set(pids) == {*DEFAULT_PORTS, "chain", "stripe"}, pids
        assert len(set(pids.values())) == len(DEFAULT_PORTS) + 2
        assert httpx.get(f"http://127.0.0.1:{stripe_port}/healthz", timeout=5).status_code == 200
        deployment = httpx.get(f"http://127.0.0.1:{node}/deployment", timeout=5).json()
        chain = httpx.get(f"http://127.0.0.1:{ports['gateway']}/api/v1/chain", timeout=5)
        assert chain.status_code == 200, chain.text
        assert chain.json()["contracts"] == {
            name: c["address"] for name, c in deployment["contracts"].items()
        }
        assert chain.json()["chainId"] == deployment["chainId"]

        os.kill(int(pids["nft"]), signal.SIGKILL)
        eventually_sync(
            lambda: len(re.findall(r"started nft \(pid (\d+)\)", log.read_text())) > 1,
            within=60,
            every=0.2,
            what="the supervisor restarting nft",
        )
        wait_http(f"http://127.0.0.1:{ports['nft']}/ready", 60)
        answer = httpx.get(health, timeout=5)
        assert answer.status_code == 200 and answer.json()["services"]["nft"]["status"] == "up"
    finally:
        stop_group(process)
        asyncio.run(drop_databases(postgres_url, prefix))
    # Every service process ended with the supervisor: none is left serving.
    for name, port in ports.items():
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
        except httpx.HTTPError:
            continue
        raise AssertionError(f"{name} still answers after make up was stopped")
