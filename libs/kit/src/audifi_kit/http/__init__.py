"""The Litestar service factory every AudiFi service's HTTP app is built with.

See `factory.create_service_app`; the error envelope in `errors`, request ids and logging in
`requests`, `/metrics` in `metrics`, auth in `auth`, `Idempotency-Key` in `idempotency`.

The error classes come from `audifi_kit.errors` and the pool's state key from
`audifi_kit.app_state`; both are re-exported here for code that imports them from this
package, but a domain, an application or an adapter imports them from there: this package
means Litestar.
"""

from audifi_kit.app_state import DB_POOL_STATE_KEY
from audifi_kit.errors import (
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
)
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
