"""`make run` on a machine with nothing configured: the embedded platform answers in 60 s."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
from audifi_kit.settings import DEFAULT_PORTS
from audifi_kit.testing import free_port
from platform_processes import make, stop_group


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
    log = tmp_path / "run.log"
    process = make("run", env, log)
    try:
        url = f"http://127.0.0.1:{ports['gateway']}/api/v1/admin/health"
        started = time.monotonic()
        answer = None
        while time.monotonic() - started < 60:
            try:
                answer = httpx.get(url, timeout=2)
                if answer.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        assert answer is not None and answer.status_code == 200, log.read_text()[-3000:]
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
