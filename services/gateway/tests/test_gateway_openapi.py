"""The merged OpenAPI document, its docs page and the upstream health page."""

from __future__ import annotations

from typing import Any


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
