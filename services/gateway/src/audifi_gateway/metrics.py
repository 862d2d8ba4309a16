"""The gateway's Prometheus metrics, beside the kit's HTTP metrics on the same `/metrics`.

- `audifi_gateway_proxied_requests_total{upstream, method, status}`: requests the gateway
  handed to a service, by the status the client got (503 when the upstream could not be
  reached or its breaker was open).
- `audifi_gateway_upstream_latency_seconds{upstream}`: from sending a request upstream to
  its response headers arriving.
- `audifi_gateway_breaker_state{upstream}`: 0 closed, 1 half-open, 2 open.
- `audifi_gateway_rate_limited_total{class}`: requests refused with 429.
- `audifi_gateway_websocket_sessions{upstream}`: WebSocket sessions being proxied now.

They live in prometheus_client's default registry, as the kit's do.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

proxied_requests = Counter(
    "audifi_gateway_proxied_requests",
    "Requests the gateway forwarded to a service, by the status the client got",
    ("upstream", "method", "status"),
)
upstream_latency = Histogram(
    "audifi_gateway_upstream_latency_seconds",
    "Time from forwarding a request to the upstream's response headers",
    ("upstream",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
breaker_state = Gauge(
    "audifi_gateway_breaker_state",
    "Circuit breaker per upstream: 0 closed, 1 half-open, 2 open",
    ("upstream",),
)
rate_limited = Counter(
    "audifi_gateway_rate_limited",
    "Requests refused with 429 RATE_LIMITED, by rate-limit class",
    ("class",),
)
websocket_sessions = Gauge(
    "audifi_gateway_websocket_sessions",
    "WebSocket sessions the gateway is proxying now",
    ("upstream",),
)
