"""The distributed platform driven only through the gateway, as a client would drive it."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import websockets
from audifi_auth.adapters.signing_keys import SigningKey, SigningKeys
from audifi_events import encode
from audifi_events.auth import SessionRevoked
from audifi_kit.bus.rabbitmq import RabbitBus
from audifi_kit.messages import Message
from audifi_kit.testing import eventually_sync
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from platform_processes import Platform, token

SESSION = "/auth/session"  # auth's "who am I", authenticated


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code
    assert body["requestId"] == response.headers["x-request-id"]
    return body


def test_a_valid_token_reaches_the_service_with_the_verified_identity(
    platform: Platform, signing_keys: SigningKeys
) -> None:
    user, sid = str(uuid.uuid4()), str(uuid.uuid4())
    access = token(signing_keys, sub=user, sid=sid, roles=["artist", "fan"])
    response = httpx.get(f"{platform.gateway}{SESSION}", headers=bearer(access))
    assert response.status_code == 200, response.text
    assert response.json() == {"userId": user, "roles": ["artist", "fan"], "sessionId": sid}


def test_no_forged_expired_or_revoked_token_gets_past_the_gateway(
    platform: Platform, signing_keys: SigningKeys, amqp_url: str
) -> None:
    url = f"{platform.gateway}{SESSION}"
    assert_envelope(httpx.get(url), 401, "UNAUTHORIZED")
    assert_envelope(httpx.get(url, headers=bearer("not-a-jwt")), 401, "UNAUTHORIZED")
    forger = SigningKeys([SigningKey(Ed25519PrivateKey.generate())])
    assert_envelope(httpx.get(url, headers=bearer(token(forger))), 401, "UNAUTHORIZED")
    expired = token(signing_keys, exp=int(time.time()) - 5)
    assert_envelope(httpx.get(url, headers=bearer(expired)), 401, "UNAUTHORIZED")

    # A session auth revokes (logout): its still-unexpired token is refused from then on.
    sid, user = str(uuid.uuid4()), str(uuid.uuid4())
    access = token(signing_keys, sub=user, sid=sid)
    assert httpx.get(url, headers=bearer(access)).status_code == 200
    asyncio.run(_publish_revocation(amqp_url, sid, user))
    answer = eventually_sync(
        lambda: (a := httpx.get(url, headers=bearer(access))).status_code != 200 and a,
        what="the revocation reaching the gateway",
    )
    assert_envelope(answer, 401, "UNAUTHORIZED")
    other = token(signing_keys, sub=user, sid=str(uuid.uuid4()))
    assert httpx.get(url, headers=bearer(other)).status_code == 200  # only that session


async def _publish_revocation(amqp_url: str, sid: str, user: str) -> None:
    now = datetime.now(UTC)
    event = SessionRevoked(
        session_id=sid,
        account_id=user,
        revoked_at=now,
        access_tokens_valid_until=now + timedelta(minutes=15),
        reason="logout",
    )
    bus = RabbitBus(amqp_url)
    await bus.connect()
    try:
        await bus.publish(
            [
                Message(
                    message_id=f"auth-e2e-{uuid.uuid4().hex}",
                    routing_key=SessionRevoked.routing_key,
                    body=encode(event),
                    schema_version=SessionRevoked.schema_version,
                )
            ]
        )
    finally:
        await bus.close()


def test_an_unknown_route_gets_a_404_envelope_carrying_the_request_id(platform: Platform) -> None:
    request_id = uuid.uuid4().hex
    response = httpx.get(
        f"{platform.gateway}/no-such-thing/here", headers={"X-Request-Id": request_id}
    )
    body = assert_envelope(response, 404, "NOT_FOUND")
    assert body["requestId"] == request_id


def test_a_client_past_its_limit_gets_429_with_retry_after(
    platform: Platform, signing_keys: SigningKeys
) -> None:
    access = token(signing_keys)
    url = f"{platform.gateway}/lottery/purchase"  # the `write` class: 5 a minute in this run
    statuses = [httpx.post(url, headers=bearer(access)).status_code for _ in range(5)]
    assert 429 not in statuses, statuses
    limited = httpx.post(url, headers=bearer(access))
    assert_envelope(limited, 429, "RATE_LIMITED")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Another client has its own budget.
    assert httpx.post(url, headers=bearer(token(signing_keys))).status_code != 429


def test_a_service_that_is_down_answers_503_then_normally_once_back(
    platform: Platform, signing_keys: SigningKeys
) -> None:
    access = token(signing_keys)
    url = f"{platform.gateway}{SESSION}"
    platform.stop("auth")
    try:
        for _ in range(3):
            started = time.monotonic()
            down = httpx.get(url, headers=bearer(access), timeout=30)
            assert_envelope(down, 503, "UNAVAILABLE")
            assert time.monotonic() - started < 10  # the route's timeout, with room
    finally:
        platform.start("auth")
    back = eventually_sync(
        lambda: (a := httpx.get(url, headers=bearer(access))).status_code != 503 and a,
        within=60,
        every=0.5,
        what="auth back behind the gateway",
    )
    assert back.status_code == 200, back.text


def test_a_websocket_through_the_gateway_carries_messages_both_ways(
    platform: Platform, signing_keys: SigningKeys
) -> None:
    asyncio.run(_two_fans_in_one_room(platform, signing_keys))


async def _two_fans_in_one_room(platform: Platform, keys: SigningKeys) -> None:
    session_id = uuid.uuid4()
    ada, bob = str(uuid.uuid4()), str(uuid.uuid4())
    base = platform.gateway.replace("http://", "ws://")
    url = f"{base}/vstudio/sessions/{session_id}/ws"
    async with (
        websockets.connect(f"{url}?access_token={token(keys, sub=ada)}") as first,
        websockets.connect(url, additional_headers=bearer(token(keys, sub=bob))) as second,
    ):
        for ws in (first, second):
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "presence"
        await second.send(json.dumps({"type": "join", "userId": "someone-else"}))
        for ws in (first, second):
            frame = await _next_of_type(ws, "user_joined")
            assert frame["userId"] == bob  # the verified id, never the claimed one
        await first.send(json.dumps({"type": "ping"}))
        assert (await _next_of_type(first, "pong"))["type"] == "pong"

    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(url):
            pass


async def _next_of_type(ws: websockets.ClientConnection, kind: str) -> dict:
    async with asyncio.timeout(10):
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame


def test_admin_health_reports_every_upstream(platform: Platform) -> None:
    response = httpx.get(f"{platform.gateway}/admin/health")
    assert response.status_code == 200, response.text
    services = response.json()["services"]
    assert set(services) == {"auth", "nft", "vstudio", "coin", "payment", "analytics", "notify"}
    assert all(s["status"] == "up" for s in services.values())
