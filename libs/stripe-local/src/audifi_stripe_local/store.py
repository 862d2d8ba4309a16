"""The objects this local Stripe adds (in Stripe's JSON shapes, as dicts) and its event log.

Objects are kept as the JSON Stripe would answer with; keys starting with `_` are our own
bookkeeping and never leave. Customers, payment methods and products live in localstripe's
store; ids are looked up in either, so `expand` reaches both.

Every event is stored (newest last) and handed to the webhook sender; its `data.object` is a
snapshot taken when it happened, as Stripe's are.
"""

from __future__ import annotations

import copy
import random
import string
import time
from collections.abc import Callable
from typing import Any

from localstripe.errors import UserError
from localstripe.resources import StripeObject

from audifi_stripe_local.customers import clock_of
from audifi_stripe_local.errors import StripeError, missing
from audifi_stripe_local.webhooks import WebhookSender

# The version stripe-python 16.1 pins; the shapes here follow it (current_period_* on
# subscription items as well as the subscription).
API_VERSION = "2026-10-28.endive"
CLOCK = "test_helpers.test_clock"

Obj = dict[str, Any]


def new_id(prefix: str) -> str:
    return prefix + "".join(random.choices(string.ascii_letters + string.digits, k=24))


def public(obj: Obj) -> Obj:
    return copy.deepcopy({k: v for k, v in obj.items() if not k.startswith("_")})


class Store:
    def __init__(self, sender: WebhookSender) -> None:
        self.sender = sender
        self.objects: dict[str, Obj] = {}
        self.events: list[Obj] = []
        # (object type, field) -> builds a field Stripe leaves out unless expanded.
        self.expanders: dict[tuple[str, str], Callable[[str], Obj]] = {}

    def add(self, obj: Obj) -> Obj:
        self.objects[obj["id"]] = obj
        return obj

    def get(self, id: str, kind: str, param: str = "id") -> Obj:
        obj = self.objects.get(id)
        if obj is None or obj["object"] != kind:
            raise missing(kind, id, param)
        return obj

    def all(self, kind: str) -> list[Obj]:
        """Every object of a type, newest first."""
        return [o for o in reversed(self.objects.values()) if o["object"] == kind]

    @staticmethod
    def now() -> int:
        return int(time.time())

    def now_for(self, customer_id: str | None) -> int:
        """The customer's time: its test clock's frozen time, else the wall clock."""
        clock = clock_of(customer_id)
        return self.get(clock, CLOCK)["frozen_time"] if clock else self.now()

    def emit(self, type: str, obj: Obj, previous: Obj | None = None) -> Obj:
        data: Obj = {"object": public(obj)}
        if previous is not None:
            data["previous_attributes"] = copy.deepcopy(previous)
        return self._log(type, data)

    def emit_foreign(self, event: Any) -> None:
        """An event localstripe raised for one of its objects (customer.created, ...)."""
        self._log(event.type, copy.deepcopy(event.data))

    def _log(self, type: str, data: Obj) -> Obj:
        event = {
            "id": new_id("evt_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": len(self.sender.urls),
            "request": {"id": None, "idempotency_key": None},
            "type": type,
        }
        self.events.append(event)
        self.sender.send(event)
        return event

    def event(self, id: str) -> Obj:
        for event in self.events:
            if event["id"] == id:
                return event
        raise missing("event", id)

    def lookup(self, id: str) -> Obj:
        """Any object by id, as the API shows it."""
        if id in self.objects:
            return public(self.objects[id])
        cls = StripeObject._get_class_for_id(id)
        if cls is not None:
            try:
                return cls._api_retrieve(id)._export()
            except UserError:
                pass
        raise missing("object", id)

    def render(self, obj: Obj, expand: Any = None) -> Obj:
        """The object as answered, with the `expand` paths replaced by the objects they name."""
        out = public(obj)
        if expand is None:
            return out
        if not isinstance(expand, list) or not all(isinstance(p, str) for p in expand):
            raise StripeError(400, "Invalid array", param="expand")
        for path in expand:
            if path.count(".") > 3:
                raise StripeError(400, "You cannot expand more than 4 levels of a property")
            self._expand(out, path.split("."), path)
        return out

    def _expand(self, value: Any, parts: list[str], path: str) -> None:
        if isinstance(value, list):
            for item in value:
                self._expand(item, parts, path)
            return
        head, rest = parts[0], parts[1:]
        build = self.expanders.get((value.get("object"), head)) if isinstance(value, dict) else None
        if build is not None:
            value[head] = build(value["id"])
        elif not isinstance(value, dict) or head not in value:
            raise StripeError(400, f"This property cannot be expanded ({path}).", param="expand")
        elif isinstance(value[head], str):
            value[head] = self.lookup(value[head])
        if rest and value[head] is not None:
            self._expand(value[head], rest, path)
