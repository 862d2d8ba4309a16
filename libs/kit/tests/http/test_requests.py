"""Request ids reach the client, the logs and the events; metrics, health, readiness."""

from __future__ import annotations

import io
import json
import re
import uuid
from typing import Any

import pytest
from audifi_kit.eventstore import EventStore
from audifi_kit.http import configure_logging, metrics
from audifi_kit.notifications import NotificationLog
from kit_sample import Bank
from litestar import post
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient
from service_app import build_app


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


async def test_a_sane_client_request_id_is_echoed_and_logged() -> None:
    stream = io.StringIO()
    configure_logging("testsvc", "INFO", stream=stream)
    async with AsyncTestClient(app=build_app()) as client:
        response = await client.get("/masters/404", headers={"X-Request-Id": "req-abc.123_x"})
    assert response.headers["x-request-id"] == "req-abc.123_x"
    assert response.json()["requestId"] == "req-abc.123_x"
    [access] = [line for line in log_lines(stream) if line["event"] == "request"]
    assert access["request_id"] == "req-abc.123_x"
    assert access["service"] == "testsvc"
    assert access["route"] == "/masters/{master_id}"
    assert access["status"] == 404


@pytest.mark.parametrize(
    "sent", [None, "", "has spaces", "x" * 129, "semi;colon", "ünïcode".encode()]
)
async def test_a_missing_or_insane_request_id_is_replaced_by_a_new_one(sent) -> None:
    headers = {"X-Request-Id": sent} if sent is not None else {}
    async with AsyncTestClient(app=build_app()) as client:
        response = await client.get("/no/such/route", headers=headers)
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert response.json()["requestId"] == request_id


async def test_an_unhandled_exception_is_logged_with_its_request_id_and_no_secrets() -> None:
    stream = io.StringIO()
    configure_logging("testsvc", "INFO", stream=stream)
    async with AsyncTestClient(app=build_app()) as client:
        response = await client.get(
            "/boom", headers={"X-Request-Id": "boom-1", "Authorization": "Bearer s3cr3t"}
        )
    assert response.status_code == 500
    [error] = [line for line in log_lines(stream) if line["event"] == "unhandled_exception"]
    assert error["request_id"] == "boom-1"
    assert "RuntimeError" in error["exception"]
    assert "s3cr3t" not in stream.getvalue()


def test_log_lines_never_carry_credentials() -> None:
    import structlog

    stream = io.StringIO()
    configure_logging("testsvc", "INFO", stream=stream)
    structlog.get_logger("t").info(
        "login", authorization="Bearer abc", password="pw", headers={"cookie": "c=1"}, user="u"
    )
    [line] = log_lines(stream)
    assert line["authorization"] == line["password"] == "***"
    assert line["headers"] == {"cookie": "***"}
    assert line["user"] == "u"


async def test_events_saved_by_a_request_carry_its_request_id(bank: EventStore[Bank]) -> None:
    @post("/accounts", opt={"public": True})
    async def open_account(data: JSONBody[dict[str, str]]) -> dict[str, str]:
        account_id = await bank.call(bank.app.open_account, data["owner"])
        return {"id": str(account_id)}

    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with AsyncTestClient(app=build_app(route_handlers=[open_account])) as client:
        response = await client.post(
            "/accounts",
            json={"owner": "ada"},
            headers={"X-Request-Id": "open-ada-1", "traceparent": traceparent},
        )
    assert response.status_code == 201, response.text
    conn = await bank.connect()
    try:
        [notification] = await NotificationLog(bank.table).read(conn, 0, 10)
    finally:
        await conn.close()
    event, event_meta = bank.decode(notification)
    assert str(event.originator_id) == response.json()["id"]
    assert event_meta.correlation_id == "open-ada-1"
    assert event_meta.causation_id == "open-ada-1"
    assert event_meta.traceparent == traceparent


async def test_metrics_count_requests_by_route_template_not_raw_path() -> None:
    async with AsyncTestClient(app=build_app()) as client:
        for master_id in (1, 2, 404):
            await client.get(f"/masters/{master_id}")
        await client.get(f"/unknown/{uuid.uuid4()}")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    ok = (
        'audifi_http_requests_total{method="GET",route="/masters/{master_id}",'
        'service="testsvc",status="200"}'
    )
    assert re.search(re.escape(ok) + r" [2-9]", text)
    assert 'route="/masters/{master_id}",service="testsvc",status="404"' in text
    assert 'route="<unmatched>",service="testsvc",status="404"' in text
    assert "audifi_http_request_duration_seconds_bucket" in text
    assert "/masters/1" not in text and "/unknown/" not in text


def test_background_gauges_are_published_with_service_and_queue_labels() -> None:
    from prometheus_client import REGISTRY, generate_latest

    metrics.relay_lag.labels(service="testsvc", queue="audifi.events").set(7)
    metrics.consumer_lag.labels(service="testsvc", queue="testsvc.sample").set(3)
    metrics.parked_messages.labels(service="testsvc", queue="testsvc.sample").set(1)
    text = generate_latest(REGISTRY).decode()
    assert 'audifi_relay_lag{queue="audifi.events",service="testsvc"} 7.0' in text
    assert 'audifi_consumer_lag{queue="testsvc.sample",service="testsvc"} 3.0' in text
    assert 'audifi_parked_messages{queue="testsvc.sample",service="testsvc"} 1.0' in text


async def test_health_is_ok_and_ready_runs_every_check() -> None:
    async def database() -> None:
        return None

    async def broker() -> None:
        return None

    app = build_app(readiness_checks={"database": database, "broker": broker})
    async with AsyncTestClient(app=app) as client:
        health = await client.get("/health")
        ready = await client.get("/ready")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"
    assert {n: c["status"] for n, c in ready.json()["checks"].items()} == {
        "database": "ok",
        "broker": "ok",
    }


async def test_ready_is_unavailable_naming_failing_and_hanging_checks() -> None:
    import asyncio

    async def database() -> None:
        return None

    async def broker() -> None:
        raise ConnectionError("amqp://guest:secret@rabbit refused")

    async def chain() -> None:
        await asyncio.sleep(10)

    app = build_app(
        readiness_checks={"database": database, "broker": broker, "chain": chain},
        readiness_timeout=0.2,
    )
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["error"]["code"] == "UNAVAILABLE"
    assert body["error"]["details"]["failing"] == ["broker", "chain"]
    assert body["error"]["details"]["checks"]["chain"]["reason"] == "timeout"
    assert body["error"]["details"]["checks"]["database"]["status"] == "ok"
    assert "secret" not in response.text


async def test_openapi_schema_is_served_under_schema() -> None:
    async with AsyncTestClient(app=build_app()) as client:
        response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/masters/{master_id}" in paths
    assert "/health" not in paths
