"""Wallet sign-in: `POST /auth/request-challenge`, `POST /auth/verify-signature` (Stoned
Rabbits), Coda's `POST /auth/connect-wallet` (the same), `POST /auth/wallet/link` (AudiFi)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec
from audifi_kit.fields import MultiLineText, WalletAddress, text_type
from audifi_kit.http import Identity
from litestar import Controller, Request, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from audifi_auth.adapters.brute_force import Budget
from audifi_auth.api import refusals
from audifi_auth.api.dependencies import AuthContext, client_ip, provide_auth
from audifi_auth.api.signing_in import TokenResponse, tokens_for
from audifi_auth.application.errors import AccountNotFound, InvalidSignature, InvalidWalletAddress
from audifi_auth.domain.wallet import NotAWallet, Wallet, parse_wallet

PUBLIC = {"public": True}


# EVM: 0x and 130 hex digits; Solana: 64 bytes in base58 or base64.
Signature = text_type(
    "[A-Za-z0-9+/=]+",
    max_length=256,
    description="The wallet's signature of the challenge: 0x-hex (EVM), base58 or base64 (Solana)",
)
Challenge = MultiLineText(4096, description="The challenge exactly as request-challenge gave it")


class ChallengeRequest(msgspec.Struct, rename="camel"):
    wallet_address: WalletAddress


class ChallengeResponse(msgspec.Struct, rename="camel"):
    challenge: str
    expires_at: datetime


class VerifyRequest(msgspec.Struct, rename="camel"):
    wallet_address: WalletAddress
    signature: Signature
    challenge: Challenge


class WalletLinkedView(msgspec.Struct, rename="camel"):
    success: bool
    wallet_address: str
    chain: str


def _wallet(address: str) -> Wallet:
    try:
        return parse_wallet(address)
    except NotAWallet:
        raise InvalidWalletAddress() from None


class WalletController(Controller):
    dependencies = {"auth": Provide(provide_auth)}

    @post(
        "/auth/request-challenge",
        opt=PUBLIC,
        status_code=200,
        raises=refusals.REQUEST_CHALLENGE,
    )
    async def request_challenge(
        self, data: JSONBody[ChallengeRequest], auth: NamedDependency[AuthContext], request: Request
    ) -> ChallengeResponse:
        wallet = _wallet(data.wallet_address)
        await auth.guard.spend(
            Budget("challenge-ip", client_ip(request), auth.config.per_ip_max),
            Budget("challenge", auth.app.digest("wallet", wallet.key), auth.config.challenge_max),
        )
        message, expires_at = await auth.run(auth.app.issue_wallet_challenge, wallet)
        return ChallengeResponse(challenge=message, expires_at=expires_at)

    async def _sign_in(
        self, data: JSONBody[VerifyRequest], auth: AuthContext, ip: str
    ) -> TokenResponse:
        wallet = _wallet(data.wallet_address)
        budget = Budget("signature-ip", ip, auth.config.per_ip_max)
        await auth.guard.check(budget)
        try:
            signed_in = await auth.run(
                auth.app.sign_in_with_wallet, wallet, data.challenge, data.signature
            )
        except InvalidSignature:
            await auth.guard.fail(budget)
            raise
        return await tokens_for(auth, signed_in)

    @post(
        "/auth/verify-signature",
        opt=PUBLIC,
        status_code=200,
        raises=refusals.VERIFY_SIGNATURE,
    )
    async def verify_signature(
        self, data: JSONBody[VerifyRequest], auth: NamedDependency[AuthContext], request: Request
    ) -> TokenResponse:
        return await self._sign_in(data, auth, client_ip(request))

    @post(
        "/auth/connect-wallet",
        opt=PUBLIC,
        status_code=200,
        raises=refusals.VERIFY_SIGNATURE,
    )
    async def connect_wallet(
        self, data: JSONBody[VerifyRequest], auth: NamedDependency[AuthContext], request: Request
    ) -> TokenResponse:
        return await self._sign_in(data, auth, client_ip(request))

    @post("/auth/wallet/link", status_code=200, raises=refusals.LINK_WALLET)
    async def link_wallet(
        self,
        data: JSONBody[VerifyRequest],
        identity: NamedDependency[Identity],
        auth: NamedDependency[AuthContext],
    ) -> WalletLinkedView:
        wallet = _wallet(data.wallet_address)
        try:
            account_id = UUID(identity.user_id)
        except ValueError:
            raise AccountNotFound() from None
        position = await auth.run(
            auth.app.link_wallet, account_id, wallet, data.challenge, data.signature
        )
        await auth.settle(position)
        return WalletLinkedView(success=True, wallet_address=wallet.address, chain=wallet.chain)
