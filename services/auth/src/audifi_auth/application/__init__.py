"""Auth's eventsourcing application: one method per command, grouped by sub-domain.

One Application (one event store) over the aggregates in `domain/`; its commands live in one
module per sub-domain, each a class over `AuthCore`: sign-in (password, magic link, wallet),
two-factor, sessions, profile (name, roles, wallets, preferences) and erasure.
`bootstrap` builds it, on PostgreSQL or in memory.
"""

from __future__ import annotations

from audifi_auth.application.erasure import ErasureCommands
from audifi_auth.application.profile import ProfileCommands
from audifi_auth.application.results import (
    MagicLinkIssued,
    Revoked,
    SecondFactorNeeded,
    SignedIn,
)
from audifi_auth.application.sessions import SessionCommands
from audifi_auth.application.sign_in import SignInCommands


class AuthApplication(SignInCommands, SessionCommands, ProfileCommands, ErasureCommands):
    """Identity: accounts, sessions, 2FA, wallets, MediaID preferences, erasure."""


__all__ = [
    "AuthApplication",
    "MagicLinkIssued",
    "Revoked",
    "SecondFactorNeeded",
    "SignedIn",
]
