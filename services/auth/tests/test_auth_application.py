"""Auth's commands on eventsourcing's in-memory (POPO) persistence, with in-memory adapters:
the application's rules, each in milliseconds. The HTTP tests keep what needs the wiring (the
error envelope, brute-force budgets, read models, published events)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pyotp
import pytest
from audifi_auth.application import AuthApplication, Revoked, SecondFactorNeeded, SignedIn
from audifi_auth.application.errors import (
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
from audifi_auth.bootstrap import TEST_CONFIG, in_memory
from audifi_auth.domain.account import Account
from audifi_auth.domain.wallet import parse_wallet
from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(clock: Clock) -> AuthApplication:
    config = dataclasses.replace(
        TEST_CONFIG,
        admin_emails=frozenset({"boss@example.com"}),
        two_factor_max_failures=3,
    )
    return in_memory(config, clock=clock)


def signed_in(result: object) -> SignedIn:
    assert isinstance(result, SignedIn), result
    return result


def turn_on_two_factor(app: AuthApplication, clock: Clock, account_id: UUID) -> tuple[str, list]:
    secret, uri = app.set_up_two_factor(account_id)
    assert uri.startswith("otpauth://totp/")
    codes, _ = app.enable_two_factor(account_id, pyotp.TOTP(secret).at(clock.now))
    clock.advance(timedelta(seconds=90))  # past the code that turned it on
    return secret, codes


def test_a_fan_signs_up_then_logs_in_whatever_the_address_case(app: AuthApplication) -> None:
    created = app.sign_up("Ada@example.com", PASSWORD)

    assert created.account_created and created.roles == ["fan"]
    again = signed_in(app.log_in("ada@EXAMPLE.com", PASSWORD))
    assert again.account_id == created.account_id and again.session_id != created.session_id
    assert app.account(created.account_id).email == "Ada@example.com"


def test_an_address_belongs_to_one_account(app: AuthApplication) -> None:
    first = app.sign_up("ada@example.com", PASSWORD)

    with pytest.raises(AddressAlreadyRegistered):
        app.sign_up("ADA@example.com", "another password")
    # A magic link for the address reaches the account that holds it.
    assert app.request_magic_link("ada@example.com", "t", "s", "k").account_id == first.account_id


def test_a_wrong_password_and_an_unknown_address_are_refused_alike(app: AuthApplication) -> None:
    app.sign_up("ada@example.com", PASSWORD)

    with pytest.raises(InvalidCredentials):
        app.log_in("ada@example.com", "not the password")
    with pytest.raises(InvalidCredentials):
        app.log_in("nobody@example.com", PASSWORD)


def test_a_configured_admin_is_admin_from_the_first_sign_in(app: AuthApplication) -> None:
    assert sorted(app.sign_up("boss@example.com", PASSWORD).roles) == ["admin", "fan"]


def test_a_refresh_token_rotates_and_a_retired_one_revokes_the_session(
    app: AuthApplication,
) -> None:
    first = app.sign_up("ada@example.com", PASSWORD)
    second = signed_in(app.refresh(first.refresh_token))
    assert second.session_id == first.session_id
    assert second.refresh_token != first.refresh_token

    reused = app.refresh(first.refresh_token)

    assert isinstance(reused, Revoked) and reused.session_id == first.session_id
    with pytest.raises(InvalidRefreshToken):  # the thief's and the owner's tokens alike
        app.refresh(second.refresh_token)


def test_a_session_ends_at_logout_and_not_at_anyone_elses(app: AuthApplication) -> None:
    ada = app.sign_up("ada@example.com", PASSWORD)
    bob = app.sign_up("bob@example.com", PASSWORD)

    assert app.revoke_session(ada.session_id, bob.account_id, "logout") == 0
    signed_in(app.refresh(ada.refresh_token))  # still running
    assert app.revoke_session(bob.session_id, bob.account_id, "logout") > 0
    with pytest.raises(InvalidRefreshToken):
        app.refresh(bob.refresh_token)


def test_with_two_factor_on_a_login_needs_a_code_that_works_once(
    app: AuthApplication, clock: Clock
) -> None:
    account_id = app.sign_up("ada@example.com", PASSWORD).account_id
    secret, _ = turn_on_two_factor(app, clock, account_id)

    step = app.log_in("ada@example.com", PASSWORD)
    assert isinstance(step, SecondFactorNeeded)
    with pytest.raises(InvalidTwoFactorCode):
        app.complete_second_factor(step.challenge_token, "000000")
    code = pyotp.TOTP(secret).at(clock.now)
    assert signed_in(app.complete_second_factor(step.challenge_token, code)).account_id == (
        account_id
    )

    with pytest.raises(InvalidToken):  # the challenge is spent
        app.complete_second_factor(step.challenge_token, code)
    replay = app.log_in("ada@example.com", PASSWORD)
    assert isinstance(replay, SecondFactorNeeded)
    with pytest.raises(InvalidTwoFactorCode):  # so is the code
        app.complete_second_factor(replay.challenge_token, code)


def test_two_factor_turns_on_once_and_only_after_setup(app: AuthApplication, clock: Clock) -> None:
    account_id = app.sign_up("ada@example.com", PASSWORD).account_id
    with pytest.raises(TwoFactorStateConflict):
        app.enable_two_factor(account_id, "123456")
    secret, _ = app.set_up_two_factor(account_id)
    with pytest.raises(InvalidTwoFactorCode):
        app.enable_two_factor(account_id, "000000")

    app.enable_two_factor(account_id, pyotp.TOTP(secret).at(clock.now))

    assert app.account(account_id).two_factor_enabled
    with pytest.raises(TwoFactorStateConflict):
        app.set_up_two_factor(account_id)


def test_a_recovery_code_signs_in_once(app: AuthApplication, clock: Clock) -> None:
    account_id = app.sign_up("ada@example.com", PASSWORD).account_id
    _, recovery = turn_on_two_factor(app, clock, account_id)
    assert len(set(recovery)) == 10

    step = app.log_in("ada@example.com", PASSWORD)
    assert isinstance(step, SecondFactorNeeded)
    signed_in(app.complete_second_factor(step.challenge_token, recovery[0].upper()))

    again = app.log_in("ada@example.com", PASSWORD)
    assert isinstance(again, SecondFactorNeeded)
    with pytest.raises(InvalidTwoFactorCode):
        app.complete_second_factor(again.challenge_token, recovery[0])


def test_wrong_codes_in_a_row_lock_the_second_factor_across_logins(
    app: AuthApplication, clock: Clock
) -> None:
    account_id = app.sign_up("ada@example.com", PASSWORD).account_id
    secret, _ = turn_on_two_factor(app, clock, account_id)
    for _ in range(3):  # max failures: 3, each on a new login
        step = app.log_in("ada@example.com", PASSWORD)
        assert isinstance(step, SecondFactorNeeded)
        with pytest.raises(InvalidTwoFactorCode):
            app.complete_second_factor(step.challenge_token, "000000")

    step = app.log_in("ada@example.com", PASSWORD)
    assert isinstance(step, SecondFactorNeeded)
    with pytest.raises(SecondFactorLocked):  # even the right code waits
        app.complete_second_factor(step.challenge_token, pyotp.TOTP(secret).at(clock.now))

    clock.advance(TEST_CONFIG.two_factor_lock)
    step = app.log_in("ada@example.com", PASSWORD)
    assert isinstance(step, SecondFactorNeeded)
    signed_in(app.complete_second_factor(step.challenge_token, pyotp.TOTP(secret).at(clock.now)))


def test_a_magic_link_registers_a_new_address_and_signs_in_once(
    app: AuthApplication, clock: Clock
) -> None:
    issued = app.request_magic_link("new@example.com", "token-1", "sealed", "key-1")

    first = signed_in(app.verify_magic_link("token-1"))
    assert first.account_id == issued.account_id
    with pytest.raises(InvalidToken):
        app.verify_magic_link("token-1")
    app.request_magic_link("new@example.com", "token-2", "sealed", "key-1")
    clock.advance(TEST_CONFIG.magic_link_ttl)
    with pytest.raises(InvalidToken):
        app.verify_magic_link("token-2")


def wallet_proof(app: AuthApplication, key: EthAccount) -> tuple:
    wallet = parse_wallet(key.address)
    message, _ = app.issue_wallet_challenge(wallet)
    signature = key.sign_message(encode_defunct(text=message)).signature.hex()
    return wallet, message, signature


def test_a_wallet_signs_in_registers_once_and_a_nonce_works_once(app: AuthApplication) -> None:
    key = EthAccount.create()
    proof = wallet_proof(app, key)

    first = app.sign_in_with_wallet(*proof)

    assert first.account_created
    with pytest.raises(InvalidSignature):
        app.sign_in_with_wallet(*proof)
    again = app.sign_in_with_wallet(*wallet_proof(app, key))
    assert again.account_id == first.account_id and not again.account_created
    wallet, message, _ = wallet_proof(app, key)
    forged = EthAccount.create().sign_message(encode_defunct(text=message)).signature.hex()
    with pytest.raises(InvalidSignature):
        app.sign_in_with_wallet(wallet, message, forged)


def test_a_linked_wallet_belongs_to_one_account(app: AuthApplication) -> None:
    key = EthAccount.create()
    ada = app.sign_up("ada@example.com", PASSWORD)
    bob = app.sign_up("bob@example.com", PASSWORD)

    app.link_wallet(ada.account_id, *wallet_proof(app, key))

    assert key.address in app.account(ada.account_id).wallets
    with pytest.raises(AddressAlreadyRegistered):
        app.link_wallet(bob.account_id, *wallet_proof(app, key))
    signed_in_with_it = app.sign_in_with_wallet(*wallet_proof(app, key))
    assert signed_in_with_it.account_id == ada.account_id


def test_preferences_are_kept_cleaned_and_replaced(app: AuthApplication) -> None:
    account_id = app.sign_up("ada@example.com", PASSWORD).account_id
    assert app.preferences(account_id) is None

    app.choose_preferences(
        account_id, [" hip-hop ", "jazz", "hip-hop", ""], {"brandAnalytics": True}
    )
    chosen = app.preferences(account_id)
    assert chosen is not None and chosen.interests == ["hip-hop", "jazz"]
    app.choose_preferences(account_id, ["techno"], {})

    again = app.preferences(account_id)
    assert again is not None and (again.interests, again.privacy) == (["techno"], {})


def test_an_erased_account_is_forgotten_and_its_address_free_again(app: AuthApplication) -> None:
    key = EthAccount.create()
    ada = app.sign_up("ada@example.com", PASSWORD)
    app.edit_profile(ada.account_id, "Ada")
    app.link_wallet(ada.account_id, *wallet_proof(app, key))

    app.erase(ada.account_id, [ada.session_id])

    with pytest.raises(AccountNotFound):
        app.account(ada.account_id)
    with pytest.raises(InvalidRefreshToken):
        app.refresh(ada.refresh_token)
    with pytest.raises(InvalidCredentials):
        app.log_in("ada@example.com", PASSWORD)
    # Its key is shredded: read from its events again, nothing personal is left.
    stored = app.repository.get(ada.account_id)
    assert isinstance(stored, Account)
    assert (stored.email, stored.display_name, stored.password_hash, stored.wallets) == (
        None,
        None,
        None,
        {},
    )
    registered = next(iter(app.events.get(ada.account_id)))
    assert registered.email is None  # type: ignore[attr-defined]
    # Anyone may register the address and the wallet again.
    newcomer = app.sign_up("ada@example.com", PASSWORD)
    assert newcomer.account_id != ada.account_id
    assert app.sign_in_with_wallet(*wallet_proof(app, key)).account_created
