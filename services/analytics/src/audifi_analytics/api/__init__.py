"""The analytics service's HTTP API (paths as the gateway forwards them, without `/api/v1`): event
ingestion, dashboards, campaigns and anomalies. No route is built yet: the gateway answers 404
in the error envelope.
"""
