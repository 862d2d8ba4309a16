"""`python -m audifi_stripe_local --port 8420 --webhook-url URL --webhook-secret whsec_...`

Webhook URLs may also come from STRIPE_LOCAL_WEBHOOK_URLS (comma or space separated) and the
secret from STRIPE_WEBHOOK_SECRET, the variable the platform reads to verify them. Port 0 takes
a free one. Once listening it prints `ready <base url>` on a line of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Sequence

from aiohttp import web

from audifi_stripe_local.app import build_app


async def serve(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"ready http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="audifi-stripe-local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument(
        "--webhook-url", action="append", default=[], help="where events are POSTed; repeatable"
    )
    parser.add_argument("--webhook-secret", help="the whsec_... secret events are signed with")
    parser.add_argument(
        "--public-url", help="base URL of the pay/portal/onboarding pages for a browser"
    )
    args = parser.parse_args(argv)
    urls = (
        args.webhook_url
        or os.environ.get("STRIPE_LOCAL_WEBHOOK_URLS", "").replace(",", " ").split()
    )
    secret = args.webhook_secret or os.environ.get("STRIPE_WEBHOOK_SECRET")
    logging.basicConfig(level=logging.WARNING, format="stripe-local %(levelname)s %(message)s")
    try:
        app = build_app(webhook_urls=urls, webhook_secret=secret, public_url=args.public_url)
    except ValueError as exc:
        parser.error(str(exc))
    asyncio.run(serve(app, args.host, args.port))


if __name__ == "__main__":
    main()
