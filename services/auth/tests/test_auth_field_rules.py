"""What auth's schema allows, its handlers accept (issue 9, finding 6): each field's pattern is
drawn from and the value run through the check the handler itself makes."""

from __future__ import annotations

import re
from typing import Any

import base58
import pytest
from audifi_auth.adapters.passwords import Passwords
from audifi_auth.api.accounts import NewPassword, normalised_email
from audifi_auth.api.two_factor import SecondFactorCode
from audifi_auth.domain.preferences import Interest, Preferences, PrivacySetting
from audifi_auth.domain.wallet import NotAWallet, parse_wallet
from audifi_kit.fields import (
    EmailAddress,
    EvmAddress,
    SolanaAddress,
    WalletAddress,
    check,
    rule_of,
)
from auth_support import AuthService
from hypothesis import given, settings
from hypothesis import strategies as st


def _allowed(field_type: Any) -> st.SearchStrategy[str]:
    rule = rule_of(field_type)
    low, high = rule.min_length or 0, rule.max_length
    return st.from_regex(rule.pattern).filter(lambda s: low <= len(s) <= high)


@settings(max_examples=300, deadline=None)
@given(_allowed(EmailAddress))
def test_an_address_the_schema_allows_is_one_sign_up_accepts_and_keeps(email: str) -> None:
    kept = normalised_email(email)
    # The application checks the normalised address again before an account holds it.
    assert check(EmailAddress, kept, field="email") == kept


@settings(max_examples=200, deadline=None)
@given(_allowed(EvmAddress))
def test_an_evm_address_the_schema_allows_is_a_wallet(address: str) -> None:
    wallet = parse_wallet(address)
    assert wallet.chain == "evm" and wallet.key == address.lower()


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=32, max_size=32) | st.integers(0, 2**64).map(lambda n: n.to_bytes(32)))
def test_every_solana_key_fits_the_schema_and_is_a_wallet(key: bytes) -> None:
    address = base58.b58encode(key).decode()
    assert check(SolanaAddress, address, field="walletAddress") == address
    assert check(WalletAddress, address, field="walletAddress") == address
    assert parse_wallet(address).chain == "solana"


@settings(max_examples=200, deadline=None)
@given(_allowed(WalletAddress))
def test_a_wallet_address_the_schema_allows_is_refused_only_as_its_description_says(
    address: str,
) -> None:
    try:
        parse_wallet(address)
    except NotAWallet:
        # The one rule a pattern cannot carry (the field's description states it).
        assert re.fullmatch("[1-9A-HJ-NP-Za-km-z]{32,44}", address)
        assert len(base58.b58decode(address)) != 32


@settings(max_examples=200, deadline=None)
@given(_allowed(NewPassword))
def test_a_password_the_schema_allows_meets_the_policy(password: str) -> None:
    Passwords.check_policy(password)


@settings(max_examples=200, deadline=None)
@given(_allowed(SecondFactorCode))
def test_a_code_the_schema_allows_reaches_the_code_check(code: str) -> None:
    code = code.replace(" ", "")  # as the handler passes it on
    assert (code.isdigit() and len(code) == 6) or re.fullmatch(
        r"[0-9a-f]{6}-[0-9a-f]{6}", code.lower()
    )


@settings(max_examples=100, deadline=None)
@given(
    st.lists(_allowed(Interest), max_size=50),
    st.dictionaries(_allowed(PrivacySetting), st.booleans(), max_size=50),
)
def test_preferences_the_schema_allows_are_kept(
    interests: list[str], privacy: dict[str, bool]
) -> None:
    kept, settings_kept = Preferences.check(interests, privacy)
    assert kept == list(dict.fromkeys(i.strip() for i in interests if i.strip()))
    assert settings_kept == privacy


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/auth/signup", {"email": "o'brien+x@sub-domain.example.co", "password": "8 chars!"}, 201),
        ("/auth/magic-link", {"email": "UPPER.case@EXAMPLE.ORG"}, 202),
        ("/auth/request-challenge", {"walletAddress": "0x" + "ab" * 20}, 200),
        ("/auth/request-challenge", {"walletAddress": "1" * 32}, 200),
        ("/auth/login", {"email": "nobody@example.com", "password": "\u00e9"}, 401),
        ("/auth/verify-magic-link", {"token": "a" * 512}, 401),
        ("/auth/2fa/verify", {"code": "123 456", "challengeToken": "unknown"}, 401),
    ],
)
async def test_values_at_the_edges_of_the_rules_get_past_them(
    auth: AuthService, path: str, body: dict[str, Any], status: int
) -> None:
    response = await auth.client.post(path, json=body)
    assert response.status_code == status, response.text
