"""Integration events out: the mapping of this service's public domain events to `vstudio.*` events
(`vstudio.vote.cast`, `vstudio.session.locked`) in the published language. Nothing is published
yet.
"""
