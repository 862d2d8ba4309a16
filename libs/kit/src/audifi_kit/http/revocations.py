"""Revoked sign-in sessions: access tokens of a session that ended are refused everywhere.

Auth publishes `auth.session.revoked` (logout, refresh-token reuse, erasure, an admin's
action) with the session id and `accessTokensValidUntil`, when the last access token of that
session expires. The gateway and every service consume it, each from its own durable queue
`<name>.session-revocations`, and remember the session id until then; the gateway's edge check
and each service's `AuthMiddleware` refuse a token whose `sid` is remembered (zero trust: a
call that reaches a service without the gateway is refused too).

Where it is remembered: Redis (`SET <prefix>:revoked:<sid> 1 EXAT <valid until>`) when
REDIS_URL is set, so every replica sees a revocation that any one of them consumed (replicas
compete for their queue's messages); else process memory, one store per app.

A store that cannot answer (Redis down) lets the token through (`session_revoked` fails
open): access tokens live minutes, and an outage must not sign every user out.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Protocol

import structlog
from audifi_events.auth import SessionRevoked
from audifi_events.registry import UndecodableEvent, UnknownEventType, registry
from redis.asyncio import Redis

from audifi_kit.bus import Bus, Delivery, QueueSpec, Subscription
from audifi_kit.settings import Settings

log = structlog.get_logger("audifi.revocations")

SESSION_REVOKED = "auth.session.revoked"
# Where a service app keeps its store (app.state): for checks outside AuthMiddleware (WebSockets).
REVOCATIONS_STATE_KEY = "revocations"


def revocation_queue(name: str) -> str:
    """The durable queue on which `name` (a service or the gateway) hears of revocations."""
    return f"{name}.session-revocations"


async def session_revoked(store: RevocationStore, session_id: str) -> bool:
    """Whether the session was revoked; False (logged) when the store cannot answer."""
    try:
        return await store.is_revoked(session_id)
    except Exception as exc:
        log.warning("revocation_store_unavailable", error=repr(exc))
        return False


class RevocationStore(Protocol):
    async def revoke(self, session_id: str, until: datetime) -> None: ...

    async def is_revoked(self, session_id: str) -> bool: ...


class RedisRevocations:
    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self.redis = redis
        self.key_prefix = key_prefix

    def _key(self, session_id: str) -> str:
        return f"{self.key_prefix}:revoked:{session_id}"

    async def revoke(self, session_id: str, until: datetime) -> None:
        expires_at = int(until.timestamp()) + 1  # rounded up: never forget a second early
        if expires_at <= time.time():
            return  # its tokens have all expired: nothing left to refuse
        await self.redis.set(self._key(session_id), 1, exat=expires_at)

    async def is_revoked(self, session_id: str) -> bool:
        return bool(await self.redis.exists(self._key(session_id)))


class MemoryRevocations:
    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    async def revoke(self, session_id: str, until: datetime) -> None:
        now = time.time()
        # Forget what has expired, so the dict holds only sessions with live tokens.
        for sid in [s for s, t in self._until.items() if t <= now]:
            del self._until[sid]
        expires_at = until.timestamp()
        if expires_at > now:
            self._until[session_id] = max(expires_at, self._until.get(session_id, 0.0))

    async def is_revoked(self, session_id: str) -> bool:
        until = self._until.get(session_id)
        return until is not None and until > time.time()


class RevocationConsumer:
    """Feeds `auth.session.revoked` from the bus into the store.

    No inbox table: remembering a session id is idempotent (a redelivery sets the same key to
    the same expiry), so at-least-once delivery is enough. The message is acked only once the
    id is stored; a store failure retries it through the bus's retry queues.
    """

    def __init__(self, bus: Bus, store: RevocationStore, queue: str, *, prefetch: int) -> None:
        self.bus = bus
        self.store = store
        self.spec = QueueSpec(queue, (SESSION_REVOKED,))
        self.prefetch = prefetch
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        await self.bus.declare_queue(self.spec)
        self._subscription = await self.bus.consume(
            self.spec.name, self.handle, prefetch=self.prefetch
        )

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.cancel()
            self._subscription = None

    async def handle(self, delivery: Delivery) -> None:
        message = delivery.message
        try:
            event = registry.decode(message.routing_key, message.schema_version, message.body)
        except (UnknownEventType, UndecodableEvent) as exc:
            await delivery.park(str(exc))  # no retry will make it decodable
            return
        if not isinstance(event, SessionRevoked):
            await delivery.park(f"{message.routing_key} is not a session revocation")
            return
        await self.store.revoke(event.session_id, event.access_tokens_valid_until)
        log.info("session_revoked", session_id=event.session_id, reason=event.reason)
        await delivery.ack()


class SessionRevocations:
    """What one app needs to refuse revoked sessions: a store and the consumer feeding it.

    Redis when REDIS_URL is set (keys `<prefix>:revoked:<sid>`, shared by the app's replicas),
    else memory. `start()` once the bus is connected; `stop()` closes what it opened.
    """

    def __init__(
        self, name: str, settings: Settings, bus: Bus, *, key_prefix: str | None = None
    ) -> None:
        self.redis: Redis | None = None
        self.store: RevocationStore
        if settings.redis_url:
            self.redis = Redis.from_url(
                settings.redis_url, socket_timeout=1.0, socket_connect_timeout=1.0
            )
            self.store = RedisRevocations(self.redis, key_prefix or f"{settings.db_prefix}sessions")
        else:
            self.store = MemoryRevocations()
        self.consumer = RevocationConsumer(
            bus, self.store, revocation_queue(name), prefetch=settings.prefetch
        )

    async def start(self) -> None:
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()
        if self.redis is not None:
            await self.redis.aclose()
