"""Everything with I/O the analytics application needs, each with an in-memory twin that
`bootstrap.in_memory()` injects: the ingestion buffer a hot path groups its writes through. None
is needed yet.
"""
