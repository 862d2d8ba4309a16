"""What every auth command shares: the adapters, loading and saving, the address index, and
starting a session (the end of every way of signing in).

Commands run in a worker thread (the kit's `EventStore.call`). Each loads what it needs, lets
the aggregates decide, and saves everything it changed in one transaction — an account
together with the index entries that make its e-mail or wallet unique, a session together with
the role a configured admin receives at sign-in. A lost race on an index entry surfaces as the
event store's IntegrityError (the kit's ConcurrencyConflict, 409).

The application does no I/O of its own beyond its event store: `bootstrap` hands it the key
vault (and the mapper seals personal data with it), the configuration and the clock.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4, uuid5

from audifi_kit.eventstore import ServiceApplication
from audifi_kit.fields import EmailAddress, check
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper

from audifi_auth.adapters.crypto_shredding import ShreddingMapper
from audifi_auth.adapters.key_vault import KeyVault
from audifi_auth.adapters.passwords import Passwords
from audifi_auth.application.errors import (
    AccountNotFound,
    AddressAlreadyRegistered,
    InvalidSignature,
)
from audifi_auth.application.results import SignedIn
from audifi_auth.config import AuthConfig
from audifi_auth.domain.account import Account, AccountErased, Role
from audifi_auth.domain.address_index import AddressIndex
from audifi_auth.domain.session import Session
from audifi_auth.domain.wallet import (
    ChallengeRefused,
    Wallet,
    WalletChallenge,
    nonce_of,
    signed_by,
)

NAMESPACE = UUID("0b7f3a52-3c44-4d0e-9d7c-5a0e8f1e2c11")

Clock = Callable[[], datetime]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def proof_id(kind: str, token: str) -> UUID:
    """Where a one-time proof is found: from the hash of its token, never the token."""
    return uuid5(NAMESPACE, f"{kind}:{sha256(token)}")


def wallet_challenge_id(nonce: str) -> UUID:
    return uuid5(NAMESPACE, f"nonce:{nonce}")


class AuthCore(ServiceApplication):
    """Identity: accounts, sessions, 2FA, wallets, MediaID preferences, erasure."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        vault: KeyVault,
        config: AuthConfig,
        clock: Clock | None = None,
    ) -> None:
        # Before the library's constructor: it builds the mapper, which seals with the vault.
        self.vault = vault
        self.config = config
        self.passwords = Passwords(
            time_cost=config.argon2_time_cost,
            memory_kib=config.argon2_memory_kib,
            parallelism=config.argon2_parallelism,
        )
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        super().__init__(env)

    def construct_mapper(self) -> Mapper[UUID]:
        base = super().construct_mapper()
        mapper = ShreddingMapper(
            transcoder=base.transcoder, compressor=base.compressor, cipher=base.cipher
        )
        mapper.vault = self.vault
        return mapper

    def close(self) -> None:
        super().close()
        self.vault.close()

    # --- lookups ------------------------------------------------------------------------

    def digest(self, kind: str, value: str) -> str:
        """A keyed digest naming an address without holding it (index ids, rate-limit keys)."""
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
        """The live account holding an address ("email" lower-cased, or "wallet" key)."""
        index = self._get(self.index_id(kind, value))
        if index is None or not index.held:
            return None
        account = self._get(index.account_id)
        return account if isinstance(account, Account) and not account.erased else None

    def _save(self, *aggregates: Aggregate | None) -> int:
        recordings = self.save(*[a for a in aggregates if a is not None])
        return recordings[-1].notification.id if recordings else 0

    # --- addresses ----------------------------------------------------------------------

    def _claim(self, kind: str, value: str, account_id: UUID, refusal: str | None) -> AddressIndex:
        """The index entry naming `account_id` the holder of an address (not saved yet)."""
        index_id = self.index_id(kind, value)
        index = self._get(index_id)
        if index is None:
            return AddressIndex(id=index_id, kind=kind, account_id=account_id)
        if index.held:
            raise AddressAlreadyRegistered(refusal)
        index.claim_again(account_id)
        return index

    def _new_account(
        self, *, email: str | None = None, wallet: Wallet | None = None
    ) -> tuple[Account, AddressIndex]:
        """A new fan's account and the claim of its address (neither saved yet)."""
        if email is not None:
            check(EmailAddress, email, field="email")  # never an address mail cannot reach
        account_id = uuid4()
        if email is not None:
            index = self._claim("email", email.lower(), account_id, None)
        else:
            assert wallet is not None
            index = self._claim("wallet", wallet.key, account_id, None)
        self.vault.create(account_id)
        account = Account(
            id=account_id,
            email=email,
            wallet_address=wallet.address if wallet else None,
            wallet_chain=wallet.chain if wallet else None,
            roles=[Role.FAN.value],
            registered_at=self.clock(),
        )
        return account, index

    def _grant_configured_admin(self, account: Account) -> None:
        configured = (account.email or "").lower() in self.config.admin_emails or any(
            w.lower() in self.config.admin_wallets for w in account.wallets
        )
        if configured:
            account.grant_role(Role.ADMIN, granted_by=None)

    def _prove_wallet(self, wallet: Wallet, message: str, signature: str) -> WalletChallenge:
        """The challenge `message` answered by `wallet`'s signature (not saved yet)."""
        try:
            nonce = nonce_of(message)
        except ChallengeRefused:
            raise InvalidSignature() from None
        challenge = self._get(wallet_challenge_id(nonce))
        if not isinstance(challenge, WalletChallenge) or not signed_by(wallet, message, signature):
            raise InvalidSignature()
        try:
            challenge.answer(self.digest("wallet", wallet.key), sha256(message), self.clock())
        except ChallengeRefused:
            raise InvalidSignature() from None
        return challenge

    # --- the end of every sign-in -------------------------------------------------------

    def _start_session(
        self, account: Account, method: str, *changed: Aggregate | None, created: bool = False
    ) -> SignedIn:
        try:
            self._grant_configured_admin(account)
        except AccountErased:
            raise AccountNotFound() from None
        now = self.clock()
        session_id = uuid4()
        refresh_token = new_refresh_token(session_id)
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


def new_refresh_token(session_id: UUID) -> str:
    """The session id (to find it) and a secret (only its hash is kept)."""
    return f"{session_id.hex}.{secrets.token_urlsafe(32)}"
