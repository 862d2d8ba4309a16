"""Integration events out: the mapping of this service's public domain events to
`analytics.*` events (an anomaly flagged) in the published language. Nothing is published yet.
"""
