"""What auth's commands refuse with: the platform's error vocabulary, with auth's codes.

Web-free; the kit maps each to the error envelope (ARCHITECTURE §7).
"""

from __future__ import annotations

import math
from datetime import timedelta

from audifi_kit.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)


class InvalidCredentials(Unauthorized):
    code = "INVALID_CREDENTIALS"
    default_message = "E-mail or password is wrong"


class InvalidToken(Unauthorized):
    code = "INVALID_TOKEN"
    default_message = "The token is unknown, used already or expired"


class InvalidRefreshToken(Unauthorized):
    code = "INVALID_REFRESH_TOKEN"
    default_message = "The refresh token is unknown, rotated or expired"


class InvalidSignature(Unauthorized):
    code = "INVALID_SIGNATURE"
    default_message = "The signature or challenge is not valid"


class InvalidTwoFactorCode(Unauthorized):
    code = "INVALID_2FA_CODE"
    default_message = "The code is not valid"


class SecondFactorLocked(RateLimited):
    """Too many wrong codes in a row for this account, across logins: the 2FA step waits."""

    default_message = "Too many wrong codes; try again later"

    def __init__(self, wait: timedelta) -> None:
        seconds = max(1, math.ceil(wait.total_seconds()))
        super().__init__(headers={"Retry-After": str(seconds)}, details={"retryAfter": seconds})


class AccountNotFound(NotFound):
    code = "ACCOUNT_NOT_FOUND"
    default_message = "No such account"


class AddressAlreadyRegistered(Conflict):
    default_message = "This address belongs to an account already"


class TwoFactorStateConflict(Conflict):
    default_message = "Two-factor authentication is not in a state that allows this"


class SessionNotYours(Forbidden):
    default_message = "This session belongs to another account"


class InvalidEmail(ValidationFailed):
    default_message = "The e-mail address is not valid"


class InvalidPassword(ValidationFailed):
    default_message = "The password must have 8 to 1024 characters"


class InvalidWalletAddress(ValidationFailed):
    default_message = "Not an EVM (0x) address or a Solana (base58) public key"


class InvalidRole(ValidationFailed):
    default_message = "Roles are fan, artist, brand and admin"
