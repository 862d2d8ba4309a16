"""`/metrics`: the Prometheus registry in text exposition format.

The metrics themselves are defined in `audifi_kit.metrics` (no web import, so background
components publish to them without Litestar); they are re-exported here for code that already
imports them from this module.
"""

from __future__ import annotations

from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY
from prometheus_client.exposition import generate_latest

from audifi_kit.metrics import (
    UNMATCHED_ROUTE,
    consumer_lag,
    http_request_duration,
    http_requests,
    observe_request,
    parked_messages,
    projection_events_parked,
    projection_lag,
    projection_parked,
    relay_lag,
)


@get("/metrics", opt={"public": True}, include_in_schema=False, sync_to_thread=False)
def metrics_endpoint() -> Response[bytes]:
    return Response(
        generate_latest(REGISTRY),
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )


__all__ = [
    "UNMATCHED_ROUTE",
    "consumer_lag",
    "http_request_duration",
    "http_requests",
    "metrics_endpoint",
    "observe_request",
    "parked_messages",
    "projection_events_parked",
    "projection_lag",
    "projection_parked",
    "relay_lag",
]
