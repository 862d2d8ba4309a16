"""The Litestar service factory every AudiFi service's HTTP app is built with.

See `factory.create_service_app`; the error envelope in `errors`, request ids and logging in
`requests`, `/metrics` in `metrics`, auth in `auth`, `Idempotency-Key` in `idempotency`.

The error classes live in `audifi_kit.errors`, the field rules in `audifi_kit.fields` and the
pool's state key in `audifi_kit.app_state`, none of which imports Litestar: this package only
maps errors to the envelope and serves.
"""

from audifi_kit.http import metrics
from audifi_kit.http.auth import (
    Identity,
    JwksKeys,
    TokenVerifier,
    require_roles,
)
from audifi_kit.http.errors import envelope
from audifi_kit.http.factory import create_service_app
from audifi_kit.http.health import ReadinessCheck
from audifi_kit.http.idempotency import create_idempotency_table
from audifi_kit.http.requests import configure_logging, current_request_id

__all__ = [
    "Identity",
    "JwksKeys",
    "ReadinessCheck",
    "TokenVerifier",
    "configure_logging",
    "create_idempotency_table",
    "create_service_app",
    "current_request_id",
    "envelope",
    "metrics",
    "require_roles",
]
