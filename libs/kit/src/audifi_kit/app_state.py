"""Keys of the app state that the runtime fills and the web layer reads.

They live apart from both so that neither imports the other for a string: the runtime puts the
service's read-model pool at `DB_POOL_STATE_KEY` without importing Litestar, and the
`Idempotency-Key` middleware (or a handler) reads it there.
"""

from __future__ import annotations

DB_POOL_STATE_KEY = "db_pool"

__all__ = ["DB_POOL_STATE_KEY"]
