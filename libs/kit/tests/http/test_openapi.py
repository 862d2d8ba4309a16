"""A service's OpenAPI documents the errors it really answers, in the envelope it answers with."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import msgspec
import pytest
from audifi_kit.errors import Conflict, RateLimited
from audifi_kit.http import require_roles
from audifi_kit.http.openapi import ERROR_ENVELOPE_REF, error_envelope_components
from jwks_support import AUDIENCE, ISSUER
from litestar import get, put
from litestar.exceptions import NotAuthorizedException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.testing import AsyncTestClient
from service_app import MasterNotFound, Payments, build_app, payment_routes


class TooManyPlays(RateLimited):
    code = "TOO_MANY_PLAYS"


class AlreadyVoted(Conflict):
    code = "ALREADY_VOTED"


class Vote(msgspec.Struct):
    choice: str


@get("/plain", sync_to_thread=False)
def plain() -> dict[str, Any]:
    return {}


@put("/votes/{vote_id:str}", raises=[AlreadyVoted, TooManyPlays, MasterNotFound])
async def vote(vote_id: FromPath[str], data: JSONBody[Vote]) -> dict[str, Any]:
    return {"id": vote_id, "choice": data.choice}


@get(
    "/legacy",
    opt={"public": True},
    raises=[NotAuthorizedException],
    responses={404: ResponseSpec(None, description="Gone for good")},
    sync_to_thread=False,
)
def legacy() -> None:
    return None


@get("/admin/only", guards=[require_roles("admin")], sync_to_thread=False)
def admin_only() -> None:
    return None


def from_loopback(connection: Any, _: Any) -> None:
    del connection


@get("/local", opt={"public": True}, guards=[from_loopback], sync_to_thread=False)
def local_only() -> None:
    return None


@pytest.fixture
async def document() -> dict[str, Any]:
    app = build_app(
        route_handlers=[plain, vote, legacy, admin_only, local_only, *payment_routes(Payments())]
    )
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()


def statuses(document: dict[str, Any], path: str, method: str = "get") -> set[int]:
    return {int(s) for s in document["paths"][path][method]["responses"] if s != "default"}


def errors(document: dict[str, Any], path: str, method: str = "get") -> set[int]:
    return {s for s in statuses(document, path, method) if s >= 400}


async def test_each_operation_documents_the_statuses_the_kit_can_answer(document) -> None:
    # public, a path parameter: invalid (400), absent (404), failing (500)
    assert errors(document, "/masters/{master_id}") == {400, 404, 500}
    # public, a body: invalid, too large, not JSON
    assert errors(document, "/masters", "post") == {400, 413, 415, 500}
    # public, a query parameter
    assert errors(document, "/masters") == {400, 500}
    # authenticated, nothing to validate: the token (401) and the caller's roles (403)
    assert errors(document, "/plain") == {401, 403, 500}
    assert errors(document, "/admin/only") == {401, 403, 500}
    # public, but a guard decides who may call
    assert errors(document, "/local") == {403, 500}
    # idempotent: a reused Idempotency-Key with another body (409), a malformed one (400)
    assert errors(document, "/payments", "post") == {400, 409, 413, 415, 500}
    assert errors(document, "/payments/mine", "post") == {400, 401, 403, 409, 413, 415, 500}


async def test_a_handler_declares_more_with_raises_and_each_status_names_its_codes(
    document,
) -> None:
    assert errors(document, "/votes/{vote_id}", "put") == {
        400, 401, 403, 404, 409, 413, 415, 429, 500,
    }  # fmt: skip
    responses = document["paths"]["/votes/{vote_id}"]["put"]["responses"]
    assert "ALREADY_VOTED" in responses["409"]["description"]
    assert "TOO_MANY_PLAYS" in responses["429"]["description"]
    assert "MASTER_NOT_FOUND" in responses["404"]["description"]
    # Litestar's own exceptions are documented as the envelope that answers them.
    legacy_responses = document["paths"]["/legacy"]["get"]["responses"]
    assert "UNAUTHORIZED" in legacy_responses["401"]["description"]
    # A handler's own `responses=` entry wins over the generated one.
    assert legacy_responses["404"]["description"] == "Gone for good"


async def test_every_error_response_is_the_one_envelope_never_litestars_shape(document) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["ErrorEnvelope"] == error_envelope_components()["ErrorEnvelope"]
    assert set(schemas["ErrorEnvelope"]["required"]) == {"error", "requestId"}
    error = schemas[schemas["ErrorEnvelope"]["properties"]["error"]["$ref"].rsplit("/", 1)[1]]
    assert set(error["required"]) == {"code", "message", "details"}
    documented = 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) < 400 or (path, status) == ("/legacy", "404"):
                    continue
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_ENVELOPE_REF}, (method, path, status)
                documented += 1
    assert documented > 30
    assert "status_code" not in str(document)  # Litestar's {status_code, detail, extra}


def conforms(document: dict[str, Any], path: str, method: str, response: Any) -> None:
    """The response's status is documented for the operation and its body fits the schema."""
    responses = document["paths"][path][method]["responses"]
    assert str(response.status_code) in responses, (path, response.status_code, response.text)
    schema = responses[str(response.status_code)]["content"]["application/json"]["schema"]
    jsonschema_rs.validate({**schema, "components": document["components"]}, response.json())


async def test_the_errors_a_service_really_answers_are_the_ones_documented(
    document, jwks_server, signing_key
) -> None:
    app = build_app(
        route_handlers=[plain, admin_only],
        jwks_url=jwks_server.url,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    )
    fan = {"Authorization": f"Bearer {signing_key.token('u-1', roles=('fan',))}"}
    async with AsyncTestClient(app=app) as client:
        not_found = await client.get("/masters/404", headers=fan)
        invalid_query = await client.get("/masters?limit=0", headers=fan)
        invalid_body = await client.post("/masters", json={"title": 1}, headers=fan)
        no_token = await client.get("/plain")
        wrong_role = await client.get("/admin/only", headers=fan)
        failing = await client.get("/boom")
    conforms(document, "/masters/{master_id}", "get", not_found)
    conforms(document, "/masters", "get", invalid_query)
    conforms(document, "/masters", "post", invalid_body)
    conforms(document, "/plain", "get", no_token)
    conforms(document, "/admin/only", "get", wrong_role)
    conforms(document, "/boom", "get", failing)
    assert [r.status_code for r in (not_found, invalid_query, invalid_body)] == [404, 400, 400]
    assert [r.status_code for r in (no_token, wrong_role, failing)] == [401, 403, 500]
