"""The Litestar service factory every AudiFi service's HTTP app is built with.

See `factory.create_service_app`; errors in `errors`, request ids and logging in `requests`,
metrics in `metrics`, auth in `auth`, `Idempotency-Key` in `idempotency`.
"""

from audifi_kit.http import metrics
from audifi_kit.http.auth import (
    Identity,
    JwksKeys,
    TokenVerifier,
    require_roles,
)
from audifi_kit.http.errors import (
    BlockchainError,
    Conflict,
    DomainError,
    Forbidden,
    Internal,
    MethodNotAllowed,
    NotFound,
    PaymentProviderError,
    RateLimited,
    Unauthorized,
    Unavailable,
    ValidationFailed,
    envelope,
)
from audifi_kit.http.factory import create_service_app
from audifi_kit.http.health import ReadinessCheck
from audifi_kit.http.idempotency import DB_POOL_STATE_KEY, create_idempotency_table
from audifi_kit.http.requests import configure_logging, current_request_id

__all__ = [
    "DB_POOL_STATE_KEY",
    "BlockchainError",
    "Conflict",
    "DomainError",
    "Forbidden",
    "Identity",
    "Internal",
    "JwksKeys",
    "MethodNotAllowed",
    "NotFound",
    "PaymentProviderError",
    "RateLimited",
    "ReadinessCheck",
    "TokenVerifier",
    "Unauthorized",
    "Unavailable",
    "ValidationFailed",
    "configure_logging",
    "create_idempotency_table",
    "create_service_app",
    "current_request_id",
    "envelope",
    "metrics",
    "require_roles",
]
