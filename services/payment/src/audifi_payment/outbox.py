"""Integration events out: the mapping of this service's public domain events to `payment.*` events
(checkout completed, ledger posted, payout sent) in the published language. Nothing is published
yet.
"""
