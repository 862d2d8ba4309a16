"""Notify's X25519 key pair: auth seals each magic link to its public half (a NaCl sealed box),
so only notify can open the link, and only to put it in the e-mail.

The private key comes from NOTIFY_SEAL_KEY (base64 of its 32 raw bytes) or, unset, is
generated once and kept at `<var_dir>/notify/seal_key` (mode 0600).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, SealedBox

from audifi_notify.application import SealedLinkUnreadable


@dataclass(frozen=True)
class SealKey:
    private: PrivateKey

    @property
    def public_bytes(self) -> bytes:
        return bytes(self.private.public_key)

    @property
    def key_id(self) -> str:
        """A stable name for the public key: the first 16 hex digits of its SHA-256."""
        return hashlib.sha256(self.public_bytes).hexdigest()[:16]

    @property
    def public_b64(self) -> str:
        return base64.b64encode(self.public_bytes).decode()

    def open(self, sealed_b64: str) -> str:
        try:
            return SealedBox(self.private).decrypt(base64.b64decode(sealed_b64)).decode()
        except (CryptoError, binascii.Error, ValueError, UnicodeDecodeError) as exc:
            raise SealedLinkUnreadable(type(exc).__name__) from None

    @classmethod
    def generate(cls) -> SealKey:
        return cls(PrivateKey.generate())

    @classmethod
    def from_b64(cls, raw: str) -> SealKey:
        key = base64.b64decode(raw.strip(), validate=True)
        if len(key) != 32:
            raise ValueError("NOTIFY_SEAL_KEY must be the base64 of 32 raw bytes")
        return cls(PrivateKey(key))

    @classmethod
    def load_or_create(cls, path: Path) -> SealKey:
        """The key kept at `path`, generated there (mode 0600) on first use."""
        if path.exists():
            return cls.from_b64(path.read_text())
        path.parent.mkdir(parents=True, exist_ok=True)
        key = PrivateKey.generate()
        encoded = base64.b64encode(bytes(key)).decode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return cls.from_b64(path.read_text())
        with os.fdopen(fd, "w") as f:
            f.write(encoded)
        return cls(key)
