"""One-time sign-in proofs: the magic link and the second-factor step of a login.

Both are found by the hash of a random token the client holds (the aggregate id is derived
from that hash); the token itself is never recorded. Each works once, until it expires.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event


class ProofRefused(Exception):
    """Used already, expired, or worn out by wrong codes."""


class MagicLink(Aggregate):
    """`sealed_link` is the link sealed to notify's public key: only notify can open it."""

    @event("Requested")
    def __init__(
        self,
        id: UUID,
        account_id: UUID,
        expires_at: datetime,
        sealed_link: str,
        seal_key_id: str,
    ) -> None:
        self.account_id = account_id
        self.expires_at = expires_at
        self.used_at: datetime | None = None

    def use(self, now: datetime) -> None:
        if self.used_at is not None or now >= self.expires_at:
            raise ProofRefused(str(self.id))
        self._used(used_at=now)

    @event("Used")
    def _used(self, used_at: datetime) -> None:
        self.used_at = used_at


class TwoFactorChallenge(Aggregate):
    """A password login that still needs a TOTP or recovery code."""

    MAX_FAILURES = 5

    @event("Issued")
    def __init__(self, id: UUID, account_id: UUID, method: str, expires_at: datetime) -> None:
        self.account_id = account_id
        self.method = method
        self.expires_at = expires_at
        self.failures = 0
        self.completed_at: datetime | None = None

    def check_open(self, now: datetime) -> None:
        if (
            self.completed_at is not None
            or now >= self.expires_at
            or self.failures >= self.MAX_FAILURES
        ):
            raise ProofRefused(str(self.id))

    def complete(self, now: datetime) -> None:
        self.check_open(now)
        self._completed(completed_at=now)

    def fail(self, now: datetime) -> None:
        self.check_open(now)
        self._failed(failed_at=now)

    @event("Completed")
    def _completed(self, completed_at: datetime) -> None:
        self.completed_at = completed_at

    @event("CodeRefused")
    def _failed(self, failed_at: datetime) -> None:
        self.failures += 1
