"""The vstudio service's HTTP and WebSocket API (paths as the gateway forwards them, without
`/api/v1`)."""
