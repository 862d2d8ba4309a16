"""The identity rules on their own: no database, no network."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import base58
import pyotp
import pytest
from audifi_auth.adapters.crypto_shredding import seal, unseal
from audifi_auth.domain.account import Account, AccountErased, Role, TotpCodeRefused
from audifi_auth.domain.address_index import AddressIndex, AddressTaken
from audifi_auth.domain.session import RefreshTokenReused, Session, SessionEnded
from audifi_auth.domain.sign_in import MagicLink, ProofRefused, TwoFactorChallenge
from audifi_auth.domain.wallet import (
    EVM,
    SOLANA,
    ChallengeRefused,
    NotAWallet,
    SignInRequest,
    WalletChallenge,
    nonce_of,
    parse_wallet,
    signed_by,
)
from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct
from nacl.signing import SigningKey

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
STEP = timedelta(seconds=30)


def code_at(when: datetime) -> str:
    return pyotp.TOTP(SECRET).at(when)


def recovery_hash(code: str) -> str:
    return f"hash:{code}"


def with_two_factor(recovery_codes: list[str] = ()) -> Account:  # type: ignore[assignment]
    account = new_account()
    account.issue_totp_secret(SECRET)
    account.enable_two_factor(
        code_at(NOW - STEP), [recovery_hash(c) for c in recovery_codes], enabled_at=NOW
    )
    return account


REQUEST = SignInRequest(
    domain="audifi.test", uri="https://audifi.test", chain_id=8453, statement="Hi"
)


def new_account(email: str | None = "ada@example.com") -> Account:
    return Account(
        id=uuid4(),
        email=email,
        wallet_address=None,
        wallet_chain=None,
        roles=["fan"],
        registered_at=NOW,
    )


def test_a_role_is_granted_once_and_an_erased_account_changes_no_more() -> None:
    account = new_account()
    assert account.grant_role(Role.ARTIST, granted_by=None) is True
    assert account.grant_role(Role.ARTIST, granted_by=None) is False
    assert account.roles == ["fan", "artist"]
    account.erase(NOW)
    assert account.email is None and account.erased
    with pytest.raises(AccountErased):
        account.grant_role(Role.ADMIN, granted_by=None)


def test_a_recovery_code_works_once() -> None:
    account = with_two_factor(["aaa-111", "bbb-222"])
    assert account.two_factor_enabled
    assert account.accept_second_factor("AAA-111", NOW, recovery_hash) is True
    assert account.accept_second_factor("aaa-111", NOW, recovery_hash) is False
    assert account.recovery_code_hashes == [recovery_hash("bbb-222")]


def test_an_address_is_held_by_one_account_until_released() -> None:
    index = AddressIndex(id=uuid4(), kind="email", account_id=uuid4())
    with pytest.raises(AddressTaken):
        index.claim_again(uuid4())
    index.release()
    other = uuid4()
    index.claim_again(other)
    assert index.account_id == other


def test_a_rotated_refresh_token_presented_again_revokes_the_family() -> None:
    session = Session(
        id=uuid4(),
        account_id=uuid4(),
        method="password",
        refresh_token_hash="t1",
        started_at=NOW,
        expires_at=NOW + timedelta(days=30),
    )
    session.rotate("t1", "t2", NOW)
    session.rotate("t2", "t3", NOW)
    with pytest.raises(RefreshTokenReused):
        session.rotate("t1", "t4", NOW)
    assert session.revoked and session.revoke_reason == "refresh_token_reuse"
    with pytest.raises(SessionEnded):
        session.rotate("t3", "t5", NOW)


def test_a_magic_link_works_once_and_not_after_it_expires() -> None:
    link = MagicLink(
        id=uuid4(),
        account_id=uuid4(),
        expires_at=NOW + timedelta(minutes=15),
        sealed_link="sealed",
        seal_key_id="k",
    )
    link.use(NOW)
    with pytest.raises(ProofRefused):
        link.use(NOW)
    late = MagicLink(
        id=uuid4(), account_id=uuid4(), expires_at=NOW, sealed_link="s", seal_key_id="k"
    )
    with pytest.raises(ProofRefused):
        late.use(NOW + timedelta(seconds=1))


def test_a_second_factor_challenge_wears_out_after_five_wrong_codes() -> None:
    challenge = TwoFactorChallenge(
        id=uuid4(), account_id=uuid4(), method="password", expires_at=NOW + timedelta(minutes=5)
    )
    for _ in range(5):
        challenge.fail(NOW)
    with pytest.raises(ProofRefused):
        challenge.complete(NOW)


def test_the_siwe_message_follows_eip_4361_and_verifies_its_signer() -> None:
    wallet_key = EthAccount.create()
    wallet = parse_wallet(wallet_key.address.lower())
    assert wallet.chain == EVM and wallet.address == wallet_key.address  # EIP-55 form
    message = REQUEST.message(wallet, "abcdef0123456789", NOW, NOW + timedelta(minutes=5))
    lines = message.split("\n")
    assert lines[0] == "audifi.test wants you to sign in with your Ethereum account:"
    assert lines[1] == wallet_key.address
    assert "Version: 1" in lines and "Chain ID: 8453" in lines
    assert "Issued At: 2026-05-01T12:00:00Z" in lines
    assert "Expiration Time: 2026-05-01T12:05:00Z" in lines
    assert nonce_of(message) == "abcdef0123456789"
    signature = wallet_key.sign_message(encode_defunct(text=message)).signature.hex()
    assert signed_by(wallet, message, signature)
    stranger = EthAccount.create().sign_message(encode_defunct(text=message)).signature.hex()
    assert not signed_by(wallet, message, stranger)
    assert not signed_by(wallet, message, "0xnot-a-signature")


def test_a_solana_wallet_signs_with_its_ed25519_key_in_base58_or_base64() -> None:
    key = SigningKey.generate()
    wallet = parse_wallet(base58.b58encode(bytes(key.verify_key)).decode())
    assert wallet.chain == SOLANA
    message = REQUEST.message(wallet, "0123456789abcdef", NOW, NOW + timedelta(minutes=5))
    signature = key.sign(message.encode()).signature
    assert signed_by(wallet, message, base58.b58encode(signature).decode())
    assert signed_by(wallet, message, base64.b64encode(signature).decode())
    other = SigningKey.generate().sign(message.encode()).signature
    assert not signed_by(wallet, message, base58.b58encode(other).decode())


def test_what_is_not_a_wallet_is_refused() -> None:
    for address in ("0x1234", "hello", base58.b58encode(b"short").decode()):
        with pytest.raises(NotAWallet):
            parse_wallet(address)


def test_a_wallet_challenge_is_answered_once_by_the_wallet_it_was_issued_to() -> None:
    challenge = WalletChallenge(
        id=uuid4(), wallet_digest="w", message_hash="m", expires_at=NOW + timedelta(minutes=5)
    )
    with pytest.raises(ChallengeRefused):
        challenge.answer("other wallet", "m", NOW)
    challenge.answer("w", "m", NOW)
    with pytest.raises(ChallengeRefused):
        challenge.answer("w", "m", NOW)


def test_sealed_personal_data_opens_only_with_its_key() -> None:
    key, subject = b"k" * 32, uuid4()
    sealed = seal(key, subject, "email", "ada@example.com")
    assert "ada" not in sealed
    assert unseal(key, subject, "email", sealed) == "ada@example.com"
    assert unseal(None, subject, "email", sealed) is None


def test_two_factor_turns_on_only_with_a_code_of_the_issued_secret() -> None:
    account = new_account()
    account.issue_totp_secret(SECRET)
    with pytest.raises(TotpCodeRefused):
        account.enable_two_factor(code_at(NOW + 10 * STEP), [], enabled_at=NOW)
    assert not account.two_factor_enabled

    account.enable_two_factor(code_at(NOW), [], enabled_at=NOW)

    assert account.two_factor_enabled
    # The code that turned it on signs nobody in.
    assert account.accept_second_factor(code_at(NOW), NOW, recovery_hash) is False


def test_a_totp_code_is_accepted_once_and_never_an_earlier_one() -> None:
    account = with_two_factor()
    later = NOW + 10 * STEP

    assert account.accept_second_factor(code_at(later), later, recovery_hash) is True

    assert account.accept_second_factor(code_at(later), later, recovery_hash) is False
    # One step of clock drift is allowed either side, but not back before an accepted code.
    assert account.accept_second_factor(code_at(later - STEP), later, recovery_hash) is False
    assert account.accept_second_factor(code_at(later + STEP), later, recovery_hash) is True
    assert account.accept_second_factor(code_at(later + 3 * STEP), later, recovery_hash) is False


def test_wrong_second_factor_codes_in_a_row_lock_and_a_right_one_resets_the_count() -> None:
    account = with_two_factor()
    later = NOW + 10 * STEP
    lock = timedelta(minutes=15)
    account.refuse_second_factor(NOW, max_failures=3, lock=lock)
    account.refuse_second_factor(NOW, max_failures=3, lock=lock)
    assert account.accept_second_factor(code_at(later), later, recovery_hash)  # count restarts
    account.refuse_second_factor(NOW, max_failures=3, lock=lock)
    account.refuse_second_factor(NOW, max_failures=3, lock=lock)
    assert account.second_factor_lock(NOW) is None

    account.refuse_second_factor(NOW, max_failures=3, lock=lock)

    assert account.second_factor_lock(NOW) == NOW + lock
    assert account.second_factor_lock(NOW + lock) is None  # it opens again by itself
