"""`Idempotency-Key` on POSTs that move money or mint (ARCHITECTURE.md §9).

A route opts in with `opt={"idempotent": True}`; on other routes the header is ignored. The
first request with a key claims it in the service's own PostgreSQL (`kit_idempotency`), runs,
and its response (status, body, headers) is stored beside a hash of the request. A repeat with
the same request gets that response unchanged plus `Idempotent-Replayed: true`; a repeat with
another method, path, query or body is 409 CONFLICT; a repeat while the first still runs is 409
CONFLICT "in progress". A 5xx, a response inviting a retry (`Retry-After`: 429, or a 409 from a
lost concurrency race) or a crash mid-request releases the key so the client may retry; other
2xx-4xx answers are final. A claim whose request never finished (the process died) is taken
over after `lease` seconds.

Keys are scoped by caller and route: `<user id or "anon"> <METHOD> <route template>`.

The middleware needs an asyncpg pool at `app.state.db_pool` (the service's lifespan puts it
there); the table is created on first use.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Sequence

import asyncpg
import structlog
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from audifi_kit.app_state import DB_POOL_STATE_KEY
from audifi_kit.errors import Conflict, ValidationFailed
from audifi_kit.http.auth import Identity

log = structlog.get_logger("audifi.http.idempotency")

IDEMPOTENT_OPT = "idempotent"
TABLE = "kit_idempotency"
REPLAYED_HEADER = b"idempotent-replayed"
_SANE_KEY = re.compile(r"[\x21-\x7e]{1,255}")
# Stored headers describe the body; per-response ones (ids, cookies, lengths) are not replayed.
_NOT_STORED = {b"x-request-id", b"set-cookie", b"content-length", b"date", b"server"}

DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    scope text NOT NULL,
    key text NOT NULL,
    request_hash text NOT NULL,
    status_code int,
    body bytea,
    headers jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    PRIMARY KEY (scope, key)
)
"""


async def create_idempotency_table(conn: asyncpg.Connection | asyncpg.Pool) -> None:
    try:
        await conn.execute(DDL)
    except asyncpg.UniqueViolationError:  # a concurrent CREATE IF NOT EXISTS won the race
        pass


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def request_hash(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (
        scope["method"].encode(),
        scope.get("raw_path") or scope["path"].encode(),
        scope.get("query_string", b""),
        body,
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, *, lease: float = 60.0, pool_state_key: str = DB_POOL_STATE_KEY) -> None:
        self.lease = lease
        self.pool_state_key = pool_state_key
        # The pool the table is known to exist behind (asyncpg pools are not weakref-able).
        self._ready_pool: asyncpg.Pool | None = None
        self._table_lock = asyncio.Lock()

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        key = _header(scope, b"idempotency-key")
        opted = scope["route_handler"].opt.get(IDEMPOTENT_OPT)
        if key is None or not opted or scope["method"] != "POST":
            await next_app(scope, receive, send)
            return
        if not _SANE_KEY.fullmatch(key):
            raise ValidationFailed(
                "Idempotency-Key must be 1-255 visible ASCII characters",
                details={"fields": [{"field": "Idempotency-Key", "source": "header"}]},
            )
        body, receive = await _buffered(receive)
        identity = scope.get("user")
        caller = identity.user_id if isinstance(identity, Identity) else "anon"
        claim = Claim(
            pool=await self._pool(scope),
            scope=f"{caller} {scope['method']} {scope.get('path_template') or scope['path']}",
            key=key,
            request_hash=request_hash(scope, body),
        )
        stored = await claim.acquire(self.lease)
        if stored is not None:
            await _replay(stored, send)
            return
        await _run_and_store(claim, scope, receive, send, next_app)

    async def _pool(self, scope: Scope) -> asyncpg.Pool:
        pool = scope["litestar_app"].state.get(self.pool_state_key)
        if pool is None:
            raise RuntimeError(
                f"idempotent route {scope['path']} needs an asyncpg pool at "
                f"app.state.{self.pool_state_key}"
            )
        if pool is not self._ready_pool:
            async with self._table_lock:
                if pool is not self._ready_pool:
                    await create_idempotency_table(pool)
                    self._ready_pool = pool
        return pool


class Claim:
    """One caller's key on one route, as stored in `kit_idempotency`."""

    def __init__(self, pool: asyncpg.Pool, scope: str, key: str, request_hash: str) -> None:
        self.pool = pool
        self.scope = scope
        self.key = key
        self.request_hash = request_hash

    async def acquire(self, lease: float) -> asyncpg.Record | None:
        """Claims the key (returns None: run the request) or returns the stored response."""
        claimed = await self.pool.fetchval(
            f"INSERT INTO {TABLE} (scope, key, request_hash) VALUES ($1, $2, $3) "
            "ON CONFLICT (scope, key) DO NOTHING RETURNING true",
            self.scope,
            self.key,
            self.request_hash,
        )
        if claimed:
            return None
        row = await self.pool.fetchrow(
            f"SELECT request_hash, status_code, body, headers, completed_at, "
            f"created_at < now() - make_interval(secs => $3) AS stale "
            f"FROM {TABLE} WHERE scope = $1 AND key = $2",
            self.scope,
            self.key,
            lease,
        )
        if row is None:  # released between our insert and select: try once more
            return await self.acquire(lease)
        if row["completed_at"] is None and row["stale"] and await self._take_over(lease):
            return None
        if row["request_hash"] != self.request_hash:
            raise Conflict(
                "Idempotency-Key was already used with a different request",
                details={"idempotencyKey": self.key},
            )
        if row["completed_at"] is None:
            raise Conflict(
                "A request with this Idempotency-Key is still in progress",
                details={"idempotencyKey": self.key},
            )
        return row

    async def _take_over(self, lease: float) -> bool:
        return bool(
            await self.pool.fetchval(
                f"UPDATE {TABLE} SET request_hash = $3, created_at = now() "
                "WHERE scope = $1 AND key = $2 AND completed_at IS NULL "
                "AND created_at < now() - make_interval(secs => $4) RETURNING true",
                self.scope,
                self.key,
                self.request_hash,
                lease,
            )
        )

    async def complete(self, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]]):
        kept = [
            [k.decode("latin-1"), v.decode("latin-1")]
            for k, v in headers
            if k.lower() not in _NOT_STORED
        ]
        await self.pool.execute(
            f"UPDATE {TABLE} SET status_code = $3, body = $4, headers = $5::jsonb, "
            "completed_at = now() WHERE scope = $1 AND key = $2",
            self.scope,
            self.key,
            status,
            body,
            json.dumps(kept),
        )

    async def release(self) -> None:
        await self.pool.execute(
            f"DELETE FROM {TABLE} WHERE scope = $1 AND key = $2 AND completed_at IS NULL",
            self.scope,
            self.key,
        )


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """Reads the whole request body; returns it and a `receive` that plays it back."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # disconnected before the body arrived
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def _replay(row: asyncpg.Record, send: Send) -> None:
    body: bytes = row["body"] or b""
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in json.loads(row["headers"])]
    headers += [(b"content-length", str(len(body)).encode()), (REPLAYED_HEADER, b"true")]
    await send({"type": "http.response.start", "status": row["status_code"], "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _run_and_store(
    claim: Claim, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp
) -> None:
    status = 500
    headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []
    finished = False

    async def capture(message: Message) -> None:
        nonlocal status, headers, finished
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = list(message.get("headers", ()))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                # Stored before the client has the whole answer: a client that repeats the
                # request the moment it has it gets the replay, never "still in progress".
                finished = True
                await _settle(claim, status, headers, chunks)
        await send(message)

    try:
        await next_app(scope, receive, capture)
    except BaseException:
        if not finished:
            await asyncio.shield(_release(claim))
        raise
    if not finished:
        await _release(claim)


async def _settle(
    claim: Claim, status: int, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> None:
    """A finished answer is final (stored) unless it invites a retry (5xx, Retry-After)."""
    retryable = any(name.lower() == b"retry-after" for name, _ in headers)
    if status < 500 and not retryable:
        await claim.complete(status, b"".join(chunks), headers)
    else:
        await _release(claim)


async def _release(claim: Claim) -> None:
    try:
        await claim.release()
    except (OSError, asyncpg.PostgresError) as exc:  # the lease frees it later
        log.error("idempotency_release_failed", key_scope=claim.scope, error=str(exc))
