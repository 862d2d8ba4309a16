"""Edge authentication: only verified, unrevoked callers reach a service, with their identity."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from audifi_events.auth import SessionRevoked
from audifi_events.registry import encode
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.bus.rabbitmq import RabbitBus
from audifi_kit.messages import Message
from audifi_kit.testing import eventually


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def headers_seen(echo: dict[str, Any]) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = {}
    for name, value in echo["headers"]:
        seen.setdefault(name, []).append(value)
    return seen


def assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert body["error"]["code"] == "UNAUTHORIZED"
    assert body["requestId"] == response.headers["X-Request-Id"]
    return body


def revocation(session_id: str, user_id: str = "user-1") -> Message:
    now = datetime.now(UTC)
    event = SessionRevoked(
        session_id=session_id,
        account_id=user_id,
        revoked_at=now,
        access_tokens_valid_until=now + timedelta(minutes=15),
        reason="logout",
    )
    return Message(
        message_id=f"auth-{uuid.uuid4().hex}",
        routing_key=SessionRevoked.routing_key,
        body=encode(event),
        schema_version=SessionRevoked.schema_version,
    )


async def test_a_request_without_a_token_is_refused(gateway, client) -> None:
    body = assert_unauthorized(await client.get(f"{gateway}/api/v1/content/42"))
    assert body["error"]["message"] == "A bearer access token is required"


async def test_a_forged_token_is_refused(gateway, client, signer, other_signer) -> None:
    other_signer.kid = signer.kid  # claims auth's key id, signed with another key
    response = await client.get(
        f"{gateway}/api/v1/content/42", headers=bearer(other_signer.token())
    )
    assert_unauthorized(response)


async def test_an_expired_token_is_refused(gateway, client, signer) -> None:
    response = await client.get(
        f"{gateway}/api/v1/content/42", headers=bearer(signer.token(ttl=-5))
    )
    assert assert_unauthorized(response)["error"]["message"] == "Access token expired"


async def test_a_valid_token_reaches_the_service_with_the_verified_identity(
    gateway, client, signer
) -> None:
    token = signer.token("user-7", roles=("fan", "artist"))
    response = await client.get(
        f"{gateway}/api/v1/content/42?status=unlocked",
        headers={**bearer(token), "X-Request-Id": "req-edge-1", "X-User-Id": "someone-else"},
    )
    assert response.status_code == 200
    assert response.headers["X-Request-Id"] == "req-edge-1"
    echo = response.json()
    assert (echo["method"], echo["path"], echo["query"]) == (
        "GET",
        "/content/42",
        "status=unlocked",
    )
    seen = headers_seen(echo)
    assert seen["authorization"] == [f"Bearer {token}"]  # services verify it again
    assert seen["x-user-id"] == ["user-7"]
    assert seen["x-user-roles"] == ["artist,fan"]
    assert seen["x-request-id"] == ["req-edge-1"]
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == [gateway.removeprefix("http://")]


async def test_a_public_route_needs_no_token_and_carries_no_client_chosen_identity(
    gateway, client
) -> None:
    response = await client.post(
        f"{gateway}/api/v1/auth/login",
        json={"email": "fan@example.com"},
        headers={"X-User-Id": "admin", "X-User-Roles": "admin"},
    )
    assert response.status_code == 200
    seen = headers_seen(response.json())
    assert "x-user-id" not in seen and "x-user-roles" not in seen


async def test_auths_keys_are_public_through_the_gateway(gateway, client, signer) -> None:
    response = await client.get(f"{gateway}/api/v1/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.json() == signer.jwks()


async def _refused_after_revocation(
    deliver: Callable[[Message], Awaitable[None]], urls: list[str], client, signer
) -> None:
    revoked, kept = signer.token(sid="session-out"), signer.token(sid="session-on")
    for url in urls:
        ok = await client.get(f"{url}/api/v1/content/1", headers=bearer(revoked))
        assert ok.status_code == 200

    await deliver(revocation("session-out"))

    for url in urls:

        async def refused(url: str = url) -> bool:
            response = await client.get(f"{url}/api/v1/content/1", headers=bearer(revoked))
            return response.status_code == 401

        await eventually(refused)
        response = await client.get(f"{url}/api/v1/content/1", headers=bearer(revoked))
        assert (
            assert_unauthorized(response)["error"]["message"] == "This session has been signed out"
        )
        still = await client.get(f"{url}/api/v1/content/1", headers=bearer(kept))
        assert still.status_code == 200


async def test_a_revoked_session_is_refused_in_embedded_mode(
    start_gateway, upstream_settings, client, signer
) -> None:
    bus = InProcessBus()
    async with start_gateway(upstream_settings(), bus=bus) as url:
        deliver = lambda message: bus.publish([message])  # noqa: E731
        await _refused_after_revocation(deliver, [url], client, signer)


async def test_a_revocation_consumed_by_one_replica_is_seen_by_all_through_redis(
    start_gateway,
    upstream_settings,
    gateway_config,
    client,
    signer,
    amqp_url,
    redis_url,
    redis_cleanup,
) -> None:
    settings = upstream_settings(amqp_url=amqp_url, redis_url=redis_url)
    first, second, publisher = RabbitBus(amqp_url), RabbitBus(amqp_url), RabbitBus(amqp_url)
    await publisher.connect()
    try:
        async with (
            start_gateway(settings, bus=first) as one,
            start_gateway(settings, bus=second) as two,
        ):
            # Straight to this test's queue: other consumers of the shared broker see nothing.
            queue = gateway_config.revocation_queue
            deliver = lambda message: publisher.send_to_queue(queue, [message])  # noqa: E731
            await _refused_after_revocation(deliver, [one, two], client, signer)
    finally:
        await publisher.delete_queue(gateway_config.revocation_queue)
        await publisher.close()
