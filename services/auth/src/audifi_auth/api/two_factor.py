"""Two-factor: `POST /auth/2fa/setup` and `POST /auth/2fa/verify` (AudiFi).

`/auth/2fa/verify` does two things, as the gateway's route table has it public:
with a `challengeToken` (from a login that answered `twoFactorRequired`) it completes that
login; without one, for a signed-in caller, it checks the first code and turns 2FA on,
answering the one-time recovery codes (shown once; only their digests are kept).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from audifi_kit.errors import Unauthorized
from audifi_kit.fields import Token, text_type
from audifi_kit.http import Identity, TokenVerifier
from audifi_kit.http.auth import bearer_token
from litestar import Controller, Request, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from audifi_auth.adapters.brute_force import Budget
from audifi_auth.api import refusals
from audifi_auth.api.dependencies import AuthContext, client_ip, provide_auth
from audifi_auth.api.signing_in import TokenResponse, tokens_for
from audifi_auth.application.errors import AccountNotFound, InvalidToken, InvalidTwoFactorCode


class SetupResponse(msgspec.Struct, rename="camel"):
    secret: str
    otpauth_uri: str


# Authenticator apps show a TOTP code as "123 456"; a recovery code is handed out as
# "xxxxxx-xxxxxx" (hex).
SecondFactorCode = text_type(
    "[0-9]{6}|[0-9]{3} [0-9]{3}|[0-9a-fA-F]{6}-[0-9a-fA-F]{6}",
    max_length=13,
    description="A 6-digit TOTP code (a space after the third digit is allowed), or one of the "
    "recovery codes (6 hex digits, '-', 6 hex digits) when completing a login",
)


class CodeRequest(msgspec.Struct, rename="camel", kw_only=True):
    code: SecondFactorCode
    challenge_token: Token | None = None


class TwoFactorOn(msgspec.Struct, rename="camel"):
    enabled: bool
    recovery_codes: list[str]


def _account_id(identity: Identity) -> UUID:
    try:
        return UUID(identity.user_id)
    except ValueError:
        raise AccountNotFound() from None


class TwoFactorController(Controller):
    dependencies = {"auth": Provide(provide_auth)}

    @post("/auth/2fa/setup", status_code=200, raises=refusals.TWO_FACTOR_SETUP)
    async def set_up(
        self, identity: NamedDependency[Identity], auth: NamedDependency[AuthContext]
    ) -> SetupResponse:
        secret, uri = await auth.run(auth.app.set_up_two_factor, _account_id(identity))
        return SetupResponse(secret=secret, otpauth_uri=uri)

    @post(
        "/auth/2fa/verify",
        opt={"public": True},
        status_code=200,
        raises=refusals.TWO_FACTOR_VERIFY,
    )
    async def verify(
        self,
        data: JSONBody[CodeRequest],
        auth: NamedDependency[AuthContext],
        request: Request[Any, Any, Any],
    ) -> TokenResponse | TwoFactorOn:
        budget = Budget("2fa-ip", client_ip(request), auth.config.login_max_failures_per_ip)
        await auth.guard.check(budget)
        code = data.code.replace(" ", "")
        try:
            if data.challenge_token:
                signed_in = await auth.run(
                    auth.app.complete_second_factor, data.challenge_token, code
                )
                return await tokens_for(auth, signed_in)
            identity = await self._caller(request)
            codes, position = await auth.run(
                auth.app.enable_two_factor, _account_id(identity), code
            )
        except (InvalidTwoFactorCode, InvalidToken):
            await auth.guard.fail(budget)
            raise
        await auth.settle(position)
        return TwoFactorOn(enabled=True, recovery_codes=codes)

    @staticmethod
    async def _caller(request: Request[Any, Any, Any]) -> Identity:
        """The route is public (for the login step), so the token is verified here."""
        token = bearer_token(request.scope)
        keys = request.app.state.get("jwks")
        if token is None or keys is None:
            raise Unauthorized("Send a challengeToken, or sign in to turn 2FA on")
        return await TokenVerifier(keys).verify(token)
