"""`/health` (the process serves) and `/ready` (its dependencies answer).

A readiness check is an async callable that returns when its dependency is usable and raises
otherwise (`SELECT 1` on the pool, a broker channel open, ...). Each runs with a timeout; all run
concurrently. The failure's text is logged, never returned: it may name hosts or credentials.

A check may also say more, in public terms (names and numbers, never error texts): it returns
a `CheckReport` (its `details`; `degraded=True` when it works but needs an operator — the
service stays ready and `/ready` says `"status": "degraded"`), or raises `CheckFailed` with
details (the check fails, its details are shown). Projections report this way (lag, parked
events, stalled).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import structlog
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from audifi_kit.errors import Unavailable
from audifi_kit.readiness import CheckFailed, CheckReport, ReadinessCheck

log = structlog.get_logger("audifi.http.health")


@get("/health", opt={"public": True}, include_in_schema=False, sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


def readiness_endpoint(
    checks: Mapping[str, ReadinessCheck], *, timeout: float = 2.0
) -> HTTPRouteHandler:
    frozen = dict(checks)

    async def run(name: str, check: ReadinessCheck) -> dict[str, Any]:
        started = time.perf_counter()
        outcome: Any = None
        try:
            async with asyncio.timeout(timeout):
                outcome = await check()
        except TimeoutError:
            log.warning("readiness_check_timed_out", check=name, timeout=timeout)
            result: dict[str, Any] = {"status": "fail", "reason": "timeout"}
        except CheckFailed as exc:
            log.warning("readiness_check_failed", check=name, error=str(exc))
            result = {"status": "fail", "reason": "error", "details": exc.details}
        except Exception as exc:
            log.warning("readiness_check_failed", check=name, error=repr(exc))
            result = {"status": "fail", "reason": "error"}
        else:
            result = {"status": "ok"}
            if isinstance(outcome, CheckReport):
                result = {
                    "status": "degraded" if outcome.degraded else "ok",
                    "details": dict(outcome.details),
                }
        result["durationMs"] = round((time.perf_counter() - started) * 1000, 2)
        return result

    @get("/ready", opt={"public": True}, include_in_schema=False)
    async def ready() -> Response[dict[str, Any]]:
        results = await asyncio.gather(*(run(n, c) for n, c in frozen.items()))
        by_name = dict(zip(frozen, results, strict=True))
        failing = sorted(n for n, r in by_name.items() if r["status"] == "fail")
        if failing:
            raise Unavailable(
                f"Not ready: {', '.join(failing)}",
                details={"failing": failing, "checks": by_name},
            )
        degraded = any(r["status"] == "degraded" for r in results)
        return Response({"status": "degraded" if degraded else "ok", "checks": by_name})

    return ready


__all__ = ["CheckFailed", "CheckReport", "ReadinessCheck", "health", "readiness_endpoint"]
