"""The merged OpenAPI document, its docs page and the upstream health page."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
from audifi_gateway.openapi import merge
from audifi_gateway.routes import RouteTable
from audifi_kit.http.openapi import error_envelope_components


async def test_the_merged_document_lists_each_service_under_api_v1(gateway, client) -> None:
    response = await client.get(f"{gateway}/api/v1/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()

    card = document["paths"]["/api/v1/masters/{master_id}/card"]["get"]
    assert card["tags"] == ["nft"]
    assert card["security"] == [{"bearerAuth": []}]
    assert "/api/v1/users/{user_id}/card" in document["paths"]
    assert {t["name"] for t in document["tags"]} == {"auth", "nft", "vstudio"}
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


async def test_components_of_the_same_name_are_kept_apart(gateway, client) -> None:
    document = (await client.get(f"{gateway}/api/v1/openapi.json")).json()
    schemas = document["components"]["schemas"]

    def schema_of(path: str) -> dict[str, Any]:
        ok = document["paths"][path]["get"]["responses"]["200"]
        ref = ok["content"]["application/json"]["schema"]["$ref"]
        return schemas[ref.rsplit("/", 1)[1]]

    assert set(schema_of("/api/v1/users/{user_id}/card")["properties"]) == {"userId", "email"}
    assert set(schema_of("/api/v1/masters/{master_id}/card")["properties"]) == {"masterId", "title"}
    assert {"Card", "nft_Card"} <= set(schemas)


async def test_a_service_that_is_down_is_listed_not_fatal(gateway, client) -> None:
    document = (await client.get(f"{gateway}/api/v1/openapi.json")).json()
    assert document["x-audifi-unavailable"] == ["coin", "payment", "analytics", "notify"]
    assert "coin" in document["info"]["description"]


async def test_the_docs_page_reads_the_merged_document(gateway, client) -> None:
    response = await client.get(f"{gateway}/api/v1/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'fetch("openapi.json")' in response.text


async def test_admin_health_reports_each_upstream_and_is_503_when_one_is_down(
    gateway, client
) -> None:
    response = await client.get(f"{gateway}/api/v1/admin/health")
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "degraded"
    services = report["services"]
    assert set(services) == {"auth", "nft", "vstudio", "coin", "payment", "analytics", "notify"}
    assert services["nft"]["status"] == "up" and services["coin"]["status"] == "down"
    assert all(isinstance(s["latencyMs"], float | int) for s in services.values())


async def test_admin_health_is_200_when_every_upstream_is_up(
    start_gateway, upstream_settings, nft_url, client
) -> None:
    everyone = {name: nft_url for name in ("coin", "payment", "analytics", "notify")}
    async with start_gateway(upstream_settings(urls=everyone)) as url:
        response = await client.get(f"{url}/api/v1/admin/health")
    assert response.status_code == 200
    report = response.json()
    assert report["status"] == "ok"
    assert {s["status"] for s in report["services"].values()} == {"up"}


def _error_responses(document: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (method, path, status, response)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "responses" in operation
        for status, response in operation["responses"].items()
        if int(status) >= 400
    ]


async def test_every_error_is_documented_as_the_one_envelope_with_the_gateways_own(
    gateway, client
) -> None:
    document = (await client.get(f"{gateway}/api/v1/openapi.json")).json()
    schemas = document["components"]["schemas"]
    assert [name for name in schemas if "ErrorEnvelope" in name] == ["ErrorEnvelope"]
    assert set(schemas["ErrorEnvelope"]["required"]) == {"error", "requestId"}
    errors = _error_responses(document)
    assert errors, "no error response documented"
    for method, path, status, response in errors:
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (method, path, status)

    # nft's own (a path parameter: 404), the gateway's (limits, breakers, framing) and, on a
    # route the gateway authenticates though the service's handler is public, 401.
    card = document["paths"]["/api/v1/masters/{master_id}/card"]["get"]["responses"]
    assert {"400", "401", "404", "414", "429", "500", "503"} <= set(card)
    assert "RATE_LIMITED" in card["429"]["description"]
    users = document["paths"]["/api/v1/users/{user_id}/card"]["get"]["responses"]
    assert {"401", "404", "429", "503"} <= set(users)


async def test_an_error_the_gateway_answers_fits_the_schema_it_documents(gateway, client) -> None:
    document = (await client.get(f"{gateway}/api/v1/openapi.json")).json()
    response = await client.get(f"{gateway}/api/v1/masters/7/card")  # no token
    assert response.status_code == 401
    documented = document["paths"]["/api/v1/masters/{master_id}/card"]["get"]["responses"]
    schema = documented["401"]["content"]["application/json"]["schema"]
    jsonschema_rs.validate({**schema, "components": document["components"]}, response.json())


def test_a_service_documenting_errors_otherwise_keeps_them_and_gains_the_envelope() -> None:
    """A service not built with the kit (or an older kit) still gets the gateway's errors, and
    the envelope component they refer to, beside its own differently named one."""
    theirs = {
        "paths": {
            "/chain": {
                "get": {
                    "responses": {
                        "200": {"description": "ok"},
                        "502": {"description": "node down"},
                    }
                }
            },
            "/masters": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {}}}},
                    "responses": {"200": {"description": "ok"}},
                }
            },
        },
        "components": {"schemas": {"ErrorEnvelope": {"type": "string"}}},
    }
    document = merge(RouteTable(), {"nft": theirs})
    chain = document["paths"]["/api/v1/chain"]["get"]["responses"]
    assert chain["502"] == {"description": "node down"}
    assert {"400", "414", "429", "500", "503"} <= set(chain) and "401" not in chain
    masters = document["paths"]["/api/v1/masters"]["post"]["responses"]
    # an authenticated route, with a body
    assert {"401", "408", "413", "429", "503"} <= set(masters)
    schemas = document["components"]["schemas"]
    assert schemas["ErrorEnvelope"] == error_envelope_components()["ErrorEnvelope"]
    assert schemas["nft_ErrorEnvelope"] == {"type": "string"}
