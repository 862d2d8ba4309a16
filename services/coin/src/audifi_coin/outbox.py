"""Integration events out: the mapping of this service's public domain events to `coin.*` events
(coin launched, tickets purchased, round drawn) in the published language. Nothing is published
yet.
"""
