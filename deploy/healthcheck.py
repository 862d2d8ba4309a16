"""Container health probe: GET http://127.0.0.1:<port of $SERVICE><path>; exit 0 on a 2xx.

    python /app/healthcheck.py [/health | /ready]

The port is the one `audifi serve "$SERVICE"` listens on: AUDIFI_<SERVICE>_PORT, else the
service's default (audifi_kit.settings). Used by the image's HEALTHCHECK (/health, liveness) and
docker-compose.yml (/ready). Only the standard library and the kit's settings: the slim image
has no curl.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

from audifi_kit.settings import Settings


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/health"
    service = os.environ.get("SERVICE", "").strip()
    try:
        settings = Settings.from_env()
        # SERVICE=chain / stripe: the development chain node (`audifi chain node`) and the
        # local Stripe (`python -m audifi_stripe_local`) of docker-compose.yml
        special = {"chain": settings.chain_node_port, "stripe": settings.stripe_local_port}
        port = special[service] if service in special else settings.port(service)
    except LookupError as exc:
        print(f"healthcheck: {exc} (set SERVICE)", file=sys.stderr)
        return 1
    url = f"http://127.0.0.1:{port}/{path.lstrip('/')}"
    timeout = float(os.environ.get("AUDIFI_HEALTHCHECK_TIMEOUT", "4"))
    # No proxy: HTTP_PROXY in the environment must not divert a loopback probe.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1
    if 200 <= status < 300:
        return 0
    print(f"healthcheck: {url}: HTTP {status}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
