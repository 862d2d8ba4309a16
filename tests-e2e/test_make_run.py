"""`make run` on a machine with nothing configured: the embedded platform answers in 60 s."""

from __future__ import annotations

import json
import os
import signal
import tempfile
from pathlib import Path

import httpx
import psutil
import pytest
from audifi_kit.postgres import stop_embedded_server
from audifi_kit.settings import DEFAULT_PORTS
from audifi_kit.testing import eventually_sync, free_port
from platform_processes import make, stop_group, wait_http


def test_make_run_serves_every_service_through_the_gateway_within_60s(tmp_path: Path) -> None:
    ports = {name: free_port() for name in DEFAULT_PORTS}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "AMQP_URL", "REDIS_URL", "CHAIN_RPC_URL")
        and not k.startswith("AUDIFI_")
    }
    env |= {f"AUDIFI_{n.upper()}_PORT": str(p) for n, p in ports.items()}
    env["AUDIFI_VAR_DIR"] = str(tmp_path / "var")  # a clean checkout has no ./var yet
    env["AUDIFI_SMTP_SINK_PORT"] = "0"  # another platform's mail sink may hold the default
    env["AUDIFI_STRIPE_LOCAL_PORT"] = str(free_port())  # and its local Stripe the default
    log = tmp_path / "run.log"
    process = make("run", env, log)
    try:
        url = f"http://127.0.0.1:{ports['gateway']}/api/v1/admin/health"

        def healthy() -> httpx.Response:
            if process.poll() is not None:
                pytest.fail(f"make run ended: {log.read_text()[-3000:]}")
            try:
                answer = httpx.get(url, timeout=2)
            except httpx.HTTPError as exc:
                raise AssertionError(str(exc)) from exc  # not listening yet
            assert answer.status_code == 200, answer.text[:300]
            return answer

        try:
            answer = eventually_sync(healthy, within=60, every=0.5)
        except AssertionError as exc:
            raise AssertionError(log.read_text()[-3000:]) from exc
        services = answer.json()["services"]
        assert {n for n, s in services.items() if s["status"] == "up"} == set(DEFAULT_PORTS) - {
            "gateway"
        }
        # The in-process chain: the platform contracts deployed at start, one deployment for
        # every service (nft answers for it; coin and payment would have refused to start on
        # a failed deployment).
        chain = httpx.get(f"http://127.0.0.1:{ports['gateway']}/api/v1/chain", timeout=5)
        assert chain.status_code == 200, chain.text
        assert chain.json()["embedded"] is True
        assert set(chain.json()["contracts"]) == {
            "DevUSD", "Lottery", "MasterShares", "MilestoneEscrow", "RevenueDistributor",
            "ArtistCoinFactory",
        }  # fmt: skip
        assert chain.json()["paymentToken"] == chain.json()["contracts"]["DevUSD"]
        shares = httpx.get(
            f"http://127.0.0.1:{ports['gateway']}/api/v1/chain/contracts/MasterShares", timeout=5
        ).json()
        assert shares["address"] == chain.json()["contracts"]["MasterShares"]
        assert any(item.get("name") == "openIpo" for item in shares["abi"])
        unknown = httpx.get(
            f"http://127.0.0.1:{ports['gateway']}/api/v1/chain/contracts/Nope", timeout=5
        )
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"
    finally:
        stop_group(process)
    # Stopping it stops the embedded PostgreSQL it started: nothing is left running.
    assert "stopped embedded PostgreSQL" in log.read_text()


def _postgres_of(pgdata: Path) -> list[int]:
    """Pids of the PostgreSQL processes serving `pgdata` (a postmaster works in its data dir)."""
    found = []
    for process in psutil.process_iter(["name"]):
        try:
            if process.info["name"] == "postgres" and Path(process.cwd()) == pgdata.resolve():
                found.append(process.pid)
        except psutil.Error:
            continue
    return found


def test_make_run_after_a_killed_run_stops_the_postgres_it_left_and_starts_afresh(
    tmp_path: Path,
) -> None:
    # The data lives outside pytest's basetemp, which every pytest session resets to 0700: as
    # root, PostgreSQL runs as an unprivileged user who must keep reaching it.
    with tempfile.TemporaryDirectory(prefix="audifi-var-") as var:
        try:
            _killed_then_restarted(tmp_path, Path(var) / "var")
        finally:
            stop_embedded_server(Path(var) / "var")  # whatever a failure left running


def _killed_then_restarted(tmp_path: Path, var: Path) -> None:
    ports = {name: free_port() for name in DEFAULT_PORTS}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "AMQP_URL", "REDIS_URL", "CHAIN_RPC_URL")
        and not k.startswith("AUDIFI_")
    }
    env |= {f"AUDIFI_{n.upper()}_PORT": str(p) for n, p in ports.items()}
    env["AUDIFI_VAR_DIR"] = str(var)
    env["AUDIFI_SMTP_SINK_PORT"] = "0"
    env["AUDIFI_STRIPE_LOCAL_PORT"] = str(free_port())
    health = f"http://127.0.0.1:{ports['gateway']}/api/v1/admin/health"
    pgdata = var / "postgres" / "data"

    crashed = make("run", env, tmp_path / "crashed.log")
    try:
        wait_http(health, 120)
        stale = json.loads((pgdata.parent / "location.json").read_text())["pid"]
    finally:
        os.killpg(crashed.pid, signal.SIGKILL)  # as a segfault would: no clean stop at all
        crashed.wait()
    assert _postgres_of(pgdata), "the killed run's PostgreSQL should outlive it"

    log = tmp_path / "run.log"
    again = make("run", env, log)
    try:
        wait_http(health, 120)
        fresh = json.loads((pgdata.parent / "location.json").read_text())["pid"]
        assert fresh != stale and not psutil.pid_exists(stale)
    finally:
        stop_group(again)
    assert "stopped embedded PostgreSQL" in log.read_text()
    assert _postgres_of(pgdata) == []  # nothing left running, from either run
