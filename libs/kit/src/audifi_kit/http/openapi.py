"""Error responses in every service's OpenAPI, generated from the code (issue 9, finding 6).

Every error leaves a service as the envelope (`errors`), so every operation documents the
statuses it can answer with one `ErrorEnvelope` component:

* 400 when it takes a body or any parameter (Litestar's validation, the kit's body guard) or
  an `Idempotency-Key`;
* 401 and 403 unless the route is public (`opt={"public": True}`): the kit's auth middleware
  refuses a missing or bad token, role guards and handlers refuse the wrong caller; 403 on a
  public route with a guard (it decides who may call);
* 404 when its path has parameters: the thing they name may not exist;
* 409 on idempotent routes (`opt={"idempotent": True}`): a key reused with another request;
* 413 and 415 when it takes a body: too large, or not JSON;
* 500 everywhere;
* and what the handler declares with Litestar's own `raises=[...]`: `DomainError` subclasses
  (their status and code) or Litestar's HTTP exceptions (their status).

Litestar renders `raises=` and the 400 it adds for validation in its own
`{status_code, detail, extra}` shape, which no client ever receives. `ErrorResponses`, a
Litestar plugin, gives each handler as it is registered a `responses=` entry for each of
those statuses (Litestar's `ResponseSpec`), and a handler's `responses=` replaces what
`raises=` rendered for the same status: the envelope is all the document shows. A handler's
own `responses=` entries are kept and win over these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Litestar, get
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Example
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute

from audifi_kit.errors import DomainError
from audifi_kit.http.auth import PUBLIC_OPT
from audifi_kit.http.errors import to_domain_error
from audifi_kit.http.idempotency import IDEMPOTENT_OPT

ERROR_ENVELOPE = "ErrorEnvelope"
ERROR_ENVELOPE_REF = f"#/components/schemas/{ERROR_ENVELOPE}"


class ApiError(msgspec.Struct):
    """What went wrong: a stable code to branch on, a message for people, and details."""

    code: str
    message: str
    details: dict[str, Any]


class ErrorEnvelope(msgspec.Struct, rename="camel"):
    """Every error answer of the platform: `{"error": {...}, "requestId"}`."""

    error: ApiError
    request_id: str


def _code_of(status: int) -> str:
    """The code the kit's exception handler answers a bare `status` with."""
    return to_domain_error(HTTPException(status_code=status)).code


def error_response(status: int, codes: Iterable[str] = ()) -> ResponseSpec:
    """The `ResponseSpec` of one error status: the envelope, and the codes it may carry."""
    named = sorted(set(codes)) or [_code_of(status)]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return ResponseSpec(
        data_container=ErrorEnvelope,
        description=f"{phrase}: error code {' or '.join(named)}",
        generate_examples=False,
        examples=[
            Example(
                summary=code,
                value={
                    "error": {"code": code, "message": phrase, "details": {}},
                    "requestId": "5f0c6a1e2b7d4c3a9e8f1a2b3c4d5e6f",
                },
            )
            for code in named
        ],
    )


def declared_errors(raises: Iterable[type[Exception]] | None) -> dict[int, set[str]]:
    """Status -> codes of a handler's `raises=`: DomainError classes or Litestar exceptions."""
    statuses: dict[int, set[str]] = {}
    for kind in raises or ():
        if isinstance(kind, type) and issubclass(kind, DomainError):
            statuses.setdefault(kind.status_code, set()).add(kind.code)
        elif isinstance(kind, type) and issubclass(kind, HTTPException):
            error = to_domain_error(kind())
            statuses.setdefault(error.status_code, set()).add(error.code)
    return statuses


def handler_errors(
    handler: HTTPRouteHandler, *, has_path_params: bool, has_params: bool, has_body: bool
) -> dict[int, set[str]]:
    """Every error status (with its codes) a handler of the kit's service app can answer."""
    opt: Mapping[str, Any] = handler.opt or {}
    statuses: dict[int, set[str]] = {}

    def add(status: int, codes: Iterable[str] | None = None) -> None:
        statuses.setdefault(status, set()).update(codes or [_code_of(status)])

    add(500)

    idempotent = bool(opt.get(IDEMPOTENT_OPT))
    if has_params or has_body or idempotent:
        add(400)
    if not opt.get(PUBLIC_OPT):
        add(401)
        add(403)
    if handler.resolve_guards():
        add(403)
    if has_path_params:
        add(404)
    if idempotent:
        add(409)
    if has_body:
        add(413)
        add(415)
    for status, codes in declared_errors(handler.raises).items():
        add(status, codes)
    return statuses


class ErrorResponses(ReceiveRoutePlugin):
    """Gives every HTTP handler, as it is registered, the envelope for each error it can answer."""

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler, kwargs in route.route_handler_map.values():
            # Litestar's own parsed view of what the handler reads from the request (its
            # dependencies' included), the same view its validation and OpenAPI use.
            path_params = bool(kwargs.expected_path_params)
            params = bool(
                path_params
                or kwargs.expected_query_params
                or kwargs.expected_header_params
                or kwargs.expected_cookie_params
            )
            body = bool(
                "data" in kwargs.expected_reserved_kwargs
                or kwargs.expected_form_data
                or kwargs.expected_msgpack_data
            )
            statuses = handler_errors(
                handler, has_path_params=path_params, has_params=params, has_body=body
            )
            generated = {s: error_response(s, codes) for s, codes in sorted(statuses.items())}
            # A handler registered on several paths keeps what each of them needs.
            handler.responses = {**generated, **(handler.responses or {})}


@cache
def error_envelope_components() -> dict[str, Any]:
    """The `ErrorEnvelope` component and the ones it refers to, exactly as services publish
    them (for documents, such as the gateway's, that add error responses of their own)."""

    @get("/", opt={PUBLIC_OPT: True}, sync_to_thread=False)
    def probe() -> None:  # every operation can fail: its 500 brings the component in
        return None

    app = Litestar([probe], plugins=[ErrorResponses()], openapi_config=OpenAPIConfig("", "0"))
    schemas = app.openapi_schema.to_schema()["components"]["schemas"]
    return {name: schemas[name] for name in (ERROR_ENVELOPE, "ApiError")}


__all__ = [
    "ERROR_ENVELOPE",
    "ERROR_ENVELOPE_REF",
    "ApiError",
    "ErrorEnvelope",
    "ErrorResponses",
    "declared_errors",
    "error_envelope_components",
    "error_response",
    "handler_errors",
]
