"""Events the auth service publishes.

Personal data: `AccountRegistered` and `EmailAddressReplaced` carry the e-mail address, because
notify must know where to write. A consumer that keeps it must forget it on `AccountErased`. Nothing
else here names a person. The magic-link token never travels in clear: auth seals the link to
notify's public key (a NaCl sealed box), so only notify can open it, only to send it.
"""

from __future__ import annotations

from datetime import datetime

from audifi_events.registry import IntegrationEvent, integration_event


@integration_event("auth.account.registered")
class AccountRegistered(IntegrationEvent, kw_only=True):
    """An account was created: by e-mail (signup or first magic link) or by a first wallet
    sign-in."""

    account_id: str
    email: str | None
    wallet_address: str | None
    roles: list[str]
    registered_at: datetime


@integration_event("auth.account.email_address_replaced")
class EmailAddressReplaced(IntegrationEvent, kw_only=True):
    """The account's e-mail address is now `email`.

    Not published yet: auth has no command that replaces an address (none of the seeds asks
    for one, and one needs the new address proven first). Notify already keeps its address
    book by it.
    """

    account_id: str
    email: str


@integration_event("auth.account.role_granted")
class RoleGranted(IntegrationEvent, kw_only=True):
    """The account holds `role` (fan, artist, brand, admin) from now on. `granted_by` is the
    admin's account id, or None when granted by configuration (ADMIN_EMAILS, ADMIN_WALLETS)."""

    account_id: str
    role: str
    granted_by: str | None


@integration_event("auth.account.two_factor_enabled")
class TwoFactorEnabled(IntegrationEvent, kw_only=True):
    """Sign-ins to the account need a TOTP code (or a recovery code) from now on."""

    account_id: str
    enabled_at: datetime


@integration_event("auth.wallet.linked")
class WalletLinked(IntegrationEvent, kw_only=True):
    """The account proved it controls `wallet_address` (`chain`: "evm" or "solana")."""

    account_id: str
    wallet_address: str
    chain: str
    linked_at: datetime


@integration_event("auth.session.started")
class SessionStarted(IntegrationEvent, kw_only=True):
    """Someone signed in. `method`: password, magic_link, wallet."""

    session_id: str
    account_id: str
    method: str
    started_at: datetime


@integration_event("auth.session.revoked", version=2)
class SessionRevoked(IntegrationEvent, kw_only=True):
    """A sign-in session ended (logout, refresh-token reuse, erasure, an admin's action).

    Access tokens carrying `sessionId` are refused from now on, at the gateway and by every
    service, although they have not expired yet. `accessTokensValidUntil` is when the last of
    them expires: after it, nobody needs to remember the revocation.
    """

    session_id: str
    account_id: str
    revoked_at: datetime
    access_tokens_valid_until: datetime
    reason: str


def _session_revoked_v2(v1: SessionRevokedV1) -> SessionRevoked:
    return SessionRevoked(
        session_id=v1.session_id,
        account_id=v1.user_id,
        revoked_at=v1.revoked_at,
        access_tokens_valid_until=v1.access_tokens_valid_until,
        reason=v1.reason,
    )


@integration_event("auth.session.revoked", version=1, upcast=_session_revoked_v2)
class SessionRevokedV1(IntegrationEvent, kw_only=True):
    """Superseded by version 2 (the account is `accountId`, as in every other event);
    consumers receive it as version 2."""

    session_id: str
    user_id: str
    revoked_at: datetime
    access_tokens_valid_until: datetime
    reason: str


@integration_event("auth.preferences.set")
class PreferencesSet(IntegrationEvent, kw_only=True):
    """MediaID preferences: the account's interests, and which of its data brands' analytics
    may use (`privacy`: setting name -> allowed)."""

    account_id: str
    interests: list[str]
    privacy: dict[str, bool]


def _preferences_set(old: PreferencesUpdated) -> PreferencesSet:
    return PreferencesSet(account_id=old.account_id, interests=old.interests, privacy=old.privacy)


@integration_event("auth.preferences.updated", upcast=_preferences_set)
class PreferencesUpdated(IntegrationEvent, kw_only=True):
    """Superseded by `auth.preferences.set` (events say what happened in the domain's words);
    consumers receive it as `PreferencesSet`."""

    account_id: str
    interests: list[str]
    privacy: dict[str, bool]


@integration_event("auth.magic_link.requested")
class MagicLinkRequested(IntegrationEvent, kw_only=True):
    """Someone asked for a sign-in link for `account_id`. `sealed_link` is the link sealed to
    notify's public key (base64 NaCl sealed box, key id `seal_key_id`): only notify opens it,
    to put it in the e-mail. It stops working at `expires_at` and after one use."""

    account_id: str
    sealed_link: str
    seal_key_id: str
    expires_at: datetime


@integration_event("auth.account.erased")
class AccountErased(IntegrationEvent, kw_only=True):
    """The account asked to be forgotten: every service deletes what it kept about the person
    (addresses, names, preferences). Ids and financial facts stay valid."""

    account_id: str
    erased_at: datetime
