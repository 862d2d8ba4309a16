"""Webhook delivery as Stripe does it: each event POSTed as JSON to every endpoint, signed with
`Stripe-Signature: t=<unix>,v1=<hex hmac_sha256(secret, "<t>.<payload>")>`.

Each endpoint has its own queue and worker, so events reach an endpoint in the order they
happened and a slow or failing endpoint holds up only itself. A failed attempt (no answer, or
not 2xx) is retried with doubling pauses a bounded number of times, re-signed with a fresh
timestamp each time as Stripe does; then the worker moves on. Nothing here runs inside an API
request: `send` only enqueues.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

log = logging.getLogger(__name__)


def signature_header(payload: str, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.{payload}".encode()
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookSender:
    def __init__(
        self,
        urls: Sequence[str],
        secret: str | None,
        *,
        attempts: int = 5,
        first_pause: float = 0.25,
        max_pause: float = 4.0,
        timeout: float = 10.0,
    ) -> None:
        if urls and not secret:
            raise ValueError("webhook URLs need a webhook secret (whsec_...) to sign with")
        self.urls = list(urls)
        self.secret = secret or ""
        self.attempts = attempts
        self.first_pause = first_pause
        self.max_pause = max_pause
        self.timeout = timeout
        # Every attempt, oldest first: what `/_local/deliveries` shows and tests wait on.
        self.deliveries: list[dict[str, Any]] = []
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {u: asyncio.Queue() for u in urls}
        self.holding = False
        self.held: list[dict[str, Any]] = []
        self._busy: set[str] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    def send(self, event: dict[str, Any]) -> None:
        if self.holding:
            self.held.append(event)
            return
        for queue in self._queues.values():
            queue.put_nowait(event)

    def hold(self) -> None:
        """Keep events from now on instead of delivering them (a test's out-of-order setup)."""
        self.holding = True

    def release(self, first: Sequence[str] = ()) -> list[str]:
        """Deliver the held events: those of the types in `first` (in that order) before the
        others (in the order they happened); stop holding. The ids, in delivery order."""
        held, self.held, self.holding = self.held, [], False
        rank = {t: i for i, t in enumerate(first)}
        ordered = sorted(held, key=lambda e: rank.get(e["type"], len(rank)))  # stable
        for event in ordered:
            self.send(event)
        return [e["id"] for e in ordered]

    @property
    def pending(self) -> int:
        """Events accepted but not yet settled (delivered or given up) across endpoints."""
        return sum(q.qsize() for q in self._queues.values()) + len(self._busy)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        self._workers = [
            asyncio.create_task(self._work(url), name=f"webhooks-{url}") for url in self.urls
        ]

    async def stop(self) -> None:
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        if self._session is not None:
            await self._session.close()

    async def _work(self, url: str) -> None:
        queue = self._queues[url]
        while True:
            event = await queue.get()
            self._busy.add(url)
            try:
                await self._deliver(url, event)
            finally:
                self._busy.discard(url)

    async def _deliver(self, url: str, event: dict[str, Any]) -> None:
        assert self._session is not None
        payload = json.dumps(event, indent=2)
        pause = self.first_pause
        for attempt in range(1, self.attempts + 1):
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": signature_header(payload, self.secret, timestamp),
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            }
            status: int | None = None
            error: str | None = None
            try:
                async with self._session.post(url, data=payload.encode(), headers=headers) as r:
                    status = r.status
                    await r.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            self.deliveries.append(
                {
                    "event": event["id"],
                    "type": event["type"],
                    "url": url,
                    "attempt": attempt,
                    "status": status,
                    "error": error,
                    "at": time.time(),
                }
            )
            if status is not None and 200 <= status < 300:
                return
            if attempt < self.attempts:
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.max_pause)
        log.warning("gave up delivering %s (%s) to %s", event["id"], event["type"], url)
