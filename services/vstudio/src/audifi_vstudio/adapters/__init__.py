"""Everything with I/O vstudio needs, each with an in-memory twin: the session rooms (Redis
pub/sub and presence distributed, plain dicts embedded)."""
