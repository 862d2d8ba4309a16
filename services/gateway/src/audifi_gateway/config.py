"""The gateway's own settings, parsed once from the environment (ARCHITECTURE.md §9).

What every deployable shares (service URLs, REDIS_URL, AMQP_URL, the JWKS URL) is in the kit's
`Settings`; this object holds only what the gateway alone reads:

- `AUDIFI_CORS_ORIGINS`: comma-separated origins a browser may call the API from; `*` for any.
  Default: none (CORS off, same origin only).
- `AUDIFI_RATE_LIMITS`: `class=amount/seconds,...`, replacing those classes' defaults
  (`ratelimit.DEFAULT_LIMITS`).
- `AUDIFI_GATEWAY_KEY_PREFIX`: prefix of the gateway's Redis keys (rate limits, revoked
  sessions). Default `gw`.
- `AUDIFI_BREAKER_FAILURES`: consecutive connect errors or timeouts that open an upstream's
  circuit breaker. Default 5.
- `AUDIFI_BREAKER_COOLDOWN`: seconds an open breaker waits before letting one probe through.
  Default 10.
- `AUDIFI_OPENAPI_CACHE_SECONDS`: how long the merged OpenAPI document is reused. Default 10.
- `AUDIFI_HEALTH_TIMEOUT`: seconds `/api/v1/admin/health` waits for each upstream's `/ready`.
  Default 2.
- `AUDIFI_MAX_BODY`: largest request body in bytes the gateway takes on a route that does not
  name its own (`routes.Route.max_body`); larger is refused with 413. Default 1048576 (1 MiB).
- `AUDIFI_BODY_TIMEOUT`: seconds a client has to send its whole request body; slower is
  refused with 408, and the upstream never sees the request. Default 10.
- `AUDIFI_WS_HANDSHAKES`: WebSocket handshakes the gateway carries out at once; more wait
  their turn (a room of thousands opening must leave the loop to everyone else's requests).
  Default 16.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from audifi_kit.http.revocations import revocation_queue

from audifi_gateway.ratelimit import DEFAULT_LIMITS, RateLimit, parse_rate_limits

REVOCATION_QUEUE = revocation_queue("gateway")


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    cors_origins: tuple[str, ...] = ()
    rate_limits: Mapping[str, RateLimit] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    key_prefix: str = "gw"
    breaker_failures: int = 5
    breaker_cooldown: float = 10.0
    openapi_cache_seconds: float = 10.0
    health_timeout: float = 2.0
    max_body: int = 1024 * 1024
    body_timeout: float = 10.0
    ws_handshakes: int = 16
    # Fixed by the architecture (`<consumer>.<purpose>`); a field so tests can use their own.
    revocation_queue: str = REVOCATION_QUEUE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewayConfig:
        env = os.environ if environ is None else environ

        def opt(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        origins = (opt("AUDIFI_CORS_ORIGINS") or "").split(",")
        return cls(
            cors_origins=tuple(o.strip() for o in origins if o.strip()),
            rate_limits={**DEFAULT_LIMITS, **parse_rate_limits(opt("AUDIFI_RATE_LIMITS") or "")},
            key_prefix=opt("AUDIFI_GATEWAY_KEY_PREFIX") or "gw",
            breaker_failures=int(opt("AUDIFI_BREAKER_FAILURES") or 5),
            breaker_cooldown=float(opt("AUDIFI_BREAKER_COOLDOWN") or 10.0),
            openapi_cache_seconds=float(opt("AUDIFI_OPENAPI_CACHE_SECONDS") or 10.0),
            health_timeout=float(opt("AUDIFI_HEALTH_TIMEOUT") or 2.0),
            max_body=int(opt("AUDIFI_MAX_BODY") or 1024 * 1024),
            body_timeout=float(opt("AUDIFI_BODY_TIMEOUT") or 10.0),
            ws_handshakes=max(1, int(opt("AUDIFI_WS_HANDSHAKES") or 16)),
        )
