"""Everything with I/O the payment application needs, each with an in-memory twin that
`bootstrap.in_memory()` injects: Stripe (through the `stripe` SDK: localstripe embedded, real
Stripe distributed) and the chain's DevUSD. None is needed yet.
"""
