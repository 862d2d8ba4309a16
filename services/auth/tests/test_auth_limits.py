"""Brute-force limits: too many failures answer 429 with Retry-After, then recover."""

from __future__ import annotations

from audifi_kit.testing import eventually
from auth_support import AuthService, StartAuth

LIMITS = {
    "AUTH_LOGIN_MAX_FAILURES": "3",
    "AUTH_MAGIC_LINK_MAX": "2",
    "AUTH_CHALLENGE_MAX": "2",
    "AUTH_LIMIT_WINDOW_SECONDS": "1",
}


async def until_allowed(auth: AuthService, path: str, body: dict) -> int:
    async def allowed() -> int | None:
        response = await auth.client.post(path, json=body)
        return response.status_code if response.status_code != 429 else None

    return await eventually(allowed, every=0.1, what=f"{path} no longer limited")


async def test_password_guessing_trips_the_limiter_which_recovers(
    start_auth: StartAuth, redis_url: str
) -> None:
    async with start_auth(env=LIMITS, redis_url=redis_url) as auth:
        await auth.sign_up("guarded@example.com", "the right password")
        wrong = {"email": "guarded@example.com", "password": "a wrong password"}
        statuses = [
            (await auth.client.post("/auth/login", json=wrong)).status_code for _ in range(3)
        ]
        assert statuses == [401, 401, 401]
        right = {"email": "guarded@example.com", "password": "the right password"}
        limited = await auth.client.post("/auth/login", json=right)
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "RATE_LIMITED"
        assert int(limited.headers["Retry-After"]) >= 1
        assert await until_allowed(auth, "/auth/login", right) == 200


async def test_magic_links_and_challenges_are_limited_per_address(start_auth: StartAuth) -> None:
    async with start_auth(env=LIMITS) as auth:
        body = {"email": "spam@example.com"}
        statuses = [
            (await auth.client.post("/auth/magic-link", json=body)).status_code for _ in range(3)
        ]
        assert statuses == [202, 202, 429]
        other = await auth.client.post("/auth/magic-link", json={"email": "fine@example.com"})
        assert other.status_code == 202

        wallet = {"walletAddress": "0x" + "ab" * 20}
        statuses = [
            (await auth.client.post("/auth/request-challenge", json=wallet)).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        assert await until_allowed(auth, "/auth/magic-link", body) == 202
