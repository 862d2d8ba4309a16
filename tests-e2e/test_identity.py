"""Identity end to end: auth and notify in the distributed platform, driven through the gateway."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid

import base58
import httpx
import psycopg
import pyotp
import pytest
from audifi_kit.testing import eventually_sync
from eth_account import Account
from eth_account.messages import encode_defunct
from nacl.signing import SigningKey as SolanaKey
from platform_processes import Platform


def email() -> str:
    return f"fan-{uuid.uuid4().hex[:10]}@example.com"


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['token']}"}


def mail_to(platform: Platform, address: str) -> list[dict]:
    response = httpx.get(f"{platform.gateway}/dev/mail", params={"to": address})
    assert response.status_code == 200, response.text
    return response.json()


def sign_up(platform: Platform, address: str, password: str = "correct horse battery") -> dict:
    response = httpx.post(
        f"{platform.gateway}/auth/signup", json={"email": address, "password": password}
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_a_magic_link_signs_in_once_and_only_once(platform: Platform) -> None:
    address = email()
    asked = httpx.post(f"{platform.gateway}/auth/magic-link", json={"email": address})
    assert asked.status_code == 202, asked.text

    mails = eventually_sync(
        lambda: [m for m in mail_to(platform, address) if "token=" in m["text"]], within=30
    )
    token = re.search(r"token=([A-Za-z0-9_\-]+)", mails[0]["text"]).group(1)
    first = httpx.post(f"{platform.gateway}/auth/verify-magic-link", json={"token": token})
    assert first.status_code == 200, first.text
    tokens = first.json()
    me = httpx.get(f"{platform.gateway}/users/me", headers=bearer(tokens))
    assert me.status_code == 200 and me.json()["email"] == address

    again = httpx.post(f"{platform.gateway}/auth/verify-magic-link", json={"token": token})
    assert again.status_code == 401 and again.json()["error"]["code"] == "INVALID_TOKEN"
    made_up = httpx.post(f"{platform.gateway}/auth/verify-magic-link", json={"token": "x" * 43})
    assert made_up.status_code == 401


def _challenge(platform: Platform, address: str) -> str:
    response = httpx.post(
        f"{platform.gateway}/auth/request-challenge", json={"walletAddress": address}
    )
    assert response.status_code == 200, response.text
    return response.json()["challenge"]


def _verify(platform: Platform, address: str, signature: str, challenge: str) -> httpx.Response:
    return httpx.post(
        f"{platform.gateway}/auth/verify-signature",
        json={"walletAddress": address, "signature": signature, "challenge": challenge},
    )


def test_wallets_sign_in_with_siwe_and_solana_and_a_replay_or_other_signer_is_refused(
    platform: Platform,
) -> None:
    wallet, thief = Account.create(), Account.create()
    challenge = _challenge(platform, wallet.address)
    assert "wants you to sign in with your Ethereum account" in challenge
    signature = wallet.sign_message(encode_defunct(text=challenge)).signature.hex()
    signed_in = _verify(platform, wallet.address, signature, challenge)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["success"] is True and signed_in.json()["token"]
    assert _verify(platform, wallet.address, signature, challenge).status_code == 401  # replay

    challenge = _challenge(platform, wallet.address)
    forged = thief.sign_message(encode_defunct(text=challenge)).signature.hex()
    assert _verify(platform, wallet.address, forged, challenge).status_code == 401

    key = SolanaKey.generate()
    address = base58.b58encode(bytes(key.verify_key)).decode()
    challenge = _challenge(platform, address)
    signature = base58.b58encode(key.sign(challenge.encode()).signature).decode()
    solana = _verify(platform, address, signature, challenge)
    assert solana.status_code == 200, solana.text


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_whole_session(
    platform: Platform,
) -> None:
    tokens = sign_up(platform, email())
    rotated = httpx.post(
        f"{platform.gateway}/auth/refresh", json={"refreshToken": tokens["refreshToken"]}
    )
    assert rotated.status_code == 200, rotated.text
    newer = rotated.json()
    assert newer["refreshToken"] != tokens["refreshToken"]
    assert httpx.get(f"{platform.gateway}/auth/session", headers=bearer(newer)).status_code == 200

    reused = httpx.post(
        f"{platform.gateway}/auth/refresh", json={"refreshToken": tokens["refreshToken"]}
    )
    assert reused.status_code == 401
    # The family is revoked: the newest refresh token and its access token stop working too.
    latest = httpx.post(
        f"{platform.gateway}/auth/refresh", json={"refreshToken": newer["refreshToken"]}
    )
    assert latest.status_code == 401
    eventually_sync(
        lambda: (
            httpx.get(f"{platform.gateway}/auth/session", headers=bearer(newer)).status_code == 401
        )
    )


def test_two_factor_logins_need_a_valid_code_and_a_recovery_code_works_once(
    platform: Platform,
) -> None:
    address, password = email(), "two factors are better"
    tokens = sign_up(platform, address, password)
    setup = httpx.post(f"{platform.gateway}/auth/2fa/setup", headers=bearer(tokens))
    assert setup.status_code in (200, 201), setup.text
    totp = pyotp.TOTP(setup.json()["secret"])
    enabled = httpx.post(
        f"{platform.gateway}/auth/2fa/verify", json={"code": totp.now()}, headers=bearer(tokens)
    )
    assert enabled.status_code in (200, 201), enabled.text
    recovery = enabled.json()["recoveryCodes"]

    def login() -> dict:
        step = httpx.post(
            f"{platform.gateway}/auth/login", json={"email": address, "password": password}
        )
        assert step.status_code == 200, step.text
        assert step.json()["twoFactorRequired"] is True and "token" not in step.json()
        return step.json()

    step = login()
    wrong = httpx.post(
        f"{platform.gateway}/auth/2fa/verify",
        json={"challengeToken": step["challengeToken"], "code": "000000"},
    )
    assert wrong.status_code == 401
    right = httpx.post(
        f"{platform.gateway}/auth/2fa/verify",
        # the next step's code: the one that turned 2FA on is spent (RFC 6238 §5.2)
        json={"challengeToken": step["challengeToken"], "code": totp.at(time.time() + 30)},
    )
    assert right.status_code == 200 and right.json()["token"]

    step = login()
    used = httpx.post(
        f"{platform.gateway}/auth/2fa/verify",
        json={"challengeToken": step["challengeToken"], "code": recovery[0]},
    )
    assert used.status_code == 200, used.text
    step = login()
    reused = httpx.post(
        f"{platform.gateway}/auth/2fa/verify",
        json={"challengeToken": step["challengeToken"], "code": recovery[0]},
    )
    assert reused.status_code == 401


def test_after_logout_the_access_token_is_refused_at_the_gateway_and_by_the_services(
    platform: Platform,
) -> None:
    tokens = sign_up(platform, email())
    session = f"{platform.gateway}/auth/session"
    assert httpx.get(session, headers=bearer(tokens)).status_code == 200
    out = httpx.post(f"{platform.gateway}/auth/logout", headers=bearer(tokens))
    assert out.status_code in (200, 201), out.text
    refused = eventually_sync(
        lambda: (r := httpx.get(session, headers=bearer(tokens))).status_code == 401 and r
    )
    assert refused.json()["error"]["code"] == "UNAUTHORIZED"
    # Refused at the edge: a service route behind the gateway is not reached either.
    holdings = httpx.get(f"{platform.gateway}/user/holdings", headers=bearer(tokens))
    assert holdings.status_code == 401
    # Zero trust: a service reached without the gateway refuses the token as well (each
    # consumes auth.session.revoked itself).
    direct = f"{platform.url('notify')}/notifications"
    answer = eventually_sync(
        lambda: (r := httpx.get(direct, headers=bearer(tokens))).status_code == 401 and r
    )
    assert answer.json()["error"]["message"] == "This session has been signed out"


def _rows_naming(postgres_url: str, prefix: str, needle: str) -> list[str]:
    """Every column of every table of the platform's databases that holds `needle`."""
    found = []
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        names = [
            r[0]
            for r in admin.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{prefix}%",)
            )
        ]
    for name in names:
        url = postgres_url.rsplit("/", 1)[0] + f"/{name}"
        with psycopg.connect(url, autocommit=True) as conn:
            columns = conn.execute(
                "SELECT table_schema, table_name, column_name, data_type "
                "FROM information_schema.columns "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
            ).fetchall()
            for schema, table, column, kind in columns:
                target = f'"{schema}"."{table}"'
                if kind == "bytea":
                    query = f'SELECT count(*) FROM {target} WHERE position(%s in "{column}") > 0'
                    arg: object = needle.encode()
                else:
                    query = f'SELECT count(*) FROM {target} WHERE "{column}"::text LIKE %s'
                    arg = f"%{needle}%"
                if conn.execute(query, (arg,)).fetchone()[0]:
                    found.append(f"{name}.{schema}.{table}.{column}")
    return found


def test_an_erased_account_is_forgotten_everywhere_but_its_ids_stay_valid(
    platform: Platform, postgres_url: str
) -> None:
    address = email()
    tokens = sign_up(platform, address)
    account_id = tokens["userId"]
    eventually_sync(lambda: mail_to(platform, address), within=30)  # welcome: notify knew it
    assert _rows_naming(postgres_url, platform.env["AUDIFI_DB_PREFIX"], address)

    erased = httpx.delete(f"{platform.gateway}/users/me", headers=bearer(tokens))
    assert erased.status_code == 204, erased.text

    def forgotten() -> bool:
        return not _rows_naming(postgres_url, platform.env["AUDIFI_DB_PREFIX"], address)

    eventually_sync(forgotten, within=30, every=1.0)
    notify_db = postgres_url.rsplit("/", 1)[0] + f"/{platform.env['AUDIFI_DB_PREFIX']}notify"
    with psycopg.connect(notify_db) as conn:
        told = conn.execute(
            "SELECT count(*) FROM notify_erased_accounts WHERE account_id::text = %s",
            (account_id,),
        ).fetchone()[0]
    assert told == 1  # notify received auth.account.erased

    history = subprocess.run(
        [sys.executable, "-m", "audifi_kit.cli", "history", "auth", account_id],
        env=platform.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert history.returncode == 0, history.stderr
    assert account_id in history.stdout and address not in history.stdout
    assert httpx.get(f"{platform.gateway}/auth/session", headers=bearer(tokens)).status_code == 401


def test_the_login_limiter_trips_and_recovers(platform: Platform) -> None:
    address, password = email(), "the right one"
    sign_up(platform, address, password)
    login = f"{platform.gateway}/auth/login"
    statuses = [
        httpx.post(login, json={"email": address, "password": "wrong"}).status_code
        for _ in range(8)
    ]
    assert statuses[0] == 401 and statuses[-1] == 429, statuses
    limited = httpx.post(login, json={"email": address, "password": password})
    assert limited.status_code == 429
    wait = int(limited.headers["retry-after"])
    assert 1 <= wait <= int(platform.env["AUTH_LIMIT_WINDOW_SECONDS"])
    time.sleep(wait)
    assert eventually_sync(
        lambda: httpx.post(login, json={"email": address, "password": password}).status_code == 200,
        within=10,
    )


@pytest.fixture(autouse=True)
def _platform_is_up(platform: Platform) -> None:
    """Fail with the services' logs, not a bare connection error, when one is down."""
    health = httpx.get(f"{platform.gateway}/admin/health")
    if health.status_code != 200:
        logs = "\n".join(f"--- {n}\n{platform.log_tail(n)}" for n in ("auth", "notify"))
        pytest.fail(f"platform degraded: {health.text}\n{logs}")
