"""Every error a client can meet arrives in the one envelope (ARCHITECTURE.md §7)."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient
from service_app import build_app


@pytest.fixture
async def client():
    async with AsyncTestClient(app=build_app()) as client:
        yield client


def assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "requestId"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["requestId"] == response.headers["x-request-id"]
    return body


async def test_a_domain_error_keeps_its_own_code_and_details(client) -> None:
    body = assert_envelope(await client.get("/masters/404"), 404, "MASTER_NOT_FOUND")
    assert body["error"]["message"] == "Master 404 does not exist"
    assert body["error"]["details"] == {"id": 404}


async def test_an_invalid_body_field_is_a_validation_error_naming_the_field(client) -> None:
    response = await client.post("/masters", json={"title": "Song", "shareCount": "many"})
    body = assert_envelope(response, 400, "VALIDATION_ERROR")
    [field] = body["error"]["details"]["fields"]
    assert field["field"] == "shareCount"
    assert field["source"] == "body"


@pytest.mark.parametrize("count", [100.0, "100", 1e2, True])
async def test_a_json_body_is_typed_strictly_a_float_or_a_string_is_not_an_integer(
    client, count
) -> None:
    # Litestar alone converts leniently (100.0 and "100" become 100): never for money.
    response = await client.post("/masters", json={"title": "Song", "shareCount": count})
    body = assert_envelope(response, 400, "VALIDATION_ERROR")
    [field] = body["error"]["details"]["fields"]
    assert (field["field"], field["source"]) == ("shareCount", "body")
    assert "Expected `int`" in field["message"]


async def test_a_missing_body_field_is_a_validation_error_naming_the_field(client) -> None:
    body = assert_envelope(
        await client.post("/masters", json={"title": "Song"}), 400, "VALIDATION_ERROR"
    )
    [field] = body["error"]["details"]["fields"]
    assert field["field"] == "shareCount"
    assert field["source"] == "body"


async def test_malformed_json_is_a_validation_error(client) -> None:
    response = await client.post(
        "/masters", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_envelope(response, 400, "VALIDATION_ERROR")


async def test_bad_path_and_query_parameters_are_validation_errors(client) -> None:
    body = assert_envelope(await client.get("/masters?limit=0"), 400, "VALIDATION_ERROR")
    assert body["error"]["details"]["fields"][0]["field"] == "limit"
    assert body["error"]["details"]["fields"][0]["source"] == "query"
    body = assert_envelope(await client.get("/masters?limit=abc"), 400, "VALIDATION_ERROR")
    assert body["error"]["details"]["fields"][0]["field"] == "limit"


async def test_a_path_parameter_of_the_wrong_type_matches_no_route(client) -> None:
    # Litestar routes by parameter type: /masters/abc matches no `{master_id:int}` route.
    assert_envelope(await client.get("/masters/abc"), 404, "NOT_FOUND")


async def test_an_unknown_route_is_not_found(client) -> None:
    assert_envelope(await client.get("/no/such/route"), 404, "NOT_FOUND")


async def test_a_wrong_method_is_method_not_allowed(client) -> None:
    response = await client.delete("/masters")
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response.headers.get("allow", "")


async def test_a_lost_concurrency_race_is_a_conflict(client) -> None:
    assert_envelope(await client.get("/race"), 409, "CONFLICT")


async def test_an_unexpected_exception_is_internal_and_reveals_nothing(client) -> None:
    response = await client.get("/boom")
    body = assert_envelope(response, 500, "INTERNAL")
    for leaked in ("hunter2", "RuntimeError", "Traceback", "postgresql", "boom"):
        assert leaked not in response.text
    assert body["error"]["details"] == {}
