"""The local Stripe for tests: a subprocess on a free port, started and stopped around a block.

    with StripeLocal(webhook_urls=[url], webhook_secret="whsec_test") as base_url:
        client = stripe.StripeClient("sk_test_local", base_addresses={"api": base_url})

`async with` works the same, without blocking the event loop while it starts or stops.
"""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import IO


class StripeLocal:
    def __init__(
        self,
        webhook_urls: Sequence[str] = (),
        webhook_secret: str | None = None,
        *,
        host: str = "127.0.0.1",
        public_url: str | None = None,
        start_within: float = 20.0,
    ) -> None:
        self.args = ["--host", host, "--port", "0"]
        for url in webhook_urls:
            self.args += ["--webhook-url", url]
        if webhook_secret:
            self.args += ["--webhook-secret", webhook_secret]
        if public_url:
            self.args += ["--public-url", public_url]
        self.start_within = start_within
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> str:
        # Only what the arguments say: no webhook settings leak in from the test's environment.
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("STRIPE_LOCAL_WEBHOOK_URLS", "STRIPE_WEBHOOK_SECRET")
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "audifi_stripe_local", *self.args],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        try:
            self.url = self._ready_line(self.process.stdout).removeprefix("ready ").strip()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _ready_line(self, out: IO[str]) -> str:
        deadline = time.monotonic() + self.start_within
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([out], [], [], left)
            if readable:
                line = out.readline()
                if line.startswith("ready "):
                    return line
                if not line:
                    code = self.process.wait() if self.process else None
                    raise RuntimeError(f"the local Stripe exited ({code}) before it was ready")
        raise TimeoutError(f"the local Stripe was not ready within {self.start_within}s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        self.process = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> str:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
