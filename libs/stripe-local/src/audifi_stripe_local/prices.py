"""Prices (`price_...`), which localstripe predates: made with `POST /v1/prices` or inline from
a checkout line item's `price_data`. Their products are localstripe's (`prod_...`)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from localstripe.errors import UserError
from localstripe.resources import Product

from audifi_stripe_local.api import answer, currency, integer, metadata, only, params, read_routes
from audifi_stripe_local.errors import invalid, required
from audifi_stripe_local.store import Obj, Store, new_id

INTERVALS = ("day", "week", "month", "year")
# Stripe's limit: a recurring interval is at most one year.
MAX_COUNT = {"day": 365, "week": 52, "month": 12, "year": 1}


def add_interval(ts: int, interval: str, count: int = 1) -> int:
    """`ts` moved on by `count` intervals; a month keeps the day of month, clamped to the
    month's last day (Jan 31 -> Feb 28), as Stripe's billing periods do."""
    if interval in ("day", "week"):
        return ts + count * (86_400 if interval == "day" else 604_800)
    at = datetime.fromtimestamp(ts, UTC)
    months = at.month - 1 + count * (12 if interval == "year" else 1)
    year, month = at.year + months // 12, months % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return int(at.replace(year=year, month=month, day=day).timestamp())


def per_interval(price: Obj) -> str:
    """How pages show a price's period: ' / month', ' every 3 months', '' when one-time."""
    recurring = price["recurring"]
    if not recurring:
        return ""
    count, interval = recurring["interval_count"], recurring["interval"]
    return f" / {interval}" if count == 1 else f" every {count} {interval}s"


class Prices:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, data: dict[str, Any], param: str = "", *, inline: bool = False) -> Obj:
        """A price from `POST /v1/prices` params or, `inline`, a line item's `price_data`."""

        def name(key: str) -> str:
            return f"{param}[{key}]" if param else key

        allowed = ["currency", "unit_amount", "product", "product_data", "recurring"]
        if not inline:
            allowed += ["metadata", "nickname", "lookup_key"]
        only(data, allowed, param)
        if data.get("currency") is None:
            raise required(name("currency"))
        if data.get("unit_amount") is None:
            raise required(name("unit_amount"))
        unit_amount = integer(data["unit_amount"], name("unit_amount"), minimum=0)
        recurring = None
        if data.get("recurring") not in (None, ""):
            recurring = self._recurring(data["recurring"], name("recurring"))
        price = {
            "id": new_id("price_"),
            "object": "price",
            "active": True,
            "currency": currency(data["currency"], name("currency")),
            "unit_amount": unit_amount,
            "product": self._product(data, name),
            "recurring": recurring,
            "type": "recurring" if recurring else "one_time",
            "billing_scheme": "per_unit",
            "nickname": data.get("nickname"),
            "lookup_key": data.get("lookup_key"),
            "metadata": metadata(data.get("metadata"), name("metadata")),
            "created": self.store.now(),
            "livemode": False,
        }
        self.store.add(price)
        if not inline:
            self.store.emit("price.created", price)
        return price

    def _recurring(self, value: Any, param: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid(param, "Invalid object")
        only(value, ("interval", "interval_count"), param)
        interval = value.get("interval")
        if interval not in INTERVALS:
            raise invalid(f"{param}[interval]", f"Invalid interval: must be one of {INTERVALS}")
        count = integer(
            value.get("interval_count", 1),
            f"{param}[interval_count]",
            minimum=1,
            maximum=MAX_COUNT[interval],
        )
        return {"interval": interval, "interval_count": count, "usage_type": "licensed"}

    def _product(self, data: dict[str, Any], name: Any) -> str:
        if data.get("product"):
            try:
                return str(Product._api_retrieve(data["product"]).id)
            except UserError:
                raise invalid(name("product"), f"No such product: '{data['product']}'") from None
        product_data = data.get("product_data")
        if not isinstance(product_data, dict):
            raise required(name("product_data"))
        only(product_data, ("name", "description", "metadata"), name("product_data"))
        if not product_data.get("name"):
            raise required(f"{name('product_data')}[name]")
        product = Product(
            name=product_data["name"],
            description=product_data.get("description"),
            metadata=metadata(product_data.get("metadata"), f"{name('product_data')}[metadata]"),
        )
        return str(product.id)

    def routes(self) -> list[web.RouteDef]:
        async def create(request: web.Request) -> web.Response:
            data = await params(request)
            expand = data.pop("expand", None)
            return answer(self.store.render(self.create(data), expand))

        return [web.post("/v1/prices", create), *read_routes(self.store, "price", "/v1/prices")]
