"""Two-factor authentication: turning TOTP on, and the second step of a sign-in.

Whether a code is right is the Account's to decide (`Account.accept_second_factor`,
`Account.enable_two_factor`); these commands bring it the clock and the recovery codes'
digests, and keep the per-challenge and per-account counts of wrong codes.
"""

from __future__ import annotations

import secrets
from uuid import UUID

from eventsourcing.domain import Aggregate

from audifi_auth.application.core import AuthCore, proof_id
from audifi_auth.application.errors import (
    InvalidToken,
    InvalidTwoFactorCode,
    SecondFactorLocked,
    TwoFactorStateConflict,
)
from audifi_auth.application.results import SecondFactorNeeded, SignedIn
from audifi_auth.domain import totp
from audifi_auth.domain.account import (
    Account,
    TotpCodeRefused,
    TwoFactorAlreadyOn,
    TwoFactorNotPending,
)
from audifi_auth.domain.sign_in import ProofRefused, TwoFactorChallenge

RECOVERY_CODES = 10


class TwoFactorCommands(AuthCore):
    def set_up_two_factor(self, account_id: UUID) -> tuple[str, str]:
        """A new TOTP secret, pending until a code of it turns 2FA on; and its otpauth URI."""
        account = self.account(account_id)
        secret = totp.new_secret()
        try:
            account.issue_totp_secret(secret)
        except TwoFactorAlreadyOn:
            raise TwoFactorStateConflict("Two-factor authentication is on already") from None
        self._save(account)
        label = account.email or next(iter(account.wallets), str(account.id))
        return secret, totp.provisioning_uri(secret, label)

    def enable_two_factor(self, account_id: UUID, code: str) -> tuple[list[str], int]:
        """Turns 2FA on; answers the recovery codes (shown once: only digests are kept)."""
        account = self.account(account_id)
        codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
        try:
            account.enable_two_factor(
                code, [self._recovery_hash(c) for c in codes], enabled_at=self.clock()
            )
        except (TwoFactorNotPending, TwoFactorAlreadyOn):
            raise TwoFactorStateConflict("Call /auth/2fa/setup first") from None
        except TotpCodeRefused:
            raise InvalidTwoFactorCode() from None
        return codes, self._save(account)

    def complete_second_factor(self, challenge_token: str, code: str) -> SignedIn:
        challenge = self._get(proof_id("2fa", challenge_token))
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
        if not account.accept_second_factor(code, now, self._recovery_hash):
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

    def _ask_second_factor(
        self, account: Account, method: str, *changed: Aggregate
    ) -> SecondFactorNeeded:
        """The first factor was right: a challenge the client completes with a code."""
        token = secrets.token_urlsafe(32)
        expires_at = self.clock() + self.config.two_factor_ttl
        challenge = TwoFactorChallenge(
            id=proof_id("2fa", token), account_id=account.id, method=method, expires_at=expires_at
        )
        position = self._save(account, *changed, challenge)
        return SecondFactorNeeded(token, expires_at, position)

    def _recovery_hash(self, code: str) -> str:
        return self.digest("recovery", code)
