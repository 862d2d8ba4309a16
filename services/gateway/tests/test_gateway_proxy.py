"""The HTTP proxy as a client sees it: routing, headers, streaming, failures and breakers."""

from __future__ import annotations

import dataclasses
import hashlib
import socket
from collections.abc import AsyncIterator

import pytest
from audifi_gateway.routes import Route, RouteTable
from audifi_kit.testing import eventually, served


def bearer(signer) -> dict[str, str]:
    return {"Authorization": f"Bearer {signer.token()}"}


async def test_an_unknown_route_is_a_404_envelope_with_the_request_id(gateway, client) -> None:
    for path in ("/api/v1/no-such-thing/1", "/api/v1/webhooks/stripe/%2e%2e/%2e%2e/ledger/entries"):
        response = await client.get(f"{gateway}{path}", headers={"X-Request-Id": "req-404"})
        assert response.status_code == 404
        assert response.json() == {
            "error": {"code": "NOT_FOUND", "message": "No such route", "details": {}},
            "requestId": "req-404",
        }
        assert response.headers["X-Request-Id"] == "req-404"


async def test_hop_by_hop_headers_do_not_cross_the_gateway(gateway, client, signer) -> None:
    response = await client.get(
        f"{gateway}/api/v1/content/1",
        headers={
            **bearer(signer),
            "Connection": "keep-alive, X-Hop",
            "X-Hop": "for this connection only",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "X-End-To-End": "kept",
        },
    )
    assert response.status_code == 200
    sent = {name for name, _ in response.json()["headers"]}
    assert {"x-hop", "keep-alive", "te", "proxy-authorization"}.isdisjoint(sent)
    assert "x-end-to-end" in sent
    # ... nor on the way back.
    assert response.headers["X-Upstream"] == "yes"
    assert "Proxy-Authenticate" not in response.headers
    assert "Keep-Alive" not in response.headers


async def test_a_large_upload_within_its_routes_limit_passes_through_unchanged(
    start_gateway, upstream_settings, client, signer, big_body
) -> None:
    chunk_size, chunks = big_body
    routes = RouteTable([Route("/content", "nft", max_body=chunk_size * chunks)])
    digest = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for i in range(chunks):
            chunk = bytes([(i * 7) % 256]) * chunk_size
            digest.update(chunk)
            yield chunk

    async with start_gateway(upstream_settings(), routes=routes) as gateway:
        response = await client.post(
            f"{gateway}/api/v1/content/upload", content=body(), headers=bearer(signer)
        )
    assert response.status_code == 200
    echo = response.json()
    assert echo["bodyLength"] == chunk_size * chunks
    assert echo["bodySha256"] == digest.hexdigest()


async def test_a_large_download_streams_through_unchanged(
    gateway, client, signer, big_body
) -> None:
    chunk_size, chunks = big_body
    expected = hashlib.sha256()
    for i in range(chunks):
        expected.update(bytes([i % 256]) * chunk_size)
    received, length = hashlib.sha256(), 0
    url = f"{gateway}/api/v1/masters/downloads/big"
    async with client.stream("GET", url, headers=bearer(signer)) as response:
        assert response.status_code == 200
        async for chunk in response.aiter_bytes():
            received.update(chunk)
            length += len(chunk)
    assert length == chunk_size * chunks
    assert received.hexdigest() == expected.hexdigest()


async def test_a_client_that_goes_away_mid_response_releases_the_upstream(
    gateway, client, signer, feed_log
) -> None:
    async with client.stream(
        "GET", f"{gateway}/api/v1/masters/feed", headers=bearer(signer)
    ) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            assert line == "tick"
            break
    # The client hung up; the gateway must not keep reading the endless feed for nobody.

    async def upstream_released() -> bool:
        return feed_log.reader_gone

    await eventually(upstream_released)


async def test_an_upstream_error_reaches_the_client_as_the_service_sent_it(
    gateway, client, signer
) -> None:
    response = await client.get(f"{gateway}/api/v1/masters/failing", headers=bearer(signer))
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "INTERNAL"


async def test_an_upstream_that_is_down_is_a_503(gateway, client, signer) -> None:
    url = f"{gateway}/api/v1/lottery/rounds/current"
    response = await client.get(url, headers=bearer(signer))
    assert response.status_code == 503
    body = response.json()
    assert body["error"]["code"] == "UNAVAILABLE"
    assert body["error"]["details"] == {"service": "coin"}
    assert body["requestId"] == response.headers["X-Request-Id"]


@pytest.fixture
async def silent_upstream() -> AsyncIterator[int]:
    """A port that accepts connections and never answers: a hung service."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


async def test_an_upstream_that_hangs_is_a_503_after_the_routes_timeout(
    start_gateway, upstream_settings, client, signer, silent_upstream
) -> None:
    routes = RouteTable([Route("/payouts", "payment", timeout=0.3)])
    settings = upstream_settings(urls={"payment": f"http://127.0.0.1:{silent_upstream}"})
    async with start_gateway(settings, routes=routes) as url:
        response = await client.post(f"{url}/api/v1/payouts/initiate", headers=bearer(signer))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "UNAVAILABLE"


async def test_the_breaker_opens_on_a_dead_upstream_and_closes_when_it_returns(
    start_gateway,
    upstream_settings,
    gateway_config,
    client,
    signer,
    dead_port,
    make_nft_app,
) -> None:
    config = dataclasses.replace(gateway_config, breaker_failures=2, breaker_cooldown=1.0)
    coin = f"http://127.0.0.1:{dead_port}"
    async with start_gateway(upstream_settings(urls={"coin": coin}), config=config) as url:
        target, auth = f"{url}/api/v1/coins/a1", bearer(signer)
        for _ in range(2):  # connection refused, twice
            response = await client.get(target, headers=auth)
            assert response.status_code == 503
            assert "circuit" not in response.json()["error"]["details"]

        refused = await client.get(target, headers=auth)
        assert refused.status_code == 503
        assert refused.json()["error"]["details"] == {"service": "coin", "circuit": "open"}
        assert int(refused.headers["Retry-After"]) >= 1
        metrics = (await client.get(f"{url}/metrics")).text
        assert 'audifi_gateway_breaker_state{upstream="coin"} 2.0' in metrics

        async with served(make_nft_app(), port=dead_port):  # the service is back

            async def answered() -> bool:
                return (await client.get(target, headers=auth)).status_code != 503

            await eventually(answered)
            assert (await client.get(target, headers=auth)).status_code != 503
            metrics = (await client.get(f"{url}/metrics")).text
            assert 'audifi_gateway_breaker_state{upstream="coin"} 0.0' in metrics
            failures = 'proxied_requests_total{method="GET",status="503",upstream="coin"}'
            assert failures in metrics


async def test_cors_preflights_are_answered_by_the_gateway(
    start_gateway, upstream_settings, gateway_config, client, signer
) -> None:
    config = dataclasses.replace(gateway_config, cors_origins=("https://app.audifi.test",))
    async with start_gateway(upstream_settings(), config=config) as url:
        preflight = await client.options(
            f"{url}/api/v1/content/1",
            headers={
                "Origin": "https://app.audifi.test",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.audifi.test"
        assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()

        stranger = await client.options(
            f"{url}/api/v1/content/1",
            headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"},
        )
        assert "Access-Control-Allow-Origin" not in stranger.headers

        # Not a preflight (no Origin): the gateway says what the path takes, as without CORS.
        plain = await client.options(f"{url}/api/v1/chain")
        assert plain.status_code == 204
        assert plain.headers["Allow"] == "GET, HEAD, OPTIONS"

        # An actual cross-origin call, even a refused one, carries the CORS headers.
        refused = await client.get(
            f"{url}/api/v1/content/1", headers={"Origin": "https://app.audifi.test"}
        )
        assert refused.status_code == 401
        assert refused.headers["Access-Control-Allow-Origin"] == "https://app.audifi.test"
        assert "X-Request-Id" in refused.headers["Access-Control-Expose-Headers"]
