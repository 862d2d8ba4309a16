"""The analytics service's read models, fed from its own notification log: dashboards and per-
master, per-artist and per-brand analytics, built from other services' events. None is built
yet.
"""
