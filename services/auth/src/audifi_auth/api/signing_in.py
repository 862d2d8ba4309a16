"""The response every way of signing in ends with: an access token and a refresh token."""

from __future__ import annotations

from datetime import datetime

import msgspec

from audifi_auth.api.dependencies import AuthContext
from audifi_auth.application import SecondFactorNeeded, SignedIn


class TokenResponse(msgspec.Struct, rename="camel", kw_only=True):
    """Stoned Rabbits' VerifyResponse {success, token, expiresAt}, plus the refresh token."""

    success: bool = True
    token: str
    expires_at: datetime
    refresh_token: str
    token_type: str = "Bearer"
    user_id: str
    session_id: str
    roles: list[str]
    account_created: bool = False


class TwoFactorRequired(msgspec.Struct, rename="camel", kw_only=True):
    """The password (or link) was right; POST /auth/2fa/verify {challengeToken, code} next."""

    success: bool = False
    two_factor_required: bool = True
    challenge_token: str
    expires_at: datetime


async def tokens_for(auth: AuthContext, signed_in: SignedIn) -> TokenResponse:
    await auth.settle(signed_in.position)
    token, expires_at = auth.access_token(signed_in)
    return TokenResponse(
        token=token,
        expires_at=expires_at,
        refresh_token=signed_in.refresh_token,
        user_id=str(signed_in.account_id),
        session_id=str(signed_in.session_id),
        roles=sorted(signed_in.roles),
        account_created=signed_in.account_created,
    )


async def outcome(
    auth: AuthContext, result: SignedIn | SecondFactorNeeded
) -> TokenResponse | TwoFactorRequired:
    if isinstance(result, SecondFactorNeeded):
        return TwoFactorRequired(
            challenge_token=result.challenge_token, expires_at=result.expires_at
        )
    return await tokens_for(auth, result)
