"""Notify's public sealing key: magic links are sealed to it so only notify can read them.

Fetched from `GET <notify>/.well-known/seal-key` -> {"keyId", "publicKey"} (base64 of the
32-byte X25519 key), kept for `ttl` seconds, fetched again when it lapses. If notify cannot be
reached and no key is at hand, the request fails with 503 UNAVAILABLE before anything changes.
"""

from __future__ import annotations

import asyncio
import base64
import time

import httpx
import structlog
from audifi_kit.errors import Unavailable
from nacl.public import PublicKey, SealedBox

log = structlog.get_logger("audifi.auth.seal_key")


class NotifySealKey:
    def __init__(self, notify_url: str, *, ttl: float = 600.0, timeout: float = 3.0) -> None:
        self.url = f"{notify_url.rstrip('/')}/.well-known/seal-key"
        self.ttl = ttl
        self.timeout = timeout
        self._key: tuple[str, PublicKey] | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None

    async def current(self) -> tuple[str, PublicKey]:
        async with self._lock:
            if self._key is not None and time.monotonic() - self._fetched_at < self.ttl:
                return self._key
            if self._client is None:
                self._client = httpx.AsyncClient(timeout=self.timeout)
            try:
                response = await self._client.get(self.url)
                response.raise_for_status()
                body = response.json()
                key = PublicKey(base64.b64decode(body["publicKey"]))
                self._key = (str(body["keyId"]), key)
                self._fetched_at = time.monotonic()
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                log.warning("seal_key_fetch_failed", url=self.url, error=type(exc).__name__)
                self._key = None
                raise Unavailable("The e-mail service cannot be reached; try again") from exc
            return self._key

    async def seal(self, text: str) -> tuple[str, str]:
        """`text` sealed to notify's key (base64), and the key's id."""
        key_id, key = await self.current()
        return base64.b64encode(SealedBox(key).encrypt(text.encode())).decode(), key_id

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
