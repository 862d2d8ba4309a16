"""How a request reaches us and an answer leaves, on Stripe's wire format.

The SDK sends form bodies with bracketed keys (`line_items[0][price_data][currency]=usd`,
`expand[0]=...`, booleans as `true`/`false`, integers as text); localstripe already has the
parser that turns them back into nested dicts and lists, so we reuse it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from localstripe.server import unflatten_data

from audifi_stripe_local.errors import StripeError, invalid, required

if TYPE_CHECKING:
    from audifi_stripe_local.store import Store

Params = dict[str, Any]
# The base URL of our pages as a person's browser reaches them ("" = as this request came).
PUBLIC_URL = web.AppKey("public_url", str)


def public_base(request: web.Request) -> str:
    return request.app[PUBLIC_URL] or f"{request.scheme}://{request.host}"


async def params(request: web.Request) -> Params:
    """The request's parameters: the form body of a POST, else the query string."""
    if request.method == "POST":
        if request.content_type == "application/json":
            data = await request.json()
        else:
            data = unflatten_data(await request.post())
    else:
        data = unflatten_data(request.query)
    return dict(data or {})


def answer(obj: Mapping[str, Any], status: int = 200) -> web.Response:
    return web.json_response(obj, status=status, dumps=lambda o: json.dumps(o, indent=2))


def only(data: Mapping[str, Any], allowed: Iterable[str], prefix: str = "") -> None:
    """Refuse parameters Stripe does not know here, as Stripe does: a typo in a caller is an
    error on the first run, not a silently ignored field."""
    known = set(allowed)
    for key in data:
        if key not in known:
            name = f"{prefix}[{key}]" if prefix else key
            raise StripeError(
                400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
            )


def integer(
    value: Any, param: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise invalid(param, f"Invalid integer: {value}")
    try:
        number = int(value)
    except ValueError:
        raise invalid(param, f"Invalid integer: {value}") from None
    if minimum is not None and number < minimum:
        raise invalid(param, f"This value must be greater than or equal to {minimum}.")
    if maximum is not None and number > maximum:
        raise invalid(param, f"This value must be less than or equal to {maximum}.")
    return number


def boolean(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise invalid(param, f"Invalid boolean: {value}")


def text(data: Mapping[str, Any], key: str, param: str | None = None, *, needed: bool = False):
    value = data.get(key)
    if value is None or value == "":
        if needed:
            raise required(param or key)
        return None
    if not isinstance(value, str):
        raise invalid(param or key, f"Invalid string: {value}")
    return value


def metadata(value: Any, param: str = "metadata", current: Mapping[str, str] | None = None):
    """Stripe's metadata rules: string keys and values; on update, keys merge into what is
    there and an empty value deletes its key."""
    if value is None:
        return dict(current or {})
    if value == "":
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise invalid(param, "Invalid object")
    merged = dict(current or {})
    for key, item in value.items():
        if len(key) > 40 or len(item) > 500:
            raise invalid(f"{param}[{key}]", "Metadata keys are at most 40 characters, values 500.")
        if item == "":
            merged.pop(key, None)
        else:
            merged[key] = item
    if len(merged) > 50:
        raise invalid(param, "Metadata holds at most 50 keys.")
    return merged


def currency(value: Any, param: str) -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
        raise invalid(param, f"Invalid currency: {value}")
    return value.lower()


def listing(items: list[dict[str, Any]], data: Params, url: str) -> dict[str, Any]:
    """A page of a Stripe list: `items` newest first, `limit` (1..100, default 10) from
    after the id `starting_after`."""
    limit = integer(data.get("limit", 10), "limit", minimum=1, maximum=100)
    after = data.get("starting_after")
    start = 0
    if after:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise invalid("starting_after", f"No such object: '{after}'")
        start = ids.index(after) + 1
    page = items[start : start + limit]
    return {"object": "list", "data": page, "has_more": start + limit < len(items), "url": url}


def retrieve_route(store: Store, kind: str, path: str) -> web.RouteDef:
    """`GET path/{id}` for objects of one type."""

    async def retrieve(request: web.Request) -> web.Response:
        data = await params(request)
        return answer(store.render(store.get(request.match_info["id"], kind), data.get("expand")))

    return web.get(path + "/{id}", retrieve)


def read_routes(
    store: Store, kind: str, path: str, filters: tuple[str, ...] = ()
) -> list[web.RouteDef]:
    """`GET path/{id}` and `GET path` (newest first, filtered on equal `filters`) for a type."""

    async def list_all(request: web.Request) -> web.Response:
        data = await params(request)
        expand = data.pop("expand", None)
        only(data, ("limit", "starting_after", *filters))
        items = [
            store.render(o)
            for o in store.all(kind)
            if all(o.get(f) == data[f] for f in filters if f in data)
        ]
        return answer(store.render(listing(items, data, path), expand))

    return [retrieve_route(store, kind, path), web.get(path, list_all)]
