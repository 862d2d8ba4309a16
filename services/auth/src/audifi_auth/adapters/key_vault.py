"""Each account's data key: what crypto-shredding seals personal data with (ARCHITECTURE §9).

A key is never in an event. Erasure deletes the account's key, after which every reader of the
log sees None where the person's data was. The service keeps the keys in its database
(`postgres_key_vault`); the in-memory application in this process's memory.
"""

from __future__ import annotations

import os
import threading
from typing import Protocol
from uuid import UUID


class KeyVault(Protocol):
    def create(self, subject_id: UUID) -> None:
        """A new key for a new account (kept when it exists: a retried registration)."""

    def shred(self, subject_id: UUID) -> None:
        """Delete the key for good: what it sealed can never be opened again."""

    def key(self, subject_id: UUID) -> bytes | None:
        """The account's key; None once shredded (or never created)."""

    def close(self) -> None: ...


class MemoryKeyVault:
    """The vault in this process's memory: for the in-memory application."""

    def __init__(self) -> None:
        self._keys: dict[UUID, bytes] = {}
        self._lock = threading.Lock()

    def create(self, subject_id: UUID) -> None:
        with self._lock:
            self._keys.setdefault(subject_id, os.urandom(32))

    def shred(self, subject_id: UUID) -> None:
        with self._lock:
            self._keys.pop(subject_id, None)

    def key(self, subject_id: UUID) -> bytes | None:
        return self._keys.get(subject_id)

    def close(self) -> None:
        pass
