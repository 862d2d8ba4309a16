"""Errors in Stripe's own shape, so the SDK raises the same exception class it would for Stripe.

The SDK picks its exception from the status and `error.type`: 400/404 `invalid_request_error`
-> InvalidRequestError, 401 -> AuthenticationError, 402 `card_error` -> CardError.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class StripeError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type, "message": message}
        if code is not None:
            self.body["code"] = code
        if param is not None:
            self.body["param"] = param

    def response(self) -> web.Response:
        return web.json_response({"error": self.body}, status=self.status, dumps=json.dumps)


def missing(kind: str, id: str, param: str = "id") -> StripeError:
    """Stripe's answer for an id that names nothing: `resource_missing`, 404 for the id in the
    URL, 400 for one given as the parameter `param`."""
    status = 404 if param == "id" else 400
    return StripeError(status, f"No such {kind}: '{id}'", code="resource_missing", param=param)


def invalid(param: str, message: str) -> StripeError:
    return StripeError(400, message, code="parameter_invalid", param=param)


def required(param: str) -> StripeError:
    return StripeError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param
    )
