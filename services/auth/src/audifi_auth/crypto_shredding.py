"""Crypto-shredding: personal data in auth's events is sealed with a key per account.

The keys live in one table of auth's database (`auth_subject_keys`), never in an event. The
event store's mapper seals the fields an event class names in `personal_data` (AES-256-GCM,
the account id and field name as associated data) before writing, and opens them when
reading. Erasure deletes the account's key: from then on every reader of the log — the
aggregate, the read models, their replays, the relay, `audifi history` — sees None where the
e-mail, password hash, TOTP secret, wallet or display name were, while ids stay valid.

Keys are cached in memory for a short while (the relay and the projections open every event
they read, in the kit's worker threads); erasure through this process evicts its own cache at
once, another replica's entry lapses within `CACHE_SECONDS`.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from typing import Any
from uuid import UUID

from audifi_kit import metadata as meta
from audifi_kit.eventstore import MetadataMapper
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import StoredEvent
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

SEALED_PREFIX = "sealed:v1:"
CACHE_SECONDS = 30.0

KEYS_DDL = """
CREATE TABLE IF NOT EXISTS auth_subject_keys (
    subject_id uuid PRIMARY KEY,
    key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""


class KeyVault:
    """Each account's data key, in auth's own database."""

    def __init__(self, conninfo: str) -> None:
        self._pool = ConnectionPool(conninfo, min_size=1, max_size=2, open=True)
        self._cache: dict[UUID, tuple[bytes | None, float]] = {}
        self._lock = threading.Lock()
        with self._pool.connection() as conn:
            conn.execute(KEYS_DDL)

    @classmethod
    def from_env(cls, env: Any) -> KeyVault:
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
        """A new key for a new account (kept when it exists: a retried registration)."""
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO auth_subject_keys (subject_id, key) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING",
                (subject_id, os.urandom(32)),
            )
        self._forget(subject_id)

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

    def _forget(self, subject_id: UUID) -> None:
        with self._lock:
            self._cache.pop(subject_id, None)

    def close(self) -> None:
        self._pool.close()


def _aad(subject_id: UUID, field: str) -> bytes:
    return f"{subject_id}:{field}".encode()


def seal(key: bytes, subject_id: UUID, field: str, value: Any) -> str:
    nonce = os.urandom(12)
    plain = json.dumps(value, separators=(",", ":")).encode()
    sealed = AESGCM(key).encrypt(nonce, plain, _aad(subject_id, field))
    return SEALED_PREFIX + base64.b64encode(nonce + sealed).decode()


def unseal(key: bytes | None, subject_id: UUID, field: str, value: Any) -> Any:
    if not isinstance(value, str) or not value.startswith(SEALED_PREFIX):
        return value
    if key is None:
        return None
    raw = base64.b64decode(value[len(SEALED_PREFIX) :])
    plain = AESGCM(key).decrypt(raw[:12], raw[12:], _aad(subject_id, field))
    return json.loads(plain)


def _subject(cls: type, state: dict[str, Any]) -> UUID | None:
    value = state.get(getattr(cls, "data_subject", "originator_id"))
    if value is None:
        return None
    return value if isinstance(value, UUID) else UUID(str(value))


class ShreddingMapper(MetadataMapper):
    """The kit's mapper, sealing and opening each event's personal fields."""

    vault: KeyVault | None = None

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        fields = getattr(type(domain_event), "personal_data", ())
        if not fields or self.vault is None:
            return super().to_stored_event(domain_event)
        state = dict(vars(domain_event))
        subject = _subject(type(domain_event), state)
        key = self.vault.key(subject) if subject is not None else None
        for field in fields:
            if state.get(field) is not None:
                state[field] = seal(key, subject, field, state[field]) if key else None
        clone = object.__new__(type(domain_event))
        object.__setattr__(clone, "__dict__", state)
        return super().to_stored_event(clone)

    def decode(
        self, stored_event: StoredEvent
    ) -> tuple[DomainEventProtocol[UUID], meta.EventMetadata]:
        domain_event, event_meta = super().decode(stored_event)
        fields = getattr(type(domain_event), "personal_data", ())
        if fields and self.vault is not None:
            state = vars(domain_event)
            subject = _subject(type(domain_event), state)
            key = self.vault.key(subject) if subject is not None else None
            for field in fields:
                state[field] = unseal(key, subject, field, state.get(field))
        return domain_event, event_meta
