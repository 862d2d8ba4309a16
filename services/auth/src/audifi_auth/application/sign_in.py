"""Signing in: sign-up and password login, the magic link, and a wallet's signed challenge.

Each way ends in a session (`AuthCore._start_session`), or — when the account has 2FA on —
in the second-factor step (`TwoFactorCommands`).
"""

from __future__ import annotations

import secrets
from datetime import datetime

from audifi_auth.application.core import proof_id, sha256, wallet_challenge_id
from audifi_auth.application.errors import InvalidCredentials, InvalidToken
from audifi_auth.application.results import MagicLinkIssued, SecondFactorNeeded, SignedIn
from audifi_auth.application.two_factor import TwoFactorCommands
from audifi_auth.domain.account import Account
from audifi_auth.domain.sign_in import MagicLink, ProofRefused
from audifi_auth.domain.wallet import SignInRequest, Wallet, WalletChallenge

WALLET_STATEMENT = (
    "Sign in to AudiFi. This request will not trigger a transaction or cost any fees."
)


class SignInCommands(TwoFactorCommands):
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
            return self._ask_second_factor(account, "password")
        return self._start_session(account, "password")

    # --- magic link ---------------------------------------------------------------------

    def request_magic_link(
        self, email: str, token: str, sealed_link: str, seal_key_id: str
    ) -> MagicLinkIssued:
        """A link for `email` (a new account when nobody holds it); the link itself arrives
        sealed to notify's key, which alone mails it."""
        account = self.account_by("email", email.lower())
        index = None
        if account is None:
            account, index = self._new_account(email=email)
        link = MagicLink(
            id=proof_id("magic", token),
            account_id=account.id,
            expires_at=self.clock() + self.config.magic_link_ttl,
            sealed_link=sealed_link,
            seal_key_id=seal_key_id,
        )
        position = self._save(account if index is not None else None, index, link)
        return MagicLinkIssued(account.id, position)

    def verify_magic_link(self, token: str) -> SignedIn | SecondFactorNeeded:
        link = self._get(proof_id("magic", token))
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
            return self._ask_second_factor(account, "magic_link", link)
        return self._start_session(account, "magic_link", link)

    # --- wallets ------------------------------------------------------------------------

    def sign_in_request(self) -> SignInRequest:
        return SignInRequest(
            domain=self.config.siwe_domain,
            uri=self.config.siwe_uri,
            chain_id=self.config.siwe_chain_id,
            statement=WALLET_STATEMENT,
        )

    def issue_wallet_challenge(self, wallet: Wallet) -> tuple[str, datetime]:
        """The message `wallet` must sign, and when it stops being accepted."""
        nonce = secrets.token_hex(16)
        now = self.clock().replace(microsecond=0)
        expires_at = now + self.config.challenge_ttl
        message = self.sign_in_request().message(wallet, nonce, now, expires_at)
        challenge = WalletChallenge(
            id=wallet_challenge_id(nonce),
            wallet_digest=self.digest("wallet", wallet.key),
            message_hash=sha256(message),
            expires_at=expires_at,
        )
        self._save(challenge)
        return message, expires_at

    def sign_in_with_wallet(self, wallet: Wallet, message: str, signature: str) -> SignedIn:
        """Signs in the wallet's account; a first sign-in registers one."""
        challenge = self._prove_wallet(wallet, message, signature)
        account = self.account_by("wallet", wallet.key)
        if account is not None:
            return self._start_session(account, "wallet", challenge)
        account, index = self._new_account(wallet=wallet)
        return self._start_session(account, "wallet", challenge, index, created=True)
