"""The Account: who someone is to AudiFi — e-mail, password, roles, wallets, second factor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

from audifi_kit.fields import SingleLineText, check
from eventsourcing.domain import Aggregate, event

from audifi_auth.domain import totp
from audifi_auth.domain.personal_data import CarriesPersonalData

DisplayName = SingleLineText(100, description="The name the account shows")


class Role(StrEnum):
    FAN = "fan"
    ARTIST = "artist"
    BRAND = "brand"
    ADMIN = "admin"


class AccountErased(Exception):
    """The account was erased: nobody signs in to it or changes it any more."""


class RoleUnknown(ValueError):
    pass


class TwoFactorNotPending(Exception):
    """Enabling 2FA needs a secret issued by setup first."""


class TwoFactorAlreadyOn(Exception):
    pass


class TotpCodeRefused(Exception):
    """Not the code of the current time step (nor one either side), or one already spent."""


class WalletAlreadyLinked(Exception):
    pass


def parse_role(name: str) -> Role:
    try:
        return Role(name)
    except ValueError:
        raise RoleUnknown(name) from None


class Account(Aggregate):
    class Registered(Aggregate.Created, CarriesPersonalData):
        personal_data: ClassVar[tuple[str, ...]] = ("email", "wallet_address")
        email: str | None
        wallet_address: str | None
        wallet_chain: str | None
        roles: list[str]
        registered_at: datetime

    class PasswordSet(Aggregate.Event, CarriesPersonalData):
        personal_data: ClassVar[tuple[str, ...]] = ("password_hash",)
        password_hash: str

    class DisplayNameSet(Aggregate.Event, CarriesPersonalData):
        personal_data: ClassVar[tuple[str, ...]] = ("display_name",)
        display_name: str | None

    class WalletLinked(Aggregate.Event, CarriesPersonalData):
        personal_data: ClassVar[tuple[str, ...]] = ("wallet_address",)
        wallet_address: str
        chain: str
        linked_at: datetime

    class TwoFactorSecretIssued(Aggregate.Event, CarriesPersonalData):
        personal_data: ClassVar[tuple[str, ...]] = ("secret",)
        secret: str

    @event(Registered)
    def __init__(
        self,
        id: UUID,
        email: str | None,
        wallet_address: str | None,
        wallet_chain: str | None,
        roles: list[str],
        registered_at: datetime,
    ) -> None:
        self.email = email
        self.roles: list[str] = list(roles)
        self.wallets: dict[str, str] = {}
        if wallet_address is not None and wallet_chain is not None:
            self.wallets[wallet_address] = wallet_chain
        self.registered_at = registered_at
        self.password_hash: str | None = None
        self.display_name: str | None = None
        self.pending_totp_secret: str | None = None
        self.totp_secret: str | None = None
        self.recovery_code_hashes: list[str] = []
        # The last TOTP time step a code was accepted for: no code of it or earlier works again
        # (RFC 6238 §5.2: a verifier must not accept the same one-time password twice).
        self.last_totp_step: int | None = None
        # Wrong second-factor codes in a row (across logins) and the lock they led to.
        self.second_factor_failures = 0
        self.second_factor_locked_until: datetime | None = None
        self.erased = False

    # --- commands -----------------------------------------------------------------------

    @property
    def two_factor_enabled(self) -> bool:
        return self.totp_secret is not None and not self.erased

    def require_active(self) -> None:
        if self.erased:
            raise AccountErased(str(self.id))

    def set_password(self, password_hash: str) -> None:
        self.require_active()
        self._password_set(password_hash=password_hash)

    def set_display_name(self, display_name: str | None) -> None:
        self.require_active()
        if display_name is not None:
            # Whatever the caller, a name the projection could not store is never recorded.
            check(DisplayName, display_name, field="displayName")
        if display_name != self.display_name:
            self._display_name_set(display_name=display_name)

    def grant_role(self, role: Role, granted_by: UUID | None) -> bool:
        """Grants `role`; False when the account holds it already (nothing recorded)."""
        self.require_active()
        if role.value in self.roles:
            return False
        self._role_granted(role=role.value, granted_by=granted_by)
        return True

    def link_wallet(self, address: str, chain: str, linked_at: datetime) -> None:
        self.require_active()
        if address in self.wallets:
            raise WalletAlreadyLinked(address)
        self._wallet_linked(wallet_address=address, chain=chain, linked_at=linked_at)

    def issue_totp_secret(self, secret: str) -> None:
        self.require_active()
        if self.two_factor_enabled:
            raise TwoFactorAlreadyOn(str(self.id))
        self._two_factor_secret_issued(secret=secret)

    def enable_two_factor(
        self, code: str, recovery_code_hashes: list[str], enabled_at: datetime
    ) -> None:
        """Turns 2FA on with a code of the secret `issue_totp_secret` gave out; that code is
        spent by it and signs nobody in."""
        self.require_active()
        if self.two_factor_enabled:
            raise TwoFactorAlreadyOn(str(self.id))
        if self.pending_totp_secret is None:
            raise TwoFactorNotPending(str(self.id))
        step = self._unspent_step(self.pending_totp_secret, code, enabled_at)
        if step is None:
            raise TotpCodeRefused(str(self.id))
        self._two_factor_enabled(recovery_code_hashes=recovery_code_hashes, enabled_at=enabled_at)
        self._totp_code_used(step=step)

    def accept_second_factor(
        self, code: str, now: datetime, recovery_code_hash: Callable[[str], str]
    ) -> bool:
        """Whether `code` is a current, unspent TOTP code or an unused recovery code; either is
        spent by this call. `recovery_code_hash` names a recovery code as it is kept."""
        self.require_active()
        code = code.strip().replace(" ", "")
        if totp.looks_like_code(code):
            step = self._unspent_step(self.totp_secret, code, now)
            if step is None:
                return False
            self._totp_code_used(step=step)
            return True
        return self.use_recovery_code(recovery_code_hash(code.lower()))

    def _unspent_step(self, secret: str | None, code: str, now: datetime) -> int | None:
        # RFC 6238 §5.2: a verifier must not accept the same one-time password twice, so only a
        # step later than the last accepted one counts.
        if secret is None:
            return None
        after = -1 if self.last_totp_step is None else self.last_totp_step
        return totp.step_of(secret, code.strip(), now, after=after)

    def second_factor_lock(self, now: datetime) -> datetime | None:
        """Until when the second-factor step is locked; None when it is open."""
        until = self.second_factor_locked_until
        return until if until is not None and now < until else None

    def refuse_second_factor(self, now: datetime, *, max_failures: int, lock: timedelta) -> None:
        """A wrong code: the `max_failures`-th in a row locks the step until `now + lock`."""
        self.require_active()
        locked = now + lock if self.second_factor_failures + 1 >= max_failures else None
        self._second_factor_refused(refused_at=now, locked_until=locked)

    def use_recovery_code(self, code_hash: str) -> bool:
        """Spends a recovery code; False when it is not one of the unused ones."""
        self.require_active()
        if code_hash not in self.recovery_code_hashes:
            return False
        self._recovery_code_used(code_hash=code_hash)
        return True

    def erase(self, erased_at: datetime) -> None:
        if not self.erased:
            self._erased(erased_at=erased_at)

    # --- events -------------------------------------------------------------------------

    @event(PasswordSet)
    def _password_set(self, password_hash: str) -> None:
        self.password_hash = password_hash

    @event(DisplayNameSet)
    def _display_name_set(self, display_name: str | None) -> None:
        self.display_name = display_name

    @event("RoleGranted")
    def _role_granted(self, role: str, granted_by: UUID | None) -> None:
        self.roles.append(role)

    @event(WalletLinked)
    def _wallet_linked(self, wallet_address: str, chain: str, linked_at: datetime) -> None:
        if wallet_address is not None:  # None once erased: the key that opened it is gone
            self.wallets[wallet_address] = chain

    @event(TwoFactorSecretIssued)
    def _two_factor_secret_issued(self, secret: str) -> None:
        self.pending_totp_secret = secret

    @event("TwoFactorEnabled")
    def _two_factor_enabled(self, recovery_code_hashes: list[str], enabled_at: datetime) -> None:
        self.totp_secret = self.pending_totp_secret
        self.pending_totp_secret = None
        self.recovery_code_hashes = list(recovery_code_hashes)

    @event("TotpCodeUsed")
    def _totp_code_used(self, step: int) -> None:
        self.last_totp_step = step
        self.second_factor_failures = 0

    @event("SecondFactorRefused")
    def _second_factor_refused(self, refused_at: datetime, locked_until: datetime | None) -> None:
        if locked_until is None:
            self.second_factor_failures += 1
        else:
            self.second_factor_failures = 0
            self.second_factor_locked_until = locked_until

    @event("RecoveryCodeUsed")
    def _recovery_code_used(self, code_hash: str) -> None:
        self.recovery_code_hashes.remove(code_hash)
        self.second_factor_failures = 0

    @event("Erased")
    def _erased(self, erased_at: datetime) -> None:
        self.erased = True
        self.email = None
        self.password_hash = None
        self.display_name = None
        self.totp_secret = self.pending_totp_secret = None
        self.recovery_code_hashes = []
        self.wallets = {}

    def public_state(self) -> dict[str, Any]:
        return {"roles": self.roles, "erased": self.erased}
