"""Magic link: `POST /auth/magic-link` and `POST /auth/verify-magic-link` (AudiFi).

The answer to a request is the same whether or not the address has an account (no
enumeration). The raw token exists only in the link, which is sealed to notify's public key
before it is recorded; the event store keeps the link's id, derived from the token's hash.
"""

from __future__ import annotations

import secrets

import msgspec
from audifi_kit.fields import EmailAddress, Token
from litestar import Controller, Request, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from audifi_auth.adapters.brute_force import Budget
from audifi_auth.api import refusals
from audifi_auth.api.accounts import normalised_email
from audifi_auth.api.dependencies import AuthContext, client_ip, provide_auth
from audifi_auth.api.signing_in import TokenResponse, TwoFactorRequired, outcome
from audifi_auth.application.errors import InvalidToken

PUBLIC = {"public": True}


class MagicLinkRequest(msgspec.Struct, rename="camel"):
    email: EmailAddress


class MagicLinkAccepted(msgspec.Struct, rename="camel"):
    success: bool
    message: str


class MagicLinkVerification(msgspec.Struct, rename="camel"):
    token: Token


class MagicLinkController(Controller):
    dependencies = {"auth": Provide(provide_auth)}

    @post("/auth/magic-link", opt=PUBLIC, status_code=202, raises=refusals.MAGIC_LINK)
    async def request_link(
        self, data: JSONBody[MagicLinkRequest], auth: NamedDependency[AuthContext], request: Request
    ) -> MagicLinkAccepted:
        email = normalised_email(data.email)
        await auth.guard.spend(
            Budget("magic-ip", client_ip(request), auth.config.per_ip_max),
            Budget("magic", auth.app.digest("email", email.lower()), auth.config.magic_link_max),
        )
        token = secrets.token_urlsafe(32)
        link = f"{auth.config.magic_link_url}?token={token}"
        sealed, key_id = await auth.seal_key.seal(link)  # 503 before anything is recorded
        await auth.run(auth.app.request_magic_link, email, token, sealed, key_id)
        return MagicLinkAccepted(
            success=True, message="If the address can receive mail, a sign-in link is on its way"
        )

    @post(
        "/auth/verify-magic-link",
        opt=PUBLIC,
        status_code=200,
        raises=refusals.VERIFY_MAGIC_LINK,
    )
    async def verify(
        self,
        data: JSONBody[MagicLinkVerification],
        auth: NamedDependency[AuthContext],
        request: Request,
    ) -> TokenResponse | TwoFactorRequired:
        budget = Budget("verify-ip", client_ip(request), auth.config.per_ip_max)
        await auth.guard.check(budget)
        try:
            result = await auth.run(auth.app.verify_magic_link, data.token)
        except InvalidToken:
            await auth.guard.fail(budget)
            raise
        return await outcome(auth, result)
