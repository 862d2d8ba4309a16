"""A small service built with the kit's factory, as a real service would be."""

from __future__ import annotations

import asyncio
import threading
from typing import Annotated, Any

import msgspec
from audifi_kit.errors import NotFound, ValidationFailed
from audifi_kit.eventstore import ConcurrencyConflict
from audifi_kit.http import Identity, create_service_app, require_roles
from audifi_kit.settings import Settings
from litestar import Litestar, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter


class MasterNotFound(NotFound):
    code = "MASTER_NOT_FOUND"


class NewMaster(msgspec.Struct, rename="camel"):
    title: str
    share_count: int


class PaymentRequest(msgspec.Struct, rename="camel"):
    amount_minor: int
    currency: str


@get("/masters/{master_id:int}", opt={"public": True})
async def get_master(master_id: FromPath[int]) -> dict[str, Any]:
    if master_id == 404:
        raise MasterNotFound(f"Master {master_id} does not exist", details={"id": master_id})
    return {"id": master_id}


@post("/masters", opt={"public": True})
async def create_master(data: JSONBody[NewMaster]) -> dict[str, Any]:
    return {"title": data.title, "shareCount": data.share_count}


@get("/masters", opt={"public": True})
async def list_masters(limit: Annotated[int, QueryParameter(ge=1, le=100)]) -> dict[str, Any]:
    return {"items": [], "limit": limit}


@get("/boom", opt={"public": True})
async def boom() -> None:
    raise RuntimeError("connection to postgresql://admin:hunter2@db failed")


@get("/race", opt={"public": True})
async def race() -> None:
    raise ConcurrencyConflict("version 3 already exists")


@get("/me")
async def me(identity: NamedDependency[Identity]) -> dict[str, Any]:
    return {
        "userId": identity.user_id,
        "roles": sorted(identity.roles),
        "sessionId": identity.session_id,
    }


@get("/whoami")
async def whoami(request: Request[Identity, Any, Any]) -> dict[str, Any]:
    return {"userId": request.user.user_id}


@get("/admin/report", guards=[require_roles("admin")])
async def admin_report() -> dict[str, Any]:
    return {"ok": True}


class Payments:
    """Counts how often each handler really ran, so a replay is told from a re-execution."""

    def __init__(self) -> None:
        self.executed = 0
        self.flaky_failures_left = 1
        # threading, not asyncio: test clients run the app on a loop of their own.
        self.release = threading.Event()
        self.entered = threading.Event()


def payment_routes(payments: Payments) -> list[Any]:
    @post("/payments", opt={"idempotent": True, "public": True})
    async def pay(data: JSONBody[PaymentRequest]) -> dict[str, Any]:
        payments.executed += 1
        return {"paymentId": payments.executed, "amountMinor": data.amount_minor}

    @post("/payments/slow", opt={"idempotent": True, "public": True})
    async def slow(data: JSONBody[PaymentRequest]) -> dict[str, Any]:
        payments.entered.set()
        await asyncio.to_thread(payments.release.wait, 10)
        payments.executed += 1
        return {"paymentId": payments.executed}

    @post("/payments/flaky", opt={"idempotent": True, "public": True})
    async def flaky(data: JSONBody[PaymentRequest]) -> dict[str, Any]:
        payments.executed += 1
        if payments.flaky_failures_left:
            payments.flaky_failures_left -= 1
            raise RuntimeError("provider timed out")
        return {"paymentId": payments.executed}

    @post("/payments/raced", opt={"idempotent": True, "public": True})
    async def raced(data: JSONBody[PaymentRequest]) -> dict[str, Any]:
        payments.executed += 1
        if payments.flaky_failures_left:
            payments.flaky_failures_left -= 1
            raise ConcurrencyConflict("another payment changed the wallet first")
        return {"paymentId": payments.executed}

    @post("/payments/refused", opt={"idempotent": True, "public": True})
    async def refused(data: JSONBody[PaymentRequest]) -> None:
        payments.executed += 1
        raise ValidationFailed("Amount too large", details={"max": 100})

    @post("/tips", opt={"public": True})
    async def tip(data: JSONBody[PaymentRequest]) -> dict[str, Any]:
        payments.executed += 1
        return {"tipId": payments.executed}

    @post("/payments/mine", opt={"idempotent": True})
    async def mine(
        data: JSONBody[PaymentRequest], identity: NamedDependency[Identity]
    ) -> dict[str, Any]:
        payments.executed += 1
        return {"paymentId": payments.executed, "userId": identity.user_id}

    return [pay, slow, flaky, raced, refused, tip, mine]


BASE_ROUTES = [get_master, create_master, list_masters, boom, race, me, whoami, admin_report]


def build_app(settings: Settings | None = None, **kwargs: Any) -> Litestar:
    extra = kwargs.pop("route_handlers", [])
    return create_service_app(
        "testsvc",
        route_handlers=[*BASE_ROUTES, *extra],
        settings=settings or Settings(),
        **kwargs,
    )
