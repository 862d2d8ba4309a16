"""One OpenAPI document for the whole API: `GET /api/v1/openapi.json`, read at `/api/v1/docs`.

Each service publishes its own document at `/schema/openapi.json` (the kit's factory). The
gateway fetches them all concurrently and merges them:

* paths get the `/api/v1` prefix; an operation the route table does not send to the service
  that documents it is left out (a client could not reach it through the gateway);
* every operation is tagged with its service, and says whether it needs a bearer token (the
  route table's access, the `bearerAuth` scheme);
* components are merged by name; when two services use one name for different things the later
  one's is renamed `<service>_<name>` and its `$ref`s follow; a repeated operationId is
  prefixed with the service in the same way;
* a service that does not answer is listed under `x-audifi-unavailable` (and in the info text)
  instead of failing the document;
* every operation keeps the error responses its service documents (the kit's one
  `ErrorEnvelope` component) and gains those the gateway itself answers before or instead of
  the service: 400 (a request it cannot frame), 414 (a URL too long to forward), 429 (rate
  limits), 503 (an upstream down, slow or behind an open breaker), 500; 401 on routes the
  route table authenticates; 408 and 413 when the operation takes a body (sent too slowly,
  too large).

The result is kept `AUDIFI_OPENAPI_CACHE_SECONDS` (10 s): the docs page can be reloaded
without fanning out to every service each time, and a new deployment shows within seconds.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Mapping
from http import HTTPStatus
from importlib import resources
from typing import Any

import httpx
import structlog
from audifi_kit.http.openapi import ERROR_ENVELOPE_REF, error_envelope_components
from audifi_kit.settings import Settings
from litestar import MediaType, Response, get

from audifi_gateway.routes import API_PREFIX, RouteTable

log = structlog.get_logger("audifi.gateway.openapi")

_DOCS_PAGE = resources.files(__package__).joinpath("docs.html").read_text("utf-8")

UPSTREAM_SCHEMA_PATH = "/schema/openapi.json"
UNAVAILABLE_KEY = "x-audifi-unavailable"
BEARER_SCHEME = "bearerAuth"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# Status -> (error codes, why) of what the gateway answers itself, on every operation...
GATEWAY_ERRORS: dict[int, tuple[tuple[str, ...], str]] = {
    400: (("VALIDATION_ERROR",), "the request's framing is invalid"),
    414: ((), "the URL is too long to forward"),
    429: (("RATE_LIMITED",), "a rate limit of the caller is spent (see Retry-After)"),
    500: (("INTERNAL",), "the gateway failed"),
    503: (("UNAVAILABLE",), "the service is down, too slow, or its circuit breaker is open"),
}
# ... on operations that take a body...
GATEWAY_BODY_ERRORS: dict[int, tuple[tuple[str, ...], str]] = {
    408: ((), "the request body arrived too slowly"),
    413: ((), "the request body is too large"),
}
# ... and on the routes it authenticates itself.
GATEWAY_AUTH_ERRORS: dict[int, tuple[tuple[str, ...], str]] = {
    401: (("UNAUTHORIZED",), "no valid access token, or its session was signed out"),
}


class MergedOpenApi:
    def __init__(
        self,
        table: RouteTable,
        settings: Settings,
        *,
        cache_seconds: float = 10.0,
        fetch_timeout: float = 3.0,
    ) -> None:
        self.table = table
        self.settings = settings
        self.cache_seconds = cache_seconds
        self.fetch_timeout = fetch_timeout
        self.client: httpx.AsyncClient | None = None
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def document(self) -> dict[str, Any]:
        async with self._lock:  # one fan-out at a time; the others take its result
            if self._cached is not None and time.monotonic() - self._cached[0] < self.cache_seconds:
                return self._cached[1]
            services = self.table.services
            fetched = await asyncio.gather(*(self._fetch(s) for s in services))
            document = merge(self.table, dict(zip(services, fetched, strict=True)))
            self._cached = (time.monotonic(), document)
            return document

    async def _fetch(self, service: str) -> dict[str, Any] | None:
        assert self.client is not None, "the document is served only while the app runs"
        url = self.settings.service_url(service) + UPSTREAM_SCHEMA_PATH
        try:
            response = await self.client.get(url, timeout=self.fetch_timeout)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("openapi_unavailable", service=service, error=repr(exc))
            return None
        return document if isinstance(document, dict) else None


def merge(table: RouteTable, documents: Mapping[str, dict[str, Any] | None]) -> dict[str, Any]:
    """The gateway's document from each service's own (None: the service did not answer)."""
    paths: dict[str, dict[str, Any]] = {}
    bearer = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    # The kit's envelope first: a service publishing the same one shares it, so the merged
    # document has one ErrorEnvelope whatever answers.
    components: dict[str, dict[str, Any]] = {
        "securitySchemes": {BEARER_SCHEME: bearer},
        "schemas": copy.deepcopy(error_envelope_components()),
    }
    tags: list[dict[str, str]] = []
    operation_ids: set[str] = set()
    unavailable = [s for s, d in documents.items() if d is None]
    for service, document in documents.items():
        if document is None:
            continue
        tags.append({"name": service, "description": f"Served by the {service} service"})
        theirs = document.get("components") or {}
        renames = _renames(service, theirs, components)
        for section, entries in _rewrite(theirs, renames).items():
            merged = components.setdefault(section, {})
            for name, value in (entries or {}).items():
                merged[_renamed(section, name, renames)] = value
        for path, item in _rewrite(document.get("paths") or {}, renames).items():
            operations = _reachable(table, service, path, item)
            for operation in operations.values():
                operation_id = operation.get("operationId")
                if isinstance(operation_id, str):
                    if operation_id in operation_ids:
                        operation_id = operation["operationId"] = f"{service}_{operation_id}"
                    operation_ids.add(operation_id)
            if operations:
                shared = {k: v for k, v in item.items() if k not in _METHODS}
                paths.setdefault(f"{API_PREFIX}{path}", shared).update(operations)
    description = "Every AudiFi client route, through the gateway."
    if unavailable:
        description += f" Not answering now, so missing here: {', '.join(unavailable)}."
    return {
        "openapi": "3.1.0",
        "info": {"title": "AudiFi API", "version": "1.0.0", "description": description},
        "servers": [{"url": "/"}],
        "tags": tags,
        "paths": paths,
        "components": components,
        UNAVAILABLE_KEY: unavailable,
    }


def _renames(
    service: str, theirs: Mapping[str, Any], merged: Mapping[str, Mapping[str, Any]]
) -> dict[str, str]:
    """`$ref` -> new `$ref` for each of a service's components whose name is taken."""
    renames: dict[str, str] = {}
    for section, entries in theirs.items():
        taken = merged.get(section) or {}
        for name, value in (entries or {}).items():
            if name in taken and taken[name] != value:
                new, n = f"{service}_{name}", 2
                while new in taken or new in (entries or {}):
                    new, n = f"{service}_{name}_{n}", n + 1
                renames[f"#/components/{section}/{name}"] = f"#/components/{section}/{new}"
    return renames


def _renamed(section: str, name: str, renames: Mapping[str, str]) -> str:
    ref = renames.get(f"#/components/{section}/{name}")
    return name if ref is None else ref.rsplit("/", 1)[1]


def _rewrite(value: Any, renames: Mapping[str, str]) -> Any:
    """A deep copy of `value` with every renamed `$ref` (or discriminator mapping) replaced."""
    if not renames:
        return copy.deepcopy(value)
    if isinstance(value, dict):
        return {k: _rewrite(v, renames) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, renames) for v in value]
    if isinstance(value, str):
        return renames.get(value, value)
    return value


def _reachable(
    table: RouteTable, service: str, path: str, item: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """The operations of `item` that the route table sends to `service`, tagged and secured."""
    operations: dict[str, dict[str, Any]] = {}
    for method in _METHODS:
        operation = item.get(method)
        route = table.match(path, method.upper())
        if not isinstance(operation, dict) or route is None or route.service != service:
            continue
        operation["tags"] = [service]
        operation.setdefault("security", [] if route.public else [{BEARER_SCHEME: []}])
        _add_gateway_errors(operation, authenticated=not route.public)
        operations[method] = operation
    return operations


def _add_gateway_errors(operation: dict[str, Any], *, authenticated: bool) -> None:
    """The error responses the gateway answers itself, beside the service's own."""
    responses = operation.setdefault("responses", {})
    errors = dict(GATEWAY_ERRORS)
    if "requestBody" in operation:
        errors |= GATEWAY_BODY_ERRORS
    if authenticated:
        errors |= GATEWAY_AUTH_ERRORS
    for status, (codes, why) in sorted(errors.items()):
        # A service's own entry names its codes; the gateway's adds only a missing status.
        named = f" (error code {' or '.join(codes)})" if codes else ""
        responses.setdefault(
            str(status),
            {
                "description": f"{HTTPStatus(status).phrase}, from the gateway: {why}{named}",
                "content": {"application/json": {"schema": {"$ref": ERROR_ENVELOPE_REF}}},
            },
        )


def openapi_endpoint(merged: MergedOpenApi) -> Any:
    @get(f"{API_PREFIX}/openapi.json", include_in_schema=False)
    async def openapi_document() -> Response[dict[str, Any]]:
        """The merged OpenAPI document of every service (public: it is what clients read)."""
        return Response(await merged.document(), headers={"Cache-Control": "no-cache"})

    return openapi_document


@get(f"{API_PREFIX}/docs", include_in_schema=False, media_type=MediaType.HTML, sync_to_thread=False)
def docs_page() -> str:
    """A page listing every operation of the merged document, self-contained (no CDN)."""
    return _DOCS_PAGE
