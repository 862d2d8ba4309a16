"""The platform's error vocabulary: what a refusal means, free of any transport.

Domains, applications and adapters raise these; `audifi_kit.http.errors` maps each to the
envelope `{"error": {"code", "message", "details"}, "requestId"}` (ARCHITECTURE.md §7) with
its `status_code`. The status lives here, beside the code, because the pair is one contract
the API documents; nothing in this module needs a web framework to be imported or tested.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class DomainError(Exception):
    """A refusal the client should see as it is: a code, a status and a safe message.

    Subclass per meaning (`class MasterNotFound(NotFound): code = "MASTER_NOT_FOUND"`); the
    message and details must be fit for the client: never a secret, never internal state.
    """

    code: str = "INTERNAL"
    status_code: int = 500
    default_message: ClassVar[str] = "The request could not be completed"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
        status_code: int | None = None,
    ) -> None:
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.message = message or self.default_message
        self.details: dict[str, Any] = dict(details or {})
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.message)


class ValidationFailed(DomainError):
    code = "VALIDATION_ERROR"
    status_code = 400
    default_message = "The request is not valid"


class Unauthorized(DomainError):
    code = "UNAUTHORIZED"
    status_code = 401
    default_message = "A valid access token is required"

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kwargs)


class Forbidden(DomainError):
    code = "FORBIDDEN"
    status_code = 403
    default_message = "Not allowed"


class NotFound(DomainError):
    code = "NOT_FOUND"
    status_code = 404
    default_message = "Not found"


class MethodNotAllowed(DomainError):
    code = "METHOD_NOT_ALLOWED"
    status_code = 405
    default_message = "Method not allowed"


class Conflict(DomainError):
    code = "CONFLICT"
    status_code = 409
    default_message = "The request conflicts with the current state"


class PayloadTooLarge(DomainError):
    code = "PAYLOAD_TOO_LARGE"
    status_code = 413
    default_message = "The request body is too large"


class UnsupportedMediaType(DomainError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    status_code = 415
    default_message = "The request body's media type is not supported"


class RateLimited(DomainError):
    code = "RATE_LIMITED"
    status_code = 429
    default_message = "Too many requests"


class Internal(DomainError):
    code = "INTERNAL"
    status_code = 500
    default_message = "Internal error"


class BlockchainError(DomainError):
    code = "BLOCKCHAIN_ERROR"
    status_code = 502
    default_message = "The blockchain request failed"


class PaymentProviderError(DomainError):
    code = "PAYMENT_PROVIDER_ERROR"
    status_code = 502
    default_message = "The payment provider request failed"


class Unavailable(DomainError):
    code = "UNAVAILABLE"
    status_code = 503
    default_message = "Service unavailable"


__all__ = [
    "BlockchainError",
    "Conflict",
    "DomainError",
    "Forbidden",
    "Internal",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "PaymentProviderError",
    "RateLimited",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
    "ValidationFailed",
]
