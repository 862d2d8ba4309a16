"""The account's own data: display name, roles, linked wallets, MediaID preferences."""

from __future__ import annotations

from uuid import UUID

from audifi_auth.application.core import AuthCore
from audifi_auth.application.errors import AddressAlreadyRegistered
from audifi_auth.domain.account import Role, WalletAlreadyLinked
from audifi_auth.domain.preferences import Preferences, preferences_id
from audifi_auth.domain.wallet import Wallet

WALLET_TAKEN = "This wallet is linked to an account already"


class ProfileCommands(AuthCore):
    def edit_profile(self, account_id: UUID, display_name: str | None) -> int:
        account = self.account(account_id)
        account.set_display_name(display_name)
        return self._save(account)

    def grant_role(self, account_id: UUID, role: Role, granted_by: UUID) -> int:
        account = self.account(account_id)
        account.grant_role(role, granted_by=granted_by)
        return self._save(account)

    def link_wallet(self, account_id: UUID, wallet: Wallet, message: str, signature: str) -> int:
        """Adds a wallet the account proved it controls; no other account may hold it."""
        account = self.account(account_id)
        challenge = self._prove_wallet(wallet, message, signature)
        index = self._claim("wallet", wallet.key, account.id, WALLET_TAKEN)
        try:
            account.link_wallet(wallet.address, wallet.chain, self.clock())
        except WalletAlreadyLinked:
            raise AddressAlreadyRegistered("This wallet is linked already") from None
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
