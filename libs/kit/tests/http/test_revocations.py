"""Every service refuses a revoked session's tokens, not only the gateway (zero trust).

A service app built by `service_app` consumes `auth.session.revoked` from its own queue
(`<service>.session-revocations`) into its store — memory embedded, Redis when REDIS_URL is set
— and its AuthMiddleware answers 401 to a token whose `sid` it holds.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from audifi_events.auth import SessionRevoked
from audifi_events.registry import encode
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.bus.rabbitmq import RabbitBus
from audifi_kit.http.auth import Identity
from audifi_kit.http.revocations import (
    MemoryRevocations,
    RedisRevocations,
    revocation_queue,
    session_revoked,
)
from audifi_kit.launch import service_app
from audifi_kit.messages import Message
from audifi_kit.settings import Settings
from audifi_kit.testing import TokenSigner, served
from kit_sample import spec
from litestar import Litestar, get
from litestar.di import NamedDependency
from redis.asyncio import Redis


@get("/me", sync_to_thread=False)
def me(identity: NamedDependency[Identity]) -> dict[str, Any]:
    return {"userId": identity.user_id, "sessionId": identity.session_id}


def jwks_app(signer: TokenSigner) -> Litestar:
    @get("/.well-known/jwks.json", sync_to_thread=False)
    def jwks() -> dict[str, Any]:
        return signer.jwks()

    return Litestar([jwks])


def revocation(session_id: str, valid_for: timedelta = timedelta(minutes=15)) -> Message:
    now = datetime.now(UTC)
    event = SessionRevoked(
        session_id=session_id,
        account_id="user-1",
        revoked_at=now,
        access_tokens_valid_until=now + valid_for,
        reason="logout",
    )
    return Message(
        message_id=f"auth-{uuid.uuid4().hex}",
        routing_key=SessionRevoked.routing_key,
        body=encode(event),
        schema_version=SessionRevoked.schema_version,
    )


async def until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "still false"
        await asyncio.sleep(0.05)


@pytest.fixture
async def signer_jwks() -> AsyncIterator[tuple[TokenSigner, str]]:
    signer = TokenSigner()
    async with served(jwks_app(signer)) as url:
        yield signer, f"{url}/.well-known/jwks.json"


async def refused_after_revocation(
    deliver: Callable[[Message], Awaitable[None]], urls: list[str], signer: TokenSigner
) -> None:
    revoked, kept = signer.token(sid="session-out"), signer.token(sid="session-on")
    async with httpx.AsyncClient(timeout=5) as client:

        async def status(url: str, token: str) -> int:
            answer = await client.get(f"{url}/me", headers={"Authorization": f"Bearer {token}"})
            return answer.status_code

        for url in urls:
            assert await status(url, revoked) == 200

        await deliver(revocation("session-out"))

        for url in urls:

            async def refused(url: str = url) -> bool:
                return await status(url, revoked) == 401

            await until(refused)
            answer = await client.get(f"{url}/me", headers={"Authorization": f"Bearer {revoked}"})
            assert answer.json()["error"]["code"] == "UNAUTHORIZED"
            assert answer.json()["error"]["message"] == "This session has been signed out"
            assert await status(url, kept) == 200  # another session of the same user


async def test_a_service_refuses_a_revoked_session_embedded(
    signer_jwks: tuple[TokenSigner, str], settings: Settings
) -> None:
    signer, jwks_url = signer_jwks
    bus = InProcessBus()
    embedded = Settings(
        database_url=settings.database_url, db_prefix=settings.db_prefix, jwks_url=jwks_url
    )
    async with served(service_app(spec, embedded, bus, route_handlers=[me])) as url:
        await refused_after_revocation(lambda m: bus.publish([m]), [url], signer)


async def test_a_revocation_one_replica_consumed_is_seen_by_the_other_through_redis(
    signer_jwks: tuple[TokenSigner, str], settings: Settings, redis_url: str, amqp_url: str
) -> None:
    signer, jwks_url = signer_jwks
    replicated = Settings(
        database_url=settings.database_url,
        amqp_url=amqp_url,
        redis_url=redis_url,
        db_prefix=settings.db_prefix,
        jwks_url=jwks_url,
    )
    first, second, publisher = RabbitBus(amqp_url), RabbitBus(amqp_url), RabbitBus(amqp_url)
    await publisher.connect()
    redis = Redis.from_url(redis_url)
    try:
        async with (
            served(service_app(spec, replicated, first, route_handlers=[me])) as one,
            served(service_app(spec, replicated, second, route_handlers=[me])) as two,
        ):
            # Straight to the service's queue: the two replicas compete for its one message.
            queue = revocation_queue(spec.name)
            deliver = lambda m: publisher.send_to_queue(queue, [m])  # noqa: E731
            await refused_after_revocation(deliver, [one, two], signer)
            key = f"{settings.db_prefix}sessions:revoked:session-out"
            assert 0 < await redis.ttl(key) <= 15 * 60 + 1  # forgotten when its tokens expire
    finally:
        await publisher.delete_queue(revocation_queue(spec.name))
        await publisher.close()
        await redis.delete(f"{settings.db_prefix}sessions:revoked:session-out")
        await redis.aclose()


async def test_a_revocation_whose_tokens_have_expired_is_not_kept() -> None:
    store = MemoryRevocations()
    now = datetime.now(UTC)
    await store.revoke("old", now - timedelta(seconds=1))
    await store.revoke("live", now + timedelta(minutes=5))
    assert not await store.is_revoked("old")
    assert await store.is_revoked("live")


async def test_an_unreachable_store_lets_the_token_through() -> None:
    # Redis on a port nothing listens on: the check fails open rather than sign everyone out.
    redis = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)
    try:
        assert await session_revoked(RedisRevocations(redis, "nowhere"), "session-1") is False
    finally:
        await redis.aclose()
