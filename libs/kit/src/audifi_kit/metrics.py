"""Prometheus metrics: what every service's `/metrics` exposes (text exposition format).

No web framework is needed to publish one: the runtime and the projection runners import this
module; `audifi_kit.http.metrics` serves the registry at `/metrics`.

HTTP requests are counted and timed by service, method, route *template* (`/masters/{id:uuid}`,
never the raw path, which would make one time series per id) and status. Requests that matched
no route are labelled `<unmatched>`.

The kit's background components publish their state through the gauges below; each is
labelled by `service` and `queue` (for the relay: the exchange it publishes to):

- `relay_lag`: notifications in the service's log not yet published by its outbox relay.
- `consumer_lag`: messages waiting in a consumer's queue (ready, not yet delivered).
- `parked_messages`: messages in a consumer's `<queue>.parking` awaiting an operator.

Projections (labelled by `service` and `projection`):

- `projection_lag`: notifications in the log after the position this process's runner applied.
- `projection_parked`: events the projection skipped (parked) and that await an operator
  (`audifi projections retry|discard`).
- `projection_events_parked`: a counter of events parked (alert on any increase).

Usage: `metrics.relay_lag.labels(service="nft", queue="audifi.events").set(n)`.

All metrics live in prometheus_client's default registry, so in embedded mode (every service in
one process) each service's `/metrics` shows all of them, told apart by the `service` label.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

UNMATCHED_ROUTE = "<unmatched>"

http_requests = Counter(
    "audifi_http_requests",
    "HTTP requests served, by route template and status",
    ("service", "method", "route", "status"),
)
http_request_duration = Histogram(
    "audifi_http_request_duration_seconds",
    "Time from request received to response completed",
    ("service", "method", "route", "status"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
relay_lag = Gauge(
    "audifi_relay_lag",
    "Notifications stored in the service's log but not yet published by its outbox relay",
    ("service", "queue"),
)
consumer_lag = Gauge(
    "audifi_consumer_lag",
    "Messages ready in a consumer's queue, not yet delivered",
    ("service", "queue"),
)
parked_messages = Gauge(
    "audifi_parked_messages",
    "Messages parked after their retries ran out, awaiting redrive or discard",
    ("service", "queue"),
)

projection_lag = Gauge(
    "audifi_projection_lag",
    "Notifications in the service's log after the position its projection runner applied",
    ("service", "projection"),
)
projection_parked = Gauge(
    "audifi_projection_parked_events",
    "Events a projection could not apply and skipped, awaiting retry or discard",
    ("service", "projection"),
)
projection_events_parked = Counter(
    "audifi_projection_events_parked",
    "Events a projection parked (skipped) because its handler failed on them",
    ("service", "projection"),
)


def observe_request(
    service: str, method: str, route: str | None, status: int, started: float
) -> None:
    labels = (service, method, route or UNMATCHED_ROUTE, str(status))
    http_requests.labels(*labels).inc()
    http_request_duration.labels(*labels).observe(time.perf_counter() - started)


__all__ = [
    "UNMATCHED_ROUTE",
    "consumer_lag",
    "http_request_duration",
    "http_requests",
    "observe_request",
    "parked_messages",
    "projection_events_parked",
    "projection_lag",
    "projection_parked",
    "relay_lag",
]
