"""`/health` (the process serves) and `/ready` (its dependencies answer).

A readiness check is an async callable that returns when its dependency is usable and raises
otherwise (`SELECT 1` on the pool, a broker channel open, ...). Each runs with a timeout; all run
concurrently. The failure's text is logged, never returned: it may name hosts or credentials.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from audifi_kit.http.errors import Unavailable

log = structlog.get_logger("audifi.http.health")

ReadinessCheck = Callable[[], Awaitable[None]]


@get("/health", opt={"public": True}, include_in_schema=False, sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


def readiness_endpoint(
    checks: Mapping[str, ReadinessCheck], *, timeout: float = 2.0
) -> HTTPRouteHandler:
    frozen = dict(checks)

    async def run(name: str, check: ReadinessCheck) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                await check()
        except TimeoutError:
            log.warning("readiness_check_timed_out", check=name, timeout=timeout)
            result = {"status": "fail", "reason": "timeout"}
        except Exception as exc:
            log.warning("readiness_check_failed", check=name, error=repr(exc))
            result = {"status": "fail", "reason": "error"}
        else:
            result = {"status": "ok"}
        result["durationMs"] = round((time.perf_counter() - started) * 1000, 2)
        return result

    @get("/ready", opt={"public": True}, include_in_schema=False)
    async def ready() -> Response[dict[str, Any]]:
        results = await asyncio.gather(*(run(n, c) for n, c in frozen.items()))
        by_name = dict(zip(frozen, results, strict=True))
        failing = sorted(n for n, r in by_name.items() if r["status"] != "ok")
        if failing:
            raise Unavailable(
                f"Not ready: {', '.join(failing)}",
                details={"failing": failing, "checks": by_name},
            )
        return Response({"status": "ok", "checks": by_name})

    return ready
