"""The local Stripe of `make run` / `make up` (ARCHITECTURE.md §6): started when a deployable
uses Stripe and STRIPE_SECRET_KEY is unset.

It runs as its own process (`python -m audifi_stripe_local`, libs/stripe-local: localstripe
plus checkout, a pay page, test clocks, the portal, Connect), sends its events signed with a
webhook secret made for this run to the gateway's `/api/v1/stripe/webhook`, and the services
that use Stripe get STRIPE_API_BASE, STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET to match:
the same SDK calls as with real Stripe, only the base address differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
from collections.abc import Mapping

from audifi_kit.settings import Settings, _loopback

log = logging.getLogger(__name__)

LOCAL_KEY = "sk_test_audifi_local"
MODULE = "audifi_stripe_local"


def wanted(environ: Mapping[str, str]) -> bool:
    """A local Stripe is started unless a real one (or one of the operator's) is configured."""
    return not environ.get("STRIPE_SECRET_KEY") and not environ.get("STRIPE_API_BASE")


def local_stripe_env(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """What the services that use Stripe get, and what the local Stripe is started with."""
    host = _loopback(settings.host)
    return {
        "STRIPE_SECRET_KEY": LOCAL_KEY,
        "STRIPE_API_BASE": f"http://{host}:{settings.stripe_local_port}",
        "STRIPE_WEBHOOK_SECRET": environ.get("STRIPE_WEBHOOK_SECRET")
        or f"whsec_{secrets.token_hex(24)}",
        "STRIPE_LOCAL_WEBHOOK_URLS": f"{settings.service_url('gateway')}/api/v1/stripe/webhook",
    }


def command(settings: Settings, env: Mapping[str, str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        MODULE,
        "--host",
        settings.host,
        "--port",
        str(settings.stripe_local_port),
        "--webhook-url",
        env["STRIPE_LOCAL_WEBHOOK_URLS"],
        "--webhook-secret",
        env["STRIPE_WEBHOOK_SECRET"],
    ]


class LocalStripe:
    """The local Stripe as a child process of the embedded platform."""

    def __init__(self, settings: Settings, env: Mapping[str, str]) -> None:
        self.settings = settings
        self.env = dict(env)
        self.process: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *command(self.settings, self.env), stdout=asyncio.subprocess.PIPE
        )
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while line := await self.process.stdout.readline():
                    if line.startswith(b"ready "):
                        log.info("local Stripe at %s", self.env["STRIPE_API_BASE"])
                        # Keep reading what it prints: a full pipe would stall the child.
                        self._drain = asyncio.create_task(self._read_on(self.process.stdout))
                        return
        except TimeoutError:
            await self.stop()
            raise RuntimeError(f"the local Stripe was not ready within {timeout}s") from None
        code = await self.process.wait()
        raise RuntimeError(f"the local Stripe exited ({code}) before it was ready")

    @staticmethod
    async def _read_on(stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            log.debug("local Stripe: %s", line.decode(errors="replace").rstrip())

    async def stop(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
