"""What each auth operation refuses with, beyond what every operation can (issue 9).

A route names its tuple in Litestar's `raises=`; the kit's OpenAPI plugin documents each
status with the error envelope and the codes these classes carry (`audifi_kit.http.openapi`),
so a client sees, for instance, that a login can answer 401 INVALID_CREDENTIALS or 429. What
every operation can answer (a body's 400, a protected route's 401 and 403, a path parameter's
404...) the kit adds by itself. The brute-force budgets (`brute_force`) answer 429.
"""

from __future__ import annotations

from audifi_kit.errors import RateLimited, Unauthorized, Unavailable

from audifi_auth.application.errors import (
    AccountNotFound,
    AddressAlreadyRegistered,
    InvalidCredentials,
    InvalidEmail,
    InvalidPassword,
    InvalidRefreshToken,
    InvalidRole,
    InvalidSignature,
    InvalidToken,
    InvalidTwoFactorCode,
    InvalidWalletAddress,
    SecondFactorLocked,
    TwoFactorStateConflict,
)

SIGN_UP = (InvalidEmail, InvalidPassword, AddressAlreadyRegistered, RateLimited)
LOG_IN = (InvalidCredentials, RateLimited)
# The caller's own account: it may be erased (or unknown) while their token is still valid.
OWN_ACCOUNT = (AccountNotFound,)
GRANT_ROLE = (InvalidRole, AccountNotFound)
REFRESH = (InvalidRefreshToken,)
MAGIC_LINK = (InvalidEmail, RateLimited, Unavailable)
VERIFY_MAGIC_LINK = (InvalidToken, RateLimited)
TWO_FACTOR_SETUP = (AccountNotFound, TwoFactorStateConflict)
TWO_FACTOR_VERIFY = (
    Unauthorized,
    InvalidToken,
    InvalidTwoFactorCode,
    SecondFactorLocked,
    RateLimited,
    AccountNotFound,
    TwoFactorStateConflict,
)
REQUEST_CHALLENGE = (InvalidWalletAddress, RateLimited)
VERIFY_SIGNATURE = (InvalidWalletAddress, InvalidSignature, RateLimited)
LINK_WALLET = (InvalidWalletAddress, InvalidSignature, AccountNotFound, AddressAlreadyRegistered)
