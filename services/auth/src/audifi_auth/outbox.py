"""Which of auth's domain events are published, and as which integration events.

Everything else — password hashes, TOTP secrets, refresh-token rotations, one-time proofs,
index entries — stays inside the service.
"""

from __future__ import annotations

from audifi_events import auth as published
from audifi_kit.outbox import OutboxMapping

from audifi_auth.config import ACCESS_TOKEN_TTL
from audifi_auth.domain.account import Account
from audifi_auth.domain.preferences import Preferences
from audifi_auth.domain.session import Session
from audifi_auth.domain.sign_in import MagicLink

outbox = OutboxMapping("auth")


@outbox.maps(Account.Registered)
def _registered(e: Account.Registered) -> published.AccountRegistered:
    return published.AccountRegistered(
        account_id=str(e.originator_id),
        email=e.email,
        wallet_address=e.wallet_address,
        roles=list(e.roles),
        registered_at=e.registered_at,
    )


@outbox.maps(Account.RoleGranted)
def _role_granted(e: Account.RoleGranted) -> published.RoleGranted:
    return published.RoleGranted(
        account_id=str(e.originator_id),
        role=e.role,
        granted_by=str(e.granted_by) if e.granted_by else None,
    )


@outbox.maps(Account.TwoFactorEnabled)
def _two_factor_enabled(e: Account.TwoFactorEnabled) -> published.TwoFactorEnabled:
    return published.TwoFactorEnabled(account_id=str(e.originator_id), enabled_at=e.enabled_at)


@outbox.maps(Account.WalletLinked)
def _wallet_linked(e: Account.WalletLinked) -> published.WalletLinked | None:
    if e.wallet_address is None:  # erased before the relay got here: nothing left to say
        return None
    return published.WalletLinked(
        account_id=str(e.originator_id),
        wallet_address=e.wallet_address,
        chain=e.chain,
        linked_at=e.linked_at,
    )


@outbox.maps(Account.Erased)
def _erased(e: Account.Erased) -> published.AccountErased:
    return published.AccountErased(account_id=str(e.originator_id), erased_at=e.erased_at)


@outbox.maps(Session.Started)
def _session_started(e: Session.Started) -> published.SessionStarted:
    return published.SessionStarted(
        session_id=str(e.originator_id),
        account_id=str(e.account_id),
        method=e.method,
        started_at=e.started_at,
    )


@outbox.maps(Session.Revoked)
def _session_revoked(e: Session.Revoked) -> published.SessionRevoked:
    # Access tokens of the session were all issued before the revocation: they expire within
    # one access-token lifetime of it.
    return published.SessionRevoked(
        session_id=str(e.originator_id),
        account_id=str(e.account_id),
        revoked_at=e.revoked_at,
        access_tokens_valid_until=e.revoked_at + ACCESS_TOKEN_TTL,
        reason=e.reason,
    )


@outbox.maps(MagicLink.Requested)
def _magic_link(e: MagicLink.Requested) -> published.MagicLinkRequested:
    return published.MagicLinkRequested(
        account_id=str(e.account_id),
        sealed_link=e.sealed_link,
        seal_key_id=e.seal_key_id,
        expires_at=e.expires_at,
    )


@outbox.maps(Preferences.Chosen, Preferences.ChosenAgain)
def _preferences(e: Preferences.Chosen) -> published.PreferencesSet | None:
    if e.interests is None:  # erased
        return None
    return published.PreferencesSet(
        account_id=str(e.account_id), interests=list(e.interests), privacy=dict(e.privacy)
    )
