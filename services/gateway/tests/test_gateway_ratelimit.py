"""Rate limits: per user (else per IP) and route class, shared by every gateway replica."""

from __future__ import annotations

import dataclasses

import httpx
from audifi_gateway.ratelimit import RateLimit


def assert_rate_limited(response: httpx.Response, window: int) -> None:
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= window
    body = response.json()
    assert body["error"]["code"] == "RATE_LIMITED"
    assert body["requestId"] == response.headers["X-Request-Id"]


async def test_replicas_on_one_redis_share_a_users_budget(
    start_gateway, upstream_settings, gateway_config, client, signer, redis_url, redis_cleanup
) -> None:
    config = dataclasses.replace(
        gateway_config, rate_limits={**gateway_config.rate_limits, "default": RateLimit(3, 60)}
    )
    settings = upstream_settings(redis_url=redis_url)
    fan = {"Authorization": f"Bearer {signer.token('fan-1')}"}
    other = {"Authorization": f"Bearer {signer.token('fan-2')}"}
    async with (
        start_gateway(settings, config=config) as one,
        start_gateway(settings, config=config) as two,
    ):
        for url in (one, two, one):
            assert (await client.get(f"{url}/api/v1/content/1", headers=fan)).status_code == 200

        assert_rate_limited(await client.get(f"{two}/api/v1/content/1", headers=fan), 60)
        assert_rate_limited(await client.get(f"{one}/api/v1/content/1", headers=fan), 60)
        # Another user has a budget of their own.
        assert (await client.get(f"{two}/api/v1/content/1", headers=other)).status_code == 200


async def test_public_routes_are_limited_per_client_address_and_class(
    start_gateway, upstream_settings, gateway_config, client, signer
) -> None:
    config = dataclasses.replace(
        gateway_config, rate_limits={**gateway_config.rate_limits, "auth": RateLimit(2, 30)}
    )
    async with start_gateway(upstream_settings(), config=config) as url:
        for _ in range(2):
            response = await client.post(f"{url}/api/v1/auth/login", json={})
            assert response.status_code == 200
        assert_rate_limited(await client.post(f"{url}/api/v1/auth/magic-link", json={}), 30)
        # The `auth` budget is spent; reading content draws on `default`.
        fan = {"Authorization": f"Bearer {signer.token()}"}
        assert (await client.get(f"{url}/api/v1/content/1", headers=fan)).status_code == 200
