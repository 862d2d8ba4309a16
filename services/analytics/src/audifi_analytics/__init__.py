"""AudiFi analytics service. Read models over every service's events: dashboards, campaigns,
anomalies.
"""
