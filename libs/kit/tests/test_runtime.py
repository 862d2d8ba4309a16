"""A service assembled by ServiceRuntime: HTTP in, events out, read models and consumers running."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import pytest
from audifi_kit.bus.rabbitmq import RabbitBus
from audifi_kit.errors import NotFound
from audifi_kit.eventstore import ServiceApplication
from audifi_kit.http import create_service_app
from audifi_kit.runtime import RUNTIME_STATE_KEY, ServiceRuntime
from audifi_kit.settings import Settings
from audifi_kit.spec import ServiceSpec
from audifi_kit.testing import eventually
from flow_support import delete_queues, ledger_total
from kit_sample import LEDGER_DDL, Balances, Bank, ledger_consumer, outbox
from litestar import get, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from litestar.testing import AsyncTestClient
from parking_sample import POISON, rename


class AccountNotFound(NotFound):
    code = "ACCOUNT_NOT_FOUND"


@post("/accounts", opt={"public": True})
async def open_account(data: JSONBody[dict[str, str]], state: State) -> dict[str, Any]:
    runtime: ServiceRuntime = state[RUNTIME_STATE_KEY]
    account_id = await runtime.store.call(runtime.store.app.open_account, data["owner"])
    return {"accountId": str(account_id)}


@post("/accounts/{account_id:uuid}/credits", opt={"public": True})
async def credit(
    account_id: FromPath[UUID], data: JSONBody[dict[str, int]], state: State
) -> dict[str, Any]:
    runtime: ServiceRuntime = state[RUNTIME_STATE_KEY]
    position = await runtime.store.call(runtime.store.app.credit, account_id, data["amount"])
    await runtime.projections["balances"].wait(position)  # the client reads its own write
    return await read_account(runtime, account_id)


@get("/accounts/{account_id:uuid}", opt={"public": True})
async def account(account_id: FromPath[UUID], state: State) -> dict[str, Any]:
    return await read_account(state[RUNTIME_STATE_KEY], account_id)


async def read_account(runtime: ServiceRuntime, account_id: UUID) -> dict[str, Any]:
    row = await runtime.pool.fetchrow(
        "SELECT owner, balance FROM balances.accounts WHERE id=$1", account_id
    )
    if row is None:
        raise AccountNotFound(f"No account {account_id}")
    return {"accountId": str(account_id), "owner": row["owner"], "balance": row["balance"]}


class Ledger(ServiceApplication):
    name = "ledger"


@pytest.fixture
def sample_spec() -> ServiceSpec:
    return ServiceSpec(name="sample", application=Bank, projections=(Balances,), outbox=outbox)


async def test_a_service_serves_its_writes_publishes_them_and_another_service_consumes_them(
    settings: Settings, sample_spec: ServiceSpec, amqp_url: str, unique_name: str
) -> None:
    consumer = ledger_consumer(f"runtime-{unique_name}")
    ledger_spec = ServiceSpec(name="ledger", application=Ledger, consumers=(consumer,))
    ledger = ServiceRuntime(ledger_spec, settings, RabbitBus(amqp_url))
    await ledger.start()
    await ledger.pool.execute(LEDGER_DDL)
    sample = ServiceRuntime(sample_spec, settings, RabbitBus(amqp_url), gauge_interval=0.2)
    app = create_service_app(
        "sample",
        route_handlers=[open_account, credit, account],
        settings=settings,
        lifespan=[sample.lifespan],
        readiness_checks=sample.readiness_checks(),
    )
    try:
        async with AsyncTestClient(app=app) as client:
            opened = await client.post("/accounts", json={"owner": "Ada"})
            assert opened.status_code == 201
            account_id = opened.json()["accountId"]
            credited = await client.post(f"/accounts/{account_id}/credits", json={"amount": 42})
            assert credited.json() == {"accountId": account_id, "owner": "Ada", "balance": 42}
            missing = await client.get("/accounts/00000000-0000-0000-0000-000000000001")
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "ACCOUNT_NOT_FOUND"

            ready = await client.get("/ready")
            assert ready.status_code == 200, ready.text

            await eventually(lambda: _total(ledger, UUID(account_id), (42, 1)))
            lag = 'audifi_relay_lag{queue="outbox",service="sample"} 0.0'

            async def lag_reported() -> bool:  # at the gauges' next refresh
                return lag in (await client.get("/metrics")).text

            await eventually(lag_reported)
    finally:
        await ledger.stop()
        await delete_queues(amqp_url, consumer.name)


async def _total(runtime: ServiceRuntime, account_id: UUID, expected) -> bool:
    return await ledger_total(runtime.pool, account_id) == expected


async def test_readiness_names_the_database_when_it_is_gone(
    settings: Settings, sample_spec: ServiceSpec
) -> None:
    from audifi_kit.bus.inprocess import InProcessBus

    sample = ServiceRuntime(sample_spec, settings, InProcessBus())
    app = create_service_app(
        "sample",
        route_handlers=[account],
        settings=settings,
        lifespan=[sample.lifespan],
        readiness_checks=sample.readiness_checks(),
    )
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/ready")).status_code == 200
        dbname = sample.store.location.dbname
        admin = await asyncpg.connect(settings.database_url)  # the server's maintenance db
        try:
            # The service's database refuses connections and every open one is cut.
            await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                dbname,
            )
            down = await client.get("/ready")
            assert down.status_code == 503
            assert down.json()["error"]["code"] == "UNAVAILABLE"
            assert "database" in down.text
        finally:
            await admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
            await admin.close()

        async def ready_again() -> bool:
            return (await client.get("/ready")).status_code == 200

        await eventually(ready_again, within=15)


async def _ready(client: AsyncTestClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/ready")
    return response.status_code, response.json()


async def test_ready_reports_each_projection_lag_and_parked_events(
    settings: Settings, sample_spec: ServiceSpec
) -> None:
    from audifi_kit.bus.inprocess import InProcessBus

    sample = ServiceRuntime(sample_spec, settings, InProcessBus(), gauge_interval=0.1)
    app = create_service_app(
        "sample",
        route_handlers=[account],
        settings=settings,
        lifespan=[sample.lifespan],
        readiness_checks=sample.readiness_checks(),
    )
    async with AsyncTestClient(app=app) as client:
        status, body = await _ready(client)
        assert status == 200 and body["status"] == "ok", body
        assert body["checks"]["projections"]["details"]["projections"]["balances"]["parked"] == 0

        account_id = await sample.store.call(sample.store.app.open_account, "Ada")
        poison = await sample.store.call(rename, sample.store.app, account_id, POISON)

        async def parked_reported() -> bool:
            status, body = await _ready(client)
            view = body["checks"]["projections"]["details"]["projections"]["balances"]
            return status == 200 and view["parked"] == 1 and view["lag"] == 0

        await eventually(parked_reported, within=10)  # the view moved on: it serves
        status, body = await _ready(client)
        assert body["status"] == "degraded"
        check = body["checks"]["projections"]
        assert check["status"] == "degraded"
        assert check["details"]["projections"]["balances"] == {
            "position": poison,
            "head": poison,
            "lag": 0,
            "parked": 1,
            "stalled": False,
            "running": True,
        }

        labels = '{projection="balances",service="sample"}'

        async def gauges_set() -> bool:
            exposition = (await client.get("/metrics")).text
            return (
                f"audifi_projection_lag{labels} 0.0" in exposition
                and f"audifi_projection_parked_events{labels} 1.0" in exposition
            )

        await eventually(gauges_set, within=10)


async def test_a_stalled_projection_fails_readiness_until_it_moves_again(
    settings: Settings, sample_spec: ServiceSpec
) -> None:
    from audifi_kit.bus.inprocess import InProcessBus

    sample = ServiceRuntime(sample_spec, settings, InProcessBus(), stall_after=1.0)
    app = create_service_app(
        "sample",
        route_handlers=[account],
        settings=settings,
        lifespan=[sample.lifespan],
        readiness_checks=sample.readiness_checks(),
    )
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/ready")).status_code == 200
        blocker = await sample.store.connect()
        try:
            # Another session holds the view's position row: the runner's next step waits.
            transaction = blocker.transaction()
            await transaction.start()
            await blocker.execute(
                "SELECT position FROM kit_projection_positions WHERE name='balances' FOR UPDATE"
            )
            account_id = await sample.store.call(sample.store.app.open_account, "Ada")

            async def stalled() -> bool:
                return (await client.get("/ready")).status_code == 503

            await eventually(stalled, within=10)
            down = (await client.get("/ready")).json()
            assert down["error"]["code"] == "UNAVAILABLE"
            assert down["error"]["details"]["failing"] == ["projections"]
            view = down["error"]["details"]["checks"]["projections"]["details"]["projections"]
            assert view["balances"]["stalled"] is True and view["balances"]["lag"] >= 1
            await transaction.rollback()
        finally:
            await blocker.close()

        async def ready_again() -> bool:
            return (await client.get("/ready")).status_code == 200

        await eventually(ready_again, within=10)
        assert (await client.get(f"/accounts/{account_id}")).json()["owner"] == "Ada"
