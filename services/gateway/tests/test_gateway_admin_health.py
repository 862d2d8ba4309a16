"""`/api/v1/admin/health` tells up, degraded and down apart, with names and numbers only.

The upstreams are kit service apps whose readiness checks report as the kit's projections
check does (lag, parked, stalled); a real stalled projection failing `/ready` is shown in the
kit's runtime tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
from audifi_kit.http.factory import create_service_app
from audifi_kit.http.health import CheckFailed, CheckReport
from audifi_kit.settings import DEFAULT_PORTS, Settings
from audifi_kit.testing import served
from litestar import Litestar

SECRET = "password=hunter2 host=db.internal"


def projections(lag: int, parked: int, stalled: bool) -> dict[str, Any]:
    view = {"position": 9 - lag, "head": 9, "lag": lag, "parked": parked}
    return {"projections": {"accounts": {**view, "stalled": stalled, "running": True}}}


async def fine() -> None:
    return None


async def stalled() -> None:
    raise CheckFailed(f"accounts stalled ({SECRET})", projections(lag=4, parked=0, stalled=True))


async def parked() -> CheckReport:
    return CheckReport(projections(lag=0, parked=2, stalled=False), degraded=True)


async def broken() -> None:
    raise RuntimeError(SECRET)


def upstream(name: str, **checks: Callable[[], Any]) -> Litestar:
    return create_service_app(
        name, route_handlers=[], settings=Settings(), readiness_checks={"database": fine, **checks}
    )


@pytest.fixture
async def stand_ins() -> AsyncIterator[dict[str, str]]:
    apps = {
        "well": upstream("nft"),
        "stalled": upstream("auth", projections=stalled),
        "parked": upstream("notify", projections=parked),
        "broken": upstream("coin", database=broken),
    }
    async with AsyncExitStack() as stack:
        yield {k: await stack.enter_async_context(served(app)) for k, app in apps.items()}


def every_service(url: str, **overrides: str) -> dict[str, str]:
    return {name: url for name in DEFAULT_PORTS if name != "gateway"} | overrides


async def admin_health(start_gateway, settings: Settings, client) -> tuple[int, dict, str]:
    async with start_gateway(settings) as url:
        response = await client.get(f"{url}/api/v1/admin/health")
    return response.status_code, response.json(), response.text


async def test_a_stalled_projection_shows_its_service_degraded_and_fails_the_health(
    start_gateway, client, stand_ins: dict[str, str]
) -> None:
    urls = every_service(stand_ins["well"], auth=stand_ins["stalled"], coin=stand_ins["broken"])

    status, report, text = await admin_health(start_gateway, Settings(urls=urls), client)

    assert status == 503 and report["status"] == "degraded"
    auth = report["services"]["auth"]
    assert auth["status"] == "degraded" and auth["failing"] == ["projections"]
    accounts = auth["checks"]["projections"]["details"]["projections"]["accounts"]
    assert (accounts["lag"], accounts["stalled"]) == (4, True)
    coin = report["services"]["coin"]
    assert coin["status"] == "degraded" and coin["failing"] == ["database"]
    assert report["services"]["nft"]["status"] == "up"
    assert "hunter2" not in text and "db.internal" not in text


async def test_parked_events_leave_every_service_ready_but_show_theirs_degraded(
    start_gateway, client, stand_ins: dict[str, str]
) -> None:
    urls = every_service(stand_ins["well"], notify=stand_ins["parked"])

    status, report, _ = await admin_health(start_gateway, Settings(urls=urls), client)

    assert status == 200 and report["status"] == "degraded"
    notify = report["services"]["notify"]
    assert notify["status"] == "degraded" and notify["warnings"] == ["projections"]
    assert "failing" not in notify
    accounts = notify["checks"]["projections"]["details"]["projections"]["accounts"]
    assert accounts["parked"] == 2
    others = {n: s["status"] for n, s in report["services"].items() if n != "notify"}
    assert set(others.values()) == {"up"}


async def test_a_service_that_does_not_answer_is_down(
    start_gateway, client, stand_ins: dict[str, str], dead_port: int
) -> None:
    urls = every_service(stand_ins["well"], payment=f"http://127.0.0.1:{dead_port}")

    status, report, _ = await admin_health(start_gateway, Settings(urls=urls), client)

    assert status == 503
    assert report["services"]["payment"] == {
        "status": "down",
        "latencyMs": report["services"]["payment"]["latencyMs"],
    }
