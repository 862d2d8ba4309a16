"""The key vault in auth's own database: one table, `auth_subject_keys`.

Keys are cached in memory for a short while (the relay and the projections open every event
they read, in the kit's worker threads); erasure through this process evicts its own cache at
once, another replica's entry lapses within `CACHE_SECONDS`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from uuid import UUID

from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

CACHE_SECONDS = 30.0

KEYS_DDL = """
CREATE TABLE IF NOT EXISTS auth_subject_keys (
    subject_id uuid PRIMARY KEY,
    key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""


class PostgresKeyVault:
    """The vault in auth's own database (its table is created when the vault is opened)."""

    def __init__(self, conninfo: str) -> None:
        self._pool = ConnectionPool(conninfo, min_size=1, max_size=2, open=True)
        self._cache: dict[UUID, tuple[bytes | None, float]] = {}
        self._lock = threading.Lock()
        with self._pool.connection() as conn:
            conn.execute(KEYS_DDL)

    @classmethod
    def beside_event_store(cls, env: Mapping[str, str]) -> PostgresKeyVault:
        """The vault in the database the event store's `env` names (the kit's settings)."""
        return cls(
            make_conninfo(
                host=env.get("POSTGRES_HOST"),
                port=env.get("POSTGRES_PORT"),
                dbname=env.get("POSTGRES_DBNAME"),
                user=env.get("POSTGRES_USER"),
                password=env.get("POSTGRES_PASSWORD") or None,
            )
        )

    def create(self, subject_id: UUID) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO auth_subject_keys (subject_id, key) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING",
                (subject_id, os.urandom(32)),
            )
        with self._lock:
            self._cache.pop(subject_id, None)

    def shred(self, subject_id: UUID) -> None:
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM auth_subject_keys WHERE subject_id = %s", (subject_id,))
        with self._lock:
            self._cache[subject_id] = (None, time.monotonic() + 10 * 365 * 86400)

    def key(self, subject_id: UUID) -> bytes | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(subject_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT key FROM auth_subject_keys WHERE subject_id = %s", (subject_id,)
            ).fetchone()
        found = bytes(row[0]) if row else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[subject_id] = (found, now + CACHE_SECONDS)
        return found

    def close(self) -> None:
        self._pool.close()
