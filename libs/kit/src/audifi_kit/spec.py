"""What the kit needs to know about a service: its application, read models and outbox.

Each service package exposes one `ServiceSpec` under the entry point group `audifi.services`
(so the ops CLI finds it by name); `AUDIFI_SERVICE_SPECS="module:attr,..."` adds more, which
is how the kit's own tests register their sample service.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from audifi_kit.eventstore import ServiceApplication
from audifi_kit.inbox import Consumer
from audifi_kit.outbox import OutboxMapping
from audifi_kit.projections import Projection

ENTRY_POINT_GROUP = "audifi.services"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    application: type[ServiceApplication]
    projections: tuple[type[Projection], ...] = ()
    outbox: OutboxMapping | None = None
    consumers: tuple[Consumer, ...] = field(default=())

    def projection(self, name: str) -> type[Projection]:
        for p in self.projections:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.projections) or "none"
        raise LookupError(f"{self.name} has no projection {name!r} (it has: {known})")


def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def discover() -> dict[str, ServiceSpec]:
    specs: dict[str, ServiceSpec] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        spec = ep.load()
        specs[spec.name] = spec
    for ref in filter(None, os.environ.get("AUDIFI_SERVICE_SPECS", "").split(",")):
        spec = _load(ref.strip())
        specs[spec.name] = spec
    return specs


def find(name: str) -> ServiceSpec:
    specs = discover()
    try:
        return specs[name]
    except KeyError:
        known = ", ".join(sorted(specs)) or "none installed"
        raise LookupError(f"no service {name!r} (known: {known})") from None
