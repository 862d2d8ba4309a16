"""What commands answer: plain values the API turns into responses.

`position` is the notification id of the last event a command saved (0 when it saved none):
the API waits for the read models to reach it before it answers (read-your-writes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class SignedIn:
    account_id: UUID
    session_id: UUID
    roles: list[str]
    refresh_token: str
    position: int
    account_created: bool = False


@dataclass(frozen=True, slots=True)
class SecondFactorNeeded:
    challenge_token: str
    expires_at: datetime
    position: int


@dataclass(frozen=True, slots=True)
class MagicLinkIssued:
    account_id: UUID
    position: int


@dataclass(frozen=True, slots=True)
class Revoked:
    session_id: UUID
    account_id: UUID
    position: int
