"""`GET /api/v1/admin/health`: is every service behind the gateway ready, and is it well?

It asks each upstream's `/ready` concurrently, each with a short timeout
(`AUDIFI_HEALTH_TIMEOUT`, 2 s), and answers

    {"status": "ok" | "degraded",
     "services": {
       "nft": {"status": "up", "latencyMs": 3.2, "checks": {"database": {"status": "ok"}, ...}},
       "auth": {"status": "degraded", "latencyMs": 4.1, "failing": ["projections"],
                "checks": {"projections": {"status": "fail", "details": {"projections":
                  {"accounts": {"lag": 3, "parked": 1, "stalled": true, ...}}}}, ...}},
       "coin": {"status": "down", "latencyMs": 2001.0}, ...}}

A service is

- `up`: ready, every check ok;
- `degraded`: it answers, but a readiness check fails (`failing` names them: it is not ready)
  or reports itself degraded (`warnings` names them: it serves, e.g. with parked projection
  events that need an operator);
- `down`: no answer, or not a readiness answer.

The status code is 200 when every service is ready (up, or degraded by warnings only) and 503
otherwise, so a load balancer or an operator's probe can use it as it is; `status` is "ok"
only when every service is up.

It is public, like `/health` and `/ready` (which already show all of this): it says which
checks fail and the numbers they report, never why (a failure's text may name hosts; it goes
to the log). What an upstream reports is passed on filtered to names and numbers.

It goes straight to the services, past their breakers, so it shows a service coming back
before the breaker's cooldown is over.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from typing import Any

import httpx
import structlog
from audifi_kit.settings import Settings
from litestar import Response, get

from audifi_gateway.routes import API_PREFIX

log = structlog.get_logger("audifi.gateway.health")

# A public name: a check, a projection, a state ("ok", "timeout").
_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_MAX_DEPTH = 4


def _public(value: Any, depth: int = 0) -> Any:
    """Only names and numbers of an upstream's report: anything else is dropped."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str):
        return value if _NAME.fullmatch(value) else None
    if depth >= _MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {
            k: _public(v, depth + 1)
            for k, v in value.items()
            if isinstance(k, str) and _NAME.fullmatch(k)
        }
    if isinstance(value, list):
        return [_public(v, depth + 1) for v in value[:50]]
    return None


def _checks(raw: Any) -> dict[str, dict[str, Any]]:
    checks: dict[str, dict[str, Any]] = {}
    if not isinstance(raw, dict):
        return checks
    for name, result in raw.items():
        if not (isinstance(name, str) and _NAME.fullmatch(name) and isinstance(result, dict)):
            continue
        entry: dict[str, Any] = {"status": _public(result.get("status"))}
        if isinstance(result.get("details"), dict):
            entry["details"] = _public(result["details"])
        checks[name] = entry
    return checks


def _assess(response: httpx.Response) -> dict[str, Any]:
    """The service's state from its `/ready` answer (200 `{status, checks}` or 503 envelope)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return {"status": "down"}
    if response.status_code == 200:
        checks = _checks(body.get("checks"))
        warnings = sorted(n for n, c in checks.items() if c["status"] == "degraded")
        state: dict[str, Any] = {"status": "degraded" if warnings else "up", "checks": checks}
        if warnings:
            state["warnings"] = warnings
        return state
    error = body.get("error")
    details = error.get("details") if isinstance(error, dict) else None
    if response.status_code != 503 or not isinstance(details, dict):
        return {"status": "down"}
    checks = _checks(details.get("checks"))
    failing = sorted(n for n, c in checks.items() if c["status"] == "fail")
    if not failing:  # a 503 that is not readiness's (e.g. a server shedding load)
        return {"status": "down"}
    return {"status": "degraded", "failing": failing, "checks": checks}


class UpstreamHealth:
    def __init__(self, services: Sequence[str], settings: Settings, *, timeout: float) -> None:
        self.services = tuple(services)
        self.settings = settings
        self.timeout = timeout
        self.client: httpx.AsyncClient | None = None

    async def report(self) -> tuple[bool, dict[str, Any]]:
        """(every service ready, the report)."""
        results = await asyncio.gather(*(self._probe(s) for s in self.services))
        by_service = dict(zip(self.services, results, strict=True))
        ready = all(r["status"] != "down" and not r.get("failing") for r in results)
        well = all(r["status"] == "up" for r in results)
        return ready, {"status": "ok" if well else "degraded", "services": by_service}

    async def _probe(self, service: str) -> dict[str, Any]:
        """The service's health: its replicas' (AUDIFI_<NAME>_URL may list several), the
        best of them, with how many are up when there are several."""
        replicas = self.settings.service_urls(service)
        if len(replicas) == 1:
            return await self._probe_one(service, replicas[0])
        results = await asyncio.gather(*(self._probe_one(service, u) for u in replicas))
        rank = {"up": 0, "degraded": 1, "down": 2}
        best = min(results, key=lambda r: rank.get(r["status"], 2))
        return {
            **best,
            "replicas": len(replicas),
            "replicasUp": sum(r["status"] == "up" for r in results),
        }

    async def _probe_one(self, service: str, base: str) -> dict[str, Any]:
        assert self.client is not None, "health is probed only while the app runs"
        started = time.perf_counter()
        try:
            response = await self.client.get(f"{base}/ready", timeout=self.timeout)
            state = _assess(response)
            if state["status"] != "up":
                log.warning(
                    "upstream_not_well",
                    service=service,
                    status=response.status_code,
                    failing=state.get("failing"),
                    warnings=state.get("warnings"),
                )
        except httpx.HTTPError as exc:
            log.warning("upstream_unreachable", service=service, error=repr(exc))
            state = {"status": "down"}
        latency = round((time.perf_counter() - started) * 1000, 2)
        return {"status": state.pop("status"), "latencyMs": latency, **state}


def admin_health_endpoint(health: UpstreamHealth) -> Any:
    @get(f"{API_PREFIX}/admin/health", include_in_schema=False)
    async def admin_health() -> Response[dict[str, Any]]:
        """Every upstream's readiness: 200 when all are ready, 503 otherwise. Public (see
        module)."""
        ready, report = await health.report()
        return Response(
            report, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"}
        )

    return admin_health
