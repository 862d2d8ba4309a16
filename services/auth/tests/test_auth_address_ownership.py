"""No two accounts ever own one address (e-mail or wallet), whatever the interleaving of
sign-ups, magic links, wallet sign-ins, wallet links and erasures: a hypothesis state machine
on the in-memory application."""

from __future__ import annotations

from uuid import UUID

import base58
from audifi_auth.application import AuthApplication
from audifi_auth.application.errors import AccountNotFound, AddressAlreadyRegistered
from audifi_auth.bootstrap import in_memory
from audifi_auth.domain.account import Account
from audifi_auth.domain.wallet import Wallet, parse_wallet
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
)
from nacl.signing import SigningKey

PASSWORD = "correct horse battery"
# Case variants of one address are one address.
EMAILS = ["ada@example.com", "Ada@Example.com", "bob@example.com", "cy@example.com"]
# Fixed keys: a failing run replays the same wallets. Solana's (ed25519) sign in microseconds,
# an EVM key's recovery takes ~10 ms; which chain plays no part in who owns an address.
WALLET_KEYS = [SigningKey(bytes([n]) * 32) for n in (1, 2, 3)]

emails = st.sampled_from(EMAILS)
wallet_keys = st.sampled_from(WALLET_KEYS)


def proof(app: AuthApplication, key: SigningKey) -> tuple[Wallet, str, str]:
    wallet = parse_wallet(base58.b58encode(bytes(key.verify_key)).decode())
    message, _ = app.issue_wallet_challenge(wallet)
    signature = key.sign(message.encode()).signature
    return wallet, message, base58.b58encode(signature).decode()


class AddressOwnership(RuleBasedStateMachine):
    accounts = Bundle("accounts")

    def __init__(self) -> None:
        super().__init__()
        self.app = in_memory()
        self.known: set[UUID] = set()

    def _created(self, account_id: UUID) -> UUID:
        self.known.add(account_id)
        return account_id

    @rule(target=accounts, email=emails)
    def sign_up(self, email: str) -> object:
        try:
            return self._created(self.app.sign_up(email, PASSWORD).account_id)
        except AddressAlreadyRegistered:
            return multiple()

    @rule(target=accounts, email=emails, token=st.uuids())
    def ask_for_a_magic_link(self, email: str, token: UUID) -> UUID:
        issued = self.app.request_magic_link(email, token.hex, "sealed", "key")
        return self._created(issued.account_id)

    @rule(target=accounts, key=wallet_keys)
    def sign_in_with_a_wallet(self, key: SigningKey) -> UUID:
        return self._created(self.app.sign_in_with_wallet(*proof(self.app, key)).account_id)

    @rule(account_id=accounts, key=wallet_keys)
    def link_a_wallet(self, account_id: UUID, key: SigningKey) -> None:
        try:
            self.app.link_wallet(account_id, *proof(self.app, key))
        except (AddressAlreadyRegistered, AccountNotFound):
            pass

    @rule(account_id=consumes(accounts))
    def erase(self, account_id: UUID) -> None:
        try:
            self.app.erase(account_id, [])
        except AccountNotFound:  # erased already (the bundle may hold an id twice)
            pass

    @invariant()
    def no_address_has_two_owners(self) -> None:
        owners: dict[tuple[str, str], UUID] = {}
        for account_id in self.known:
            account = self.app.repository.get(account_id)
            assert isinstance(account, Account)
            if account.erased:
                continue
            held = [("email", account.email.lower())] if account.email else []
            held += [("wallet", Wallet(a, c).key) for a, c in account.wallets.items()]
            for address in held:
                assert address not in owners, f"{address} owned by two accounts"
                owners[address] = account_id
        # And sign-in finds each address's one owner.
        for (kind, value), owner in owners.items():
            found = self.app.account_by(kind, value)
            assert found is not None and found.id == owner


AddressOwnership.TestCase.settings = settings(
    max_examples=50, stateful_step_count=20, deadline=None
)
test_no_two_accounts_ever_own_one_address = AddressOwnership.TestCase
