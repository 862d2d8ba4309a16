"""The auth service's eventsourcing application: one method per command.

Methods run in a worker thread (the kit's `EventStore.call`). Each loads what it needs,
lets the aggregates decide, and saves everything the command changed in one transaction —
an account together with the index entries that make its e-mail or wallet unique, a session
together with the role a configured admin receives at sign-in. A lost race on an index entry
surfaces as the event store's IntegrityError (the kit's ConcurrencyConflict, 409).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4, uuid5

import pyotp
from audifi_kit.eventstore import ServiceApplication
from audifi_kit.http.fields import EmailAddress, check
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper

from audifi_auth.config import AuthConfig
from audifi_auth.crypto_shredding import KeyVault, ShreddingMapper
from audifi_auth.domain.account import (
    Account,
    AccountErased,
    Role,
    TwoFactorAlreadyOn,
    TwoFactorNotPending,
    WalletAlreadyLinked,
)
from audifi_auth.domain.address_index import AddressIndex
from audifi_auth.domain.preferences import Preferences, preferences_id
from audifi_auth.domain.session import (
    RefreshTokenReused,
    Session,
    SessionEnded,
    UnknownRefreshToken,
)
from audifi_auth.domain.sign_in import MagicLink, ProofRefused, TwoFactorChallenge
from audifi_auth.domain.wallet import (
    ChallengeRefused,
    SignInRequest,
    Wallet,
    WalletChallenge,
    nonce_of,
    signed_by,
)
from audifi_auth.errors import (
    AccountNotFound,
    AddressAlreadyRegistered,
    InvalidCredentials,
    InvalidRefreshToken,
    InvalidSignature,
    InvalidToken,
    InvalidTwoFactorCode,
    SecondFactorLocked,
    TwoFactorStateConflict,
)
from audifi_auth.passwords import Passwords

NAMESPACE = UUID("0b7f3a52-3c44-4d0e-9d7c-5a0e8f1e2c11")
RECOVERY_CODES = 10


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _proof_id(kind: str, token: str) -> UUID:
    """Where a one-time proof is found: from the hash of its token, never the token."""
    return uuid5(NAMESPACE, f"{kind}:{sha256(token)}")


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


class AuthApplication(ServiceApplication):
    """Identity: accounts, sessions, 2FA, wallets, MediaID preferences, erasure."""

    vault: KeyVault
    config: AuthConfig
    passwords: Passwords

    def construct_mapper(self) -> Mapper[UUID]:
        base = super().construct_mapper()
        mapper = ShreddingMapper(
            transcoder=base.transcoder, compressor=base.compressor, cipher=base.cipher
        )
        self.vault = KeyVault.from_env(self.env)
        mapper.vault = self.vault
        return mapper

    def configure(self, config: AuthConfig) -> None:
        """What commands need beyond the event store (the ops CLI never calls this)."""
        self.config = config
        self.passwords = Passwords(
            time_cost=config.argon2_time_cost,
            memory_kib=config.argon2_memory_kib,
            parallelism=config.argon2_parallelism,
        )
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def close(self) -> None:
        super().close()
        self.vault.close()

    # --- lookups ------------------------------------------------------------------------

    def digest(self, kind: str, value: str) -> str:
        return hmac.new(self.config.index_secret, f"{kind}:{value}".encode(), "sha256").hexdigest()

    def index_id(self, kind: str, value: str) -> UUID:
        return uuid5(NAMESPACE, self.digest(kind, value))

    def _get(self, aggregate_id: UUID) -> Any | None:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def account(self, account_id: UUID) -> Account:
        found = self._get(account_id)
        if not isinstance(found, Account) or found.erased:
            raise AccountNotFound()
        return found

    def account_by(self, kind: str, value: str) -> Account | None:
        index = self._get(self.index_id(kind, value))
        if index is None or not index.held:
            return None
        account = self._get(index.account_id)
        return account if isinstance(account, Account) and not account.erased else None

    def _save(self, *aggregates: Aggregate | None) -> int:
        recordings = self.save(*[a for a in aggregates if a is not None])
        return recordings[-1].notification.id if recordings else 0

    # --- accounts -----------------------------------------------------------------------

    def _new_account(
        self,
        *,
        email: str | None = None,
        wallet: Wallet | None = None,
    ) -> tuple[Account, AddressIndex]:
        if email is not None:
            check(EmailAddress, email, field="email")  # never an address mail cannot reach
        account_id = uuid4()
        kind, value = ("email", email.lower()) if email else ("wallet", wallet.key)  # type: ignore[union-attr]
        index_id = self.index_id(kind, value)
        index = self._get(index_id)
        if index is not None and index.held:
            raise AddressAlreadyRegistered()
        self.vault.create(account_id)
        account = Account(
            id=account_id,
            email=email,
            wallet_address=wallet.address if wallet else None,
            wallet_chain=wallet.chain if wallet else None,
            roles=[Role.FAN.value],
            registered_at=self.clock(),
        )
        if index is None:
            index = AddressIndex(id=index_id, kind=kind, account_id=account_id)
        else:
            index.claim_again(account_id)
        return account, index

    def _grant_configured_admin(self, account: Account) -> None:
        configured = (account.email or "").lower() in self.config.admin_emails or any(
            w.lower() in self.config.admin_wallets for w in account.wallets
        )
        if configured:
            account.grant_role(Role.ADMIN, granted_by=None)

    def sign_up(self, email: str, password: str) -> SignedIn:
        password_hash = self.passwords.hash(password)
        account, index = self._new_account(email=email)
        account.set_password(password_hash)
        return self._start_session(account, "password", index, created=True)

    def log_in(self, email: str, password: str) -> SignedIn | SecondFactorNeeded:
        account = self.account_by("email", email.lower())
        stored = account.password_hash if account is not None else None
        if not self.passwords.verify(stored, password) or account is None:
            raise InvalidCredentials()
        if self.passwords.needs_rehash(stored):  # type: ignore[arg-type]
            account.set_password(self.passwords.hash(password))
        if account.two_factor_enabled:
            return self._second_factor(account, "password")
        return self._start_session(account, "password")

    def edit_profile(self, account_id: UUID, display_name: str | None) -> int:
        account = self.account(account_id)
        account.set_display_name(display_name)
        return self._save(account)

    def grant_role(self, account_id: UUID, role: Role, granted_by: UUID) -> int:
        account = self.account(account_id)
        account.grant_role(role, granted_by=granted_by)
        return self._save(account)

    # --- sessions -----------------------------------------------------------------------

    def _start_session(
        self, account: Account, method: str, *changed: Aggregate | None, created: bool = False
    ) -> SignedIn:
        try:
            self._grant_configured_admin(account)
        except AccountErased:
            raise AccountNotFound() from None
        now = self.clock()
        session_id = uuid4()
        refresh_token = f"{session_id.hex}.{secrets.token_urlsafe(32)}"
        session = Session(
            id=session_id,
            account_id=account.id,
            method=method,
            refresh_token_hash=sha256(refresh_token),
            started_at=now,
            expires_at=now + self.config.refresh_ttl,
        )
        position = self._save(account, *changed, session)
        return SignedIn(
            account.id, session_id, list(account.roles), refresh_token, position, created
        )

    def refresh(self, refresh_token: str) -> SignedIn | Revoked:
        """A new refresh token for the presented one; on reuse, the revocation (saved)."""
        session_hex, _, _ = refresh_token.partition(".")
        try:
            session_id = UUID(hex=session_hex)
        except ValueError:
            raise InvalidRefreshToken() from None
        session = self._get(session_id)
        if not isinstance(session, Session):
            raise InvalidRefreshToken()
        new_token = f"{session_id.hex}.{secrets.token_urlsafe(32)}"
        try:
            session.rotate(sha256(refresh_token), sha256(new_token), self.clock())
        except RefreshTokenReused:
            position = self._save(session)
            return Revoked(session.id, session.account_id, position)
        except (UnknownRefreshToken, SessionEnded):
            raise InvalidRefreshToken() from None
        account = self._get(session.account_id)
        if not isinstance(account, Account) or account.erased:
            raise InvalidRefreshToken()
        position = self._save(session)
        return SignedIn(account.id, session.id, list(account.roles), new_token, position)

    def revoke_session(self, session_id: UUID, account_id: UUID | None, reason: str) -> int:
        session = self._get(session_id)
        if not isinstance(session, Session) or (
            account_id is not None and session.account_id != account_id
        ):
            return 0
        session.revoke(reason, self.clock())
        return self._save(session)

    # --- magic link ---------------------------------------------------------------------

    def request_magic_link(
        self, email: str, token: str, sealed_link: str, seal_key_id: str
    ) -> MagicLinkIssued:
        account = self.account_by("email", email.lower())
        index = None
        if account is None:
            account, index = self._new_account(email=email)
        link = MagicLink(
            id=_proof_id("magic", token),
            account_id=account.id,
            expires_at=self.clock() + self.config.magic_link_ttl,
            sealed_link=sealed_link,
            seal_key_id=seal_key_id,
        )
        position = self._save(account if index is not None else None, index, link)
        return MagicLinkIssued(account.id, position)

    def verify_magic_link(self, token: str) -> SignedIn | SecondFactorNeeded:
        link = self._get(_proof_id("magic", token))
        if not isinstance(link, MagicLink):
            raise InvalidToken()
        try:
            link.use(self.clock())
        except ProofRefused:
            raise InvalidToken() from None
        account = self._get(link.account_id)
        if not isinstance(account, Account) or account.erased:
            raise InvalidToken()
        if account.two_factor_enabled:
            return self._second_factor(account, "magic_link", link)
        return self._start_session(account, "magic_link", link)

    # --- two-factor ---------------------------------------------------------------------

    def _second_factor(
        self, account: Account, method: str, *changed: Aggregate
    ) -> SecondFactorNeeded:
        token = secrets.token_urlsafe(32)
        expires_at = self.clock() + self.config.two_factor_ttl
        challenge = TwoFactorChallenge(
            id=_proof_id("2fa", token), account_id=account.id, method=method, expires_at=expires_at
        )
        position = self._save(account, *changed, challenge)
        return SecondFactorNeeded(token, expires_at, position)

    def _code_matches(self, account: Account, code: str) -> bool:
        """A current, unused TOTP code, or an unused recovery code (either spent by this call)."""
        code = code.strip().replace(" ", "")
        if code.isdigit() and len(code) == 6:
            step = self._totp_step(account.totp_secret, code, account)
            if step is None:
                return False
            account.use_totp_step(step)
            return True
        return account.use_recovery_code(self.digest("recovery", code.lower()))

    def _totp_step(self, secret: str | None, code: str, account: Account) -> int | None:
        """The time step (now, or one either side for clock drift) whose code `code` is and
        that no accepted code has reached yet; None when there is none."""
        if secret is None or not (code.isdigit() and len(code) == 6):
            return None
        totp = pyotp.TOTP(secret)
        now = totp.timecode(self.clock())
        for step in (now - 1, now, now + 1):
            if account.totp_step_unused(step) and hmac.compare_digest(
                totp.generate_otp(step), code
            ):
                return step
        return None

    def complete_second_factor(self, challenge_token: str, code: str) -> SignedIn:
        challenge = self._get(_proof_id("2fa", challenge_token))
        if not isinstance(challenge, TwoFactorChallenge):
            raise InvalidToken()
        now = self.clock()
        try:
            challenge.check_open(now)
        except ProofRefused:
            raise InvalidToken() from None
        account = self._get(challenge.account_id)
        if not isinstance(account, Account) or not account.two_factor_enabled:
            raise InvalidToken()
        locked = account.second_factor_lock(now)
        if locked is not None:
            raise SecondFactorLocked(locked - now)
        if not self._code_matches(account, code):
            challenge.fail(now)
            account.refuse_second_factor(
                now,
                max_failures=self.config.two_factor_max_failures,
                lock=self.config.two_factor_lock,
            )
            self._save(challenge, account)
            raise InvalidTwoFactorCode()
        challenge.complete(now)
        return self._start_session(account, challenge.method, challenge)

    def set_up_two_factor(self, account_id: UUID) -> tuple[str, str]:
        account = self.account(account_id)
        secret = pyotp.random_base32()
        try:
            account.issue_totp_secret(secret)
        except TwoFactorAlreadyOn:
            raise TwoFactorStateConflict("Two-factor authentication is on already") from None
        self._save(account)
        label = account.email or next(iter(account.wallets), str(account.id))
        uri = pyotp.TOTP(secret).provisioning_uri(name=label, issuer_name="AudiFi")
        return secret, uri

    def enable_two_factor(self, account_id: UUID, code: str) -> tuple[list[str], int]:
        account = self.account(account_id)
        if account.two_factor_enabled or account.pending_totp_secret is None:
            raise TwoFactorStateConflict("Call /auth/2fa/setup first")
        step = self._totp_step(account.pending_totp_secret, code.strip(), account)
        if step is None:
            raise InvalidTwoFactorCode()
        codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
        try:
            account.enable_two_factor(
                [self.digest("recovery", c) for c in codes], enabled_at=self.clock()
            )
        except (TwoFactorAlreadyOn, TwoFactorNotPending):
            raise TwoFactorStateConflict() from None
        account.use_totp_step(step)  # the code that turned it on signs nobody in
        return codes, self._save(account)

    # --- wallets ------------------------------------------------------------------------

    def sign_in_request(self) -> SignInRequest:
        return SignInRequest(
            domain=self.config.siwe_domain,
            uri=self.config.siwe_uri,
            chain_id=self.config.siwe_chain_id,
            statement="Sign in to AudiFi. This request will not trigger a transaction or cost "
            "any fees.",
        )

    def issue_wallet_challenge(self, wallet: Wallet) -> tuple[str, datetime]:
        nonce = secrets.token_hex(16)
        now = self.clock().replace(microsecond=0)
        expires_at = now + self.config.challenge_ttl
        message = self.sign_in_request().message(wallet, nonce, now, expires_at)
        challenge = WalletChallenge(
            id=uuid5(NAMESPACE, f"nonce:{nonce}"),
            wallet_digest=self.digest("wallet", wallet.key),
            message_hash=sha256(message),
            expires_at=expires_at,
        )
        self._save(challenge)
        return message, expires_at

    def _prove(self, wallet: Wallet, message: str, signature: str) -> WalletChallenge:
        try:
            nonce = nonce_of(message)
        except ChallengeRefused:
            raise InvalidSignature() from None
        challenge = self._get(uuid5(NAMESPACE, f"nonce:{nonce}"))
        if not isinstance(challenge, WalletChallenge) or not signed_by(wallet, message, signature):
            raise InvalidSignature()
        try:
            challenge.answer(self.digest("wallet", wallet.key), sha256(message), self.clock())
        except ChallengeRefused:
            raise InvalidSignature() from None
        return challenge

    def sign_in_with_wallet(self, wallet: Wallet, message: str, signature: str) -> SignedIn:
        challenge = self._prove(wallet, message, signature)
        account = self.account_by("wallet", wallet.key)
        if account is not None:
            return self._start_session(account, "wallet", challenge)
        account, index = self._new_account(wallet=wallet)
        return self._start_session(account, "wallet", challenge, index, created=True)

    def link_wallet(self, account_id: UUID, wallet: Wallet, message: str, signature: str) -> int:
        account = self.account(account_id)
        challenge = self._prove(wallet, message, signature)
        index_id = self.index_id("wallet", wallet.key)
        index = self._get(index_id)
        if index is not None and index.held:
            raise AddressAlreadyRegistered("This wallet is linked to an account already")
        try:
            account.link_wallet(wallet.address, wallet.chain, self.clock())
        except WalletAlreadyLinked:
            raise AddressAlreadyRegistered("This wallet is linked already") from None
        if index is None:
            index = AddressIndex(id=index_id, kind="wallet", account_id=account.id)
        else:
            index.claim_again(account.id)
        self._grant_configured_admin(account)
        return self._save(account, index, challenge)

    # --- MediaID ------------------------------------------------------------------------

    def preferences(self, account_id: UUID) -> Preferences | None:
        self.account(account_id)
        found = self._get(preferences_id(account_id))
        return found if isinstance(found, Preferences) else None

    def choose_preferences(
        self, account_id: UUID, interests: list[str], privacy: dict[str, bool]
    ) -> int:
        self.account(account_id)
        interests, privacy = Preferences.check(interests, privacy)
        found = self._get(preferences_id(account_id))
        if isinstance(found, Preferences):
            found.choose(interests, privacy)
        else:
            found = Preferences(
                id=preferences_id(account_id),
                account_id=account_id,
                interests=interests,
                privacy=privacy,
            )
        return self._save(found)

    # --- erasure ------------------------------------------------------------------------

    def erase(self, account_id: UUID, session_ids: Iterable[UUID]) -> int:
        """Forget the person: release their addresses, end their sessions, shred their key."""
        account = self.account(account_id)
        now = self.clock()
        released = []
        keys = [("email", account.email.lower())] if account.email else []
        keys += [("wallet", Wallet(a, c).key) for a, c in account.wallets.items()]
        for kind, value in keys:
            index = self._get(self.index_id(kind, value))
            if isinstance(index, AddressIndex) and index.account_id == account.id:
                index.release()
                released.append(index)
        sessions = []
        for session_id in session_ids:
            session = self._get(session_id)
            if isinstance(session, Session) and session.account_id == account.id:
                if session.revoke("account_erased", now):
                    sessions.append(session)
        account.erase(now)
        position = self._save(account, *released, *sessions)
        self.vault.shred(account.id)
        return position
