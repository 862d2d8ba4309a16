"""Everything auth needs that does I/O or holds a secret: the key vault behind crypto-shredding,
password hashing, token signing keys, notify's sealing key, the brute-force counters. Each one
the application uses has an in-memory twin, so `bootstrap.in_memory()` needs no database."""
