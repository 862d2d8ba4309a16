"""`GET /api/v1/admin/health`: is every service behind the gateway ready?

It asks each upstream's `/ready` concurrently, each with a short timeout
(`AUDIFI_HEALTH_TIMEOUT`, 2 s), and answers

    {"status": "ok" | "degraded",
     "services": {"nft": {"status": "up" | "down", "latencyMs": 3.2}, ...}}

with 200 when every service is up and 503 otherwise, so a load balancer or an operator's probe
can use it as it is. It is public, like `/health` and `/ready`: it says only up or down and how
fast, never why (a failure's text may name hosts; it goes to the log).

It goes straight to the services, past their breakers, so it shows a service coming back
before the breaker's cooldown is over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx
import structlog
from audifi_kit.settings import Settings
from litestar import Response, get

from audifi_gateway.routes import API_PREFIX

log = structlog.get_logger("audifi.gateway.health")


class UpstreamHealth:
    def __init__(self, services: Sequence[str], settings: Settings, *, timeout: float) -> None:
        self.services = tuple(services)
        self.settings = settings
        self.timeout = timeout
        self.client: httpx.AsyncClient | None = None

    async def report(self) -> tuple[bool, dict[str, Any]]:
        results = await asyncio.gather(*(self._probe(s) for s in self.services))
        by_service = dict(zip(self.services, results, strict=True))
        healthy = all(r["status"] == "up" for r in results)
        return healthy, {"status": "ok" if healthy else "degraded", "services": by_service}

    async def _probe(self, service: str) -> dict[str, Any]:
        assert self.client is not None, "health is probed only while the app runs"
        started = time.perf_counter()
        try:
            response = await self.client.get(
                f"{self.settings.service_url(service)}/ready", timeout=self.timeout
            )
            up = response.status_code == 200
            if not up:
                log.warning("upstream_not_ready", service=service, status=response.status_code)
        except httpx.HTTPError as exc:
            log.warning("upstream_unreachable", service=service, error=repr(exc))
            up = False
        latency = round((time.perf_counter() - started) * 1000, 2)
        return {"status": "up" if up else "down", "latencyMs": latency}


def admin_health_endpoint(health: UpstreamHealth) -> Any:
    @get(f"{API_PREFIX}/admin/health", include_in_schema=False)
    async def admin_health() -> Response[dict[str, Any]]:
        """Every upstream's readiness: 200 when all are up, 503 otherwise. Public (see module)."""
        healthy, report = await health.report()
        return Response(
            report, status_code=200 if healthy else 503, headers={"Cache-Control": "no-store"}
        )

    return admin_health
