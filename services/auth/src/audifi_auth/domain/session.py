"""A sign-in Session: one family of rotating refresh tokens (only their hashes are kept).

Each refresh hands out a new token and retires the one presented. A retired token presented
again means it was copied: the whole family is revoked, the thief's and the owner's tokens
alike.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event


class SessionEnded(Exception):
    """The session is revoked or expired: its refresh tokens no longer work."""


class RefreshTokenReused(Exception):
    """A retired refresh token came back: the session has just been revoked for it."""


class UnknownRefreshToken(Exception):
    pass


class Session(Aggregate):
    @event("Started")
    def __init__(
        self,
        id: UUID,
        account_id: UUID,
        method: str,
        refresh_token_hash: str,
        started_at: datetime,
        expires_at: datetime,
    ) -> None:
        self.account_id = account_id
        self.method = method
        self.refresh_token_hash = refresh_token_hash
        self.retired_hashes: list[str] = []
        self.started_at = started_at
        self.expires_at = expires_at
        self.revoked_at: datetime | None = None
        self.revoke_reason: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def active(self, now: datetime) -> bool:
        return not self.revoked and now < self.expires_at

    def rotate(self, presented_hash: str, new_hash: str, now: datetime) -> None:
        """Swap the presented refresh token for a new one, or revoke the family on reuse.

        On reuse this records the revocation and then raises `RefreshTokenReused`: the caller
        saves the aggregate before answering.
        """
        if presented_hash in self.retired_hashes:
            if not self.revoked:
                self.revoke("refresh_token_reuse", now)
            raise RefreshTokenReused(str(self.id))
        if presented_hash != self.refresh_token_hash:
            raise UnknownRefreshToken(str(self.id))
        if not self.active(now):
            raise SessionEnded(str(self.id))
        self._refresh_token_rotated(new_hash=new_hash, rotated_at=now)

    def revoke(self, reason: str, now: datetime) -> bool:
        if self.revoked:
            return False
        self._revoked(account_id=self.account_id, reason=reason, revoked_at=now)
        return True

    @event("RefreshTokenRotated")
    def _refresh_token_rotated(self, new_hash: str, rotated_at: datetime) -> None:
        self.retired_hashes.append(self.refresh_token_hash)
        self.refresh_token_hash = new_hash

    @event("Revoked")
    def _revoked(self, account_id: UUID, reason: str, revoked_at: datetime) -> None:
        self.revoked_at = revoked_at
        self.revoke_reason = reason
