"""Two-factor: turning it on, logins needing a code, recovery codes that work once."""

from __future__ import annotations

import asyncio
import time

import pyotp
from auth_support import AuthService

PASSWORD = "two factor password"


async def login(auth: AuthService, email: str) -> dict:
    response = await auth.client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()


async def test_with_2fa_on_a_login_needs_a_valid_code(auth: AuthService) -> None:
    tokens = await auth.sign_up("otp@example.com", PASSWORD)
    setup = await auth.client.post("/auth/2fa/setup", headers=auth.bearer(tokens))
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    assert setup.json()["otpauthUri"].startswith("otpauth://totp/")

    wrong = await auth.client.post(
        "/auth/2fa/verify", json={"code": "000000"}, headers=auth.bearer(tokens)
    )
    assert wrong.status_code == 401
    enabling_code = pyotp.TOTP(secret).now()
    enabled = await auth.client.post(
        "/auth/2fa/verify", json={"code": enabling_code}, headers=auth.bearer(tokens)
    )
    assert enabled.status_code == 200, enabled.text
    recovery = enabled.json()["recoveryCodes"]
    assert enabled.json()["enabled"] is True and len(set(recovery)) == 10
    await auth.wait_published("auth.account.two_factor_enabled")
    me = await auth.client.get("/users/me", headers=auth.bearer(tokens))
    assert me.json()["twoFactorEnabled"] is True

    step = await login(auth, "otp@example.com")
    assert step["twoFactorRequired"] is True and "token" not in step
    refused = await auth.client.post(
        "/auth/2fa/verify", json={"challengeToken": step["challengeToken"], "code": "123456"}
    )
    assert refused.status_code == 401
    # The code that turned 2FA on was spent doing so: the next time step's code (accepted for
    # clock drift) signs in.
    spent_on_enable = await auth.client.post(
        "/auth/2fa/verify",
        json={"challengeToken": step["challengeToken"], "code": enabling_code},
    )
    assert spent_on_enable.status_code == 401
    code = pyotp.TOTP(secret).at(time.time() + 30)
    done = await auth.client.post(
        "/auth/2fa/verify", json={"challengeToken": step["challengeToken"], "code": code}
    )
    assert done.status_code == 200, done.text
    assert done.json()["userId"] == tokens["userId"] and done.json()["token"]
    reused = await auth.client.post(
        "/auth/2fa/verify", json={"challengeToken": step["challengeToken"], "code": code}
    )
    assert reused.status_code == 401
    # Nor does the same code open another login (RFC 6238 §5.2): someone who saw it, and
    # knows the password, gets nothing from it.
    replay = await login(auth, "otp@example.com")
    replayed = await auth.client.post(
        "/auth/2fa/verify", json={"challengeToken": replay["challengeToken"], "code": code}
    )
    assert replayed.status_code == 401

    # A recovery code stands in for the TOTP code, once.
    step = await login(auth, "otp@example.com")
    saved = await auth.client.post(
        "/auth/2fa/verify", json={"challengeToken": step["challengeToken"], "code": recovery[0]}
    )
    assert saved.status_code == 200
    step = await login(auth, "otp@example.com")
    spent = await auth.client.post(
        "/auth/2fa/verify", json={"challengeToken": step["challengeToken"], "code": recovery[0]}
    )
    assert spent.status_code == 401


async def test_enabling_2fa_needs_a_signed_in_caller_and_a_setup(auth: AuthService) -> None:
    anonymous = await auth.client.post("/auth/2fa/verify", json={"code": "123456"})
    assert anonymous.status_code == 401
    tokens = await auth.sign_up("nosetup@example.com", PASSWORD)
    early = await auth.client.post(
        "/auth/2fa/verify", json={"code": "123456"}, headers=auth.bearer(tokens)
    )
    assert early.status_code == 409


async def test_one_code_presented_to_two_logins_at_once_signs_in_one(auth: AuthService) -> None:
    tokens = await auth.sign_up("race@example.com", PASSWORD)
    secret = (await auth.client.post("/auth/2fa/setup", headers=auth.bearer(tokens))).json()[
        "secret"
    ]
    enabled = await auth.client.post(
        "/auth/2fa/verify", json={"code": pyotp.TOTP(secret).now()}, headers=auth.bearer(tokens)
    )
    assert enabled.status_code == 200, enabled.text
    first, second = await login(auth, "race@example.com"), await login(auth, "race@example.com")
    code = pyotp.TOTP(secret).at(time.time() + 30)

    answers = await asyncio.gather(
        *(
            auth.client.post(
                "/auth/2fa/verify", json={"challengeToken": s["challengeToken"], "code": code}
            )
            for s in (first, second)
        )
    )

    statuses = sorted(a.status_code for a in answers)
    assert statuses[0] == 200 and statuses[1] in (401, 409), [a.text for a in answers]


async def test_wrong_codes_across_logins_lock_the_accounts_second_factor(start_auth) -> None:
    limits = {"AUTH_2FA_MAX_FAILURES": "3", "AUTH_2FA_LOCK_SECONDS": "600"}
    async with start_auth(env=limits) as auth:
        tokens = await auth.sign_up("guess@example.com", PASSWORD)
        secret = (await auth.client.post("/auth/2fa/setup", headers=auth.bearer(tokens))).json()[
            "secret"
        ]
        enabling = {"code": pyotp.TOTP(secret).now()}
        on = await auth.client.post("/auth/2fa/verify", json=enabling, headers=auth.bearer(tokens))
        assert on.status_code == 200, on.text
        right = pyotp.TOTP(secret).at(time.time() + 30)
        wrong = "000000" if right != "000000" else "111111"

        # Three wrong codes in a row, spread over two logins (each challenge allows five).
        first, second = [await login(auth, "guess@example.com") for _ in range(2)]
        for challenge in (first, first, second):
            refused = await auth.client.post(
                "/auth/2fa/verify",
                json={"challengeToken": challenge["challengeToken"], "code": wrong},
            )
            assert refused.status_code == 401, refused.text

        third = await login(auth, "guess@example.com")
        locked = await auth.client.post(
            "/auth/2fa/verify", json={"challengeToken": third["challengeToken"], "code": right}
        )
        assert locked.status_code == 429, locked.text
        assert locked.json()["error"]["code"] == "RATE_LIMITED"
        assert 590 <= int(locked.headers["retry-after"]) <= 600
        # The lock holds for every login of the account, the right code included.
        again = await auth.client.post(
            "/auth/2fa/verify", json={"challengeToken": second["challengeToken"], "code": right}
        )
        assert again.status_code == 429
