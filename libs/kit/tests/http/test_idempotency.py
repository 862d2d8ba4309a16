"""`Idempotency-Key` on money-moving POSTs, stored in the service's real PostgreSQL (§9)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from audifi_kit.app_state import DB_POOL_STATE_KEY
from jwks_support import SigningKey
from litestar import Litestar
from litestar.testing import AsyncTestClient, TestClient
from service_app import Payments, build_app, payment_routes

PAYMENT = {"amountMinor": 500, "currency": "EUR"}


def payment_app(database_url: str, payments: Payments, **kwargs) -> Litestar:
    @asynccontextmanager
    async def read_models(app: Litestar) -> AsyncIterator[None]:
        # As a service does: the pool is made on the app's own loop, in its lifespan.
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
        app.state[DB_POOL_STATE_KEY] = pool
        try:
            yield
        finally:
            await pool.close()

    return build_app(route_handlers=payment_routes(payments), lifespan=[read_models], **kwargs)


@pytest.fixture
def payments() -> Payments:
    return Payments()


@pytest.fixture
async def client(fresh_database: str, payments: Payments):
    async with AsyncTestClient(app=payment_app(fresh_database, payments)) as client:
        yield client


async def test_a_repeated_request_gets_the_first_response_without_running_again(
    client, payments: Payments
) -> None:
    key = {"Idempotency-Key": "pay-1"}
    first = await client.post("/payments", json=PAYMENT, headers=key)
    again = await client.post("/payments", json=PAYMENT, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content == b'{"paymentId":1,"amountMinor":500}'
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["x-request-id"] != first.headers["x-request-id"]
    assert payments.executed == 1


async def test_another_key_or_no_key_runs_the_request_again(client, payments: Payments) -> None:
    await client.post("/payments", json=PAYMENT, headers={"Idempotency-Key": "a"})
    other = await client.post("/payments", json=PAYMENT, headers={"Idempotency-Key": "b"})
    unkeyed = await client.post("/payments", json=PAYMENT)
    assert other.json()["paymentId"] == 2
    assert unkeyed.json()["paymentId"] == 3


async def test_reusing_a_key_for_another_body_is_a_conflict(client, payments: Payments) -> None:
    key = {"Idempotency-Key": "pay-2"}
    await client.post("/payments", json=PAYMENT, headers=key)
    response = await client.post("/payments", json=PAYMENT | {"amountMinor": 501}, headers=key)
    assert response.status_code == 409
    body = response.json()
    assert body["error"]["code"] == "CONFLICT"
    assert body["error"]["details"] == {"idempotencyKey": "pay-2"}
    assert body["requestId"] == response.headers["x-request-id"]
    assert payments.executed == 1


async def test_a_repeat_while_the_first_still_runs_is_a_conflict_on_any_replica(
    fresh_database: str, payments: Payments
) -> None:
    key = {"Idempotency-Key": "slow-1"}
    # Two replicas of the service on one database; the first request is held in its handler.
    with TestClient(app=payment_app(fresh_database, payments)) as replica_a:
        first = asyncio.create_task(
            asyncio.to_thread(replica_a.post, "/payments/slow", json=PAYMENT, headers=key)
        )
        assert await asyncio.to_thread(payments.entered.wait, 10)
        async with AsyncTestClient(app=payment_app(fresh_database, payments)) as replica_b:
            during = await replica_b.post("/payments/slow", json=PAYMENT, headers=key)
            payments.release.set()
            finished = await first
            after = await replica_b.post("/payments/slow", json=PAYMENT, headers=key)
    assert during.status_code == 409
    assert during.json()["error"]["code"] == "CONFLICT"
    assert "in progress" in during.json()["error"]["message"]
    assert finished.status_code == 201
    assert after.status_code == 201 and after.headers["idempotent-replayed"] == "true"
    assert after.content == finished.content
    assert payments.executed == 1


async def test_a_server_error_releases_the_key_so_the_client_may_retry(
    client, payments: Payments
) -> None:
    key = {"Idempotency-Key": "flaky-1"}
    failed = await client.post("/payments/flaky", json=PAYMENT, headers=key)
    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "INTERNAL"
    retried = await client.post("/payments/flaky", json=PAYMENT, headers=key)
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    replayed = await client.post("/payments/flaky", json=PAYMENT, headers=key)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == retried.json()
    assert payments.executed == 2


async def test_a_lost_concurrency_race_releases_the_key_so_the_client_may_retry(
    client, payments: Payments
) -> None:
    key = {"Idempotency-Key": "raced-1"}
    lost = await client.post("/payments/raced", json=PAYMENT, headers=key)
    assert lost.status_code == 409
    assert lost.json()["error"]["code"] == "CONFLICT"
    assert lost.headers["retry-after"] == "0"
    retried = await client.post("/payments/raced", json=PAYMENT, headers=key)
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert payments.executed == 2


async def test_a_client_error_is_final_and_replayed(client, payments: Payments) -> None:
    key = {"Idempotency-Key": "refused-1"}
    first = await client.post("/payments/refused", json=PAYMENT, headers=key)
    again = await client.post("/payments/refused", json=PAYMENT, headers=key)
    assert first.status_code == again.status_code == 400
    assert again.content == first.content
    assert again.json()["error"]["code"] == "VALIDATION_ERROR"
    assert again.headers["idempotent-replayed"] == "true"
    assert payments.executed == 1


async def test_routes_not_opted_in_ignore_the_key(client, payments: Payments) -> None:
    key = {"Idempotency-Key": "tip-1"}
    first = await client.post("/tips", json=PAYMENT, headers=key)
    again = await client.post("/tips", json=PAYMENT, headers=key)
    assert (first.json()["tipId"], again.json()["tipId"]) == (1, 2)
    assert "idempotent-replayed" not in again.headers


async def test_an_insane_key_is_a_validation_error(client, payments: Payments) -> None:
    response = await client.post("/payments", json=PAYMENT, headers={"Idempotency-Key": "a b"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert payments.executed == 0


async def test_keys_are_scoped_per_caller(
    fresh_database: str, payments: Payments, jwks_server, signing_key: SigningKey
) -> None:
    app = payment_app(fresh_database, payments, jwks_url=jwks_server.url)
    key = "same-key"
    async with AsyncTestClient(app=app) as client:
        responses = [
            await client.post(
                "/payments/mine",
                json=PAYMENT,
                headers={
                    "Idempotency-Key": key,
                    "Authorization": f"Bearer {signing_key.token(user)}",
                },
            )
            for user in ("alice", "bob", "alice")
        ]
    assert [r.json()["userId"] for r in responses] == ["alice", "bob", "alice"]
    assert [r.json()["paymentId"] for r in responses] == [1, 2, 1]
    assert responses[2].headers["idempotent-replayed"] == "true"
