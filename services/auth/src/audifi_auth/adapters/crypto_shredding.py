"""Crypto-shredding: personal data in auth's events is sealed with a key per account.

The event store's mapper seals the fields an event class names in `personal_data` (AES-256-GCM,
the account id and field name as associated data) before writing, and opens them when reading,
with the account's key from the `KeyVault` handed to it. Erasure deletes the key: from then on
every reader of the log — the aggregate, the read models, their replays, the relay,
`audifi history` — sees None where the e-mail, password hash, TOTP secret, wallet or display
name were, while ids stay valid.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from audifi_kit import metadata as meta
from audifi_kit.eventstore import MetadataMapper
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import StoredEvent

from audifi_auth.adapters.key_vault import KeyVault

SEALED_PREFIX = "sealed:v1:"


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

    # Set by the application before the mapper is used; never None after that: writing
    # personal data with no vault at hand would store it in clear.
    vault: KeyVault

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        fields = getattr(type(domain_event), "personal_data", ())
        if not fields:
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

    def decode_many(
        self, stored_events: Iterable[StoredEvent]
    ) -> list[tuple[DomainEventProtocol[UUID], meta.EventMetadata]]:
        # The kit's `decode` and the relay's and projections' page reads all come through here.
        decoded = super().decode_many(stored_events)
        for domain_event, _ in decoded:
            fields = getattr(type(domain_event), "personal_data", ())
            if fields:
                state = vars(domain_event)
                subject = _subject(type(domain_event), state)
                key = self.vault.key(subject) if subject is not None else None
                for field in fields:
                    state[field] = unseal(key, subject, field, state.get(field))
        return decoded
