"""Wallet sign-in: SIWE for EVM wallets, signed messages for Solana; linking a wallet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import base58
from auth_support import AuthService, StartAuth
from eth_account import Account
from eth_account.messages import encode_defunct
from nacl.signing import SigningKey


def evm_sign(wallet, message: str) -> str:
    return wallet.sign_message(encode_defunct(text=message)).signature.hex()


async def challenge_for(auth: AuthService, address: str) -> str:
    response = await auth.client.post("/auth/request-challenge", json={"walletAddress": address})
    assert response.status_code == 200, response.text
    return response.json()["challenge"]


async def test_an_ethereum_wallet_signs_in_with_siwe_and_a_nonce_works_once(
    auth: AuthService,
) -> None:
    wallet = Account.create()
    challenge = await challenge_for(auth, wallet.address)
    assert f"\n{wallet.address}\n" in challenge and "Version: 1" in challenge
    proof = {
        "walletAddress": wallet.address,
        "signature": evm_sign(wallet, challenge),
        "challenge": challenge,
    }
    signed_in = await auth.client.post("/auth/verify-signature", json=proof)
    assert signed_in.status_code == 200, signed_in.text
    body = signed_in.json()
    assert body["success"] is True and body["token"] and body["expiresAt"]
    assert body["accountCreated"] is True

    me = await auth.client.get("/users/me", headers=auth.bearer(body))
    assert me.json()["wallets"] == [wallet.address] and me.json()["email"] is None
    registered = await auth.wait_published("auth.account.registered")
    assert registered["walletAddress"] == wallet.address

    replayed = await auth.client.post("/auth/verify-signature", json=proof)
    assert replayed.status_code == 401
    assert replayed.json()["error"]["code"] == "INVALID_SIGNATURE"

    # Signing in again with a new challenge reaches the same account.
    challenge = await challenge_for(auth, wallet.address)
    again = await auth.client.post(
        "/auth/connect-wallet",
        json={
            "walletAddress": wallet.address,
            "signature": evm_sign(wallet, challenge),
            "challenge": challenge,
        },
    )
    assert again.status_code == 200
    assert again.json()["userId"] == body["userId"] and again.json()["accountCreated"] is False


async def test_a_signature_by_another_wallet_or_after_expiry_is_refused(
    auth: AuthService,
) -> None:
    wallet, thief = Account.create(), Account.create()
    challenge = await challenge_for(auth, wallet.address)
    forged = await auth.client.post(
        "/auth/verify-signature",
        json={
            "walletAddress": wallet.address,
            "signature": evm_sign(thief, challenge),
            "challenge": challenge,
        },
    )
    assert forged.status_code == 401
    # The thief's own address with the victim's challenge: not issued to it.
    stolen = await auth.client.post(
        "/auth/verify-signature",
        json={
            "walletAddress": thief.address,
            "signature": evm_sign(thief, challenge),
            "challenge": challenge,
        },
    )
    assert stolen.status_code == 401

    auth.store.app.clock = lambda: datetime.now(UTC) + timedelta(minutes=6)
    late = await auth.client.post(
        "/auth/verify-signature",
        json={
            "walletAddress": wallet.address,
            "signature": evm_sign(wallet, challenge),
            "challenge": challenge,
        },
    )
    assert late.status_code == 401


async def test_a_solana_wallet_signs_in_with_its_ed25519_key(auth: AuthService) -> None:
    key = SigningKey.generate()
    address = base58.b58encode(bytes(key.verify_key)).decode()
    challenge = await challenge_for(auth, address)
    signature = base58.b58encode(key.sign(challenge.encode()).signature).decode()
    signed_in = await auth.client.post(
        "/auth/verify-signature",
        json={"walletAddress": address, "signature": signature, "challenge": challenge},
    )
    assert signed_in.status_code == 200, signed_in.text
    me = await auth.client.get("/users/me", headers=auth.bearer(signed_in.json()))
    assert me.json()["wallets"] == [address]


async def test_a_signed_in_fan_links_a_wallet_and_can_then_sign_in_with_it(
    auth: AuthService,
) -> None:
    tokens = await auth.sign_up("linker@example.com")
    wallet = Account.create()
    challenge = await challenge_for(auth, wallet.address)
    proof = {
        "walletAddress": wallet.address,
        "signature": evm_sign(wallet, challenge),
        "challenge": challenge,
    }
    linked = await auth.client.post("/auth/wallet/link", json=proof, headers=auth.bearer(tokens))
    assert linked.status_code == 200, linked.text
    assert linked.json() == {"success": True, "walletAddress": wallet.address, "chain": "evm"}
    published = await auth.wait_published("auth.wallet.linked")
    assert published["accountId"] == tokens["userId"]
    assert published["walletAddress"] == wallet.address

    challenge = await challenge_for(auth, wallet.address)
    signed_in = await auth.client.post(
        "/auth/verify-signature",
        json={
            "walletAddress": wallet.address,
            "signature": evm_sign(wallet, challenge),
            "challenge": challenge,
        },
    )
    assert signed_in.json()["userId"] == tokens["userId"]

    other = await auth.sign_up("other@example.com")
    challenge = await challenge_for(auth, wallet.address)
    taken = await auth.client.post(
        "/auth/wallet/link",
        json={
            "walletAddress": wallet.address,
            "signature": evm_sign(wallet, challenge),
            "challenge": challenge,
        },
        headers=auth.bearer(other),
    )
    assert taken.status_code == 409


async def test_a_configured_admin_wallet_gets_the_admin_role(start_auth: StartAuth) -> None:
    wallet = Account.create()
    async with start_auth(env={"ADMIN_WALLETS": wallet.address.lower()}) as auth:
        challenge = await challenge_for(auth, wallet.address)
        signed_in = await auth.client.post(
            "/auth/verify-signature",
            json={
                "walletAddress": wallet.address,
                "signature": evm_sign(wallet, challenge),
                "challenge": challenge,
            },
        )
        assert sorted(signed_in.json()["roles"]) == ["admin", "fan"]
