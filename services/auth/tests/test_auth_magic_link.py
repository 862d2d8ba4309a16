"""Magic link: sealed to notify, single use, 15 minutes, never in clear anywhere."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from auth_support import AuthService, StartAuth
from nacl.public import SealedBox


def opened_link(auth: AuthService, body: dict) -> str:
    """What notify does with the event: open the sealed link with its private key."""
    assert body["sealKeyId"] == "notify-test-1"
    return SealedBox(auth.notify_key).decrypt(base64.b64decode(body["sealedLink"])).decode()


async def test_a_magic_link_signs_in_once_and_creates_the_account(
    auth: AuthService, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level("DEBUG")
    asked = await auth.client.post("/auth/magic-link", json={"email": "link@example.com"})
    assert asked.status_code == 202
    requested = await auth.wait_published("auth.magic_link.requested")
    link = opened_link(auth, requested)
    assert link.startswith("http://127.0.0.1:8080/magic-link?token=")  # the gateway's page
    token = parse_qs(urlsplit(link).query)["token"][0]

    signed_in = await auth.client.post("/auth/verify-magic-link", json={"token": token})
    assert signed_in.status_code == 200, signed_in.text
    tokens = signed_in.json()
    assert tokens["userId"] == requested["accountId"]
    me = await auth.client.get("/users/me", headers=auth.bearer(tokens))
    assert me.json()["email"] == "link@example.com"
    started = await auth.wait_published("auth.session.started")
    assert started["method"] == "magic_link"

    again = await auth.client.post("/auth/verify-magic-link", json={"token": token})
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "INVALID_TOKEN"

    # The raw token is in no event, no read model and no log line.
    events = await auth.sql(f"SELECT state FROM {auth.store.table}")
    assert all(token.encode() not in bytes(r["state"]) for r in events)
    for table in ("accounts.accounts", "sessions.sessions"):
        rows = await auth.sql(f"SELECT * FROM {table}")
        assert token not in repr([dict(r) for r in rows])
    out, err = capfd.readouterr()
    assert token not in caplog.text and token not in out and token not in err


async def test_the_answer_does_not_tell_whether_an_account_exists(auth: AuthService) -> None:
    await auth.sign_up("known@example.com")
    known = await auth.client.post("/auth/magic-link", json={"email": "known@example.com"})
    unknown = await auth.client.post("/auth/magic-link", json={"email": "new@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()


async def test_an_expired_magic_link_is_refused(auth: AuthService) -> None:
    await auth.client.post("/auth/magic-link", json={"email": "late@example.com"})
    token = parse_qs(
        urlsplit(opened_link(auth, await auth.wait_published("auth.magic_link.requested"))).query
    )["token"][0]
    auth.store.app.clock = lambda: datetime.now(UTC) + timedelta(minutes=16)
    late = await auth.client.post("/auth/verify-magic-link", json={"token": token})
    assert late.status_code == 401


async def test_without_notify_nothing_is_recorded_and_the_client_may_retry(
    start_auth: StartAuth,
) -> None:
    async with start_auth(notify=False) as auth:
        answer = await auth.client.post("/auth/magic-link", json={"email": "wait@example.com"})
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "UNAVAILABLE"
        events = await auth.sql(f"SELECT topic FROM {auth.store.table}")
        assert events == []
