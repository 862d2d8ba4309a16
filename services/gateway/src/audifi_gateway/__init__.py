"""AudiFi's API gateway: the one door clients use (ARCHITECTURE.md §7).

Every client route lives under `/api/v1`; the gateway maps it to a service through one route
table (`routes`), verifies access tokens at the edge (`edge_auth`, `revocations`), rate-limits
(`ratelimit`), applies CORS, per-route timeouts and a circuit breaker per upstream (`breaker`),
proxies HTTP (`proxy`) and the V Studio WebSocket (`websocket`), and serves one merged OpenAPI
document (`openapi`) and an upstream health page (`upstream_health`). It owns no data.
"""
