"""The auth service's HTTP API (paths as the gateway forwards them, without `/api/v1`)."""
