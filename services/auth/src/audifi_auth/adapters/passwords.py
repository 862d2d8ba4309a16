"""Password hashing: argon2id (argon2-cffi's PasswordHasher).

Production parameters (RFC 9106's second recommended option, argon2-cffi's defaults):
time_cost=3 passes, memory_cost=65536 KiB (64 MiB), parallelism=4 lanes, 16-byte salt,
32-byte hash. They may be lowered only through AUTH_ARGON2_* (tests do); a hash made with other
parameters still verifies and is re-hashed at the next successful login.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
MAX_LENGTH = 1024


class WeakPassword(ValueError):
    pass


class Passwords:
    def __init__(self, *, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4):
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Verifying against this keeps an unknown e-mail as slow as a wrong password.
        self._decoy = self._hasher.hash("decoy password that matches nothing")

    @staticmethod
    def check_policy(password: str) -> None:
        if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
            raise WeakPassword(f"a password has {MIN_LENGTH} to {MAX_LENGTH} characters")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._decoy, password) and (
                password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
