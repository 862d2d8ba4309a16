"""Erasure (GDPR): the person is forgotten everywhere auth keeps them; ids stay valid."""

from __future__ import annotations

import asyncio
from uuid import UUID

import httpx
import pytest
from audifi_auth.projections.accounts import Accounts
from audifi_kit import cli
from audifi_kit.projections import rebuild
from audifi_kit.testing import eventually
from auth_support import AuthService
from typer.testing import CliRunner

EMAIL = "forget.me@example.com"


async def test_an_erased_account_is_forgotten_and_the_platform_told(
    auth: AuthService, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = await auth.sign_up(EMAIL)
    await auth.client.put(
        "/users/me", json={"displayName": "Forget Me"}, headers=auth.bearer(tokens)
    )
    await auth.client.put(
        "/mediaid/preferences",
        json={"interests": ["secret hobby"], "privacy": {"brandAnalytics": True}},
        headers=auth.bearer(tokens),
    )

    erased = await auth.client.delete("/users/me", headers=auth.bearer(tokens))
    assert erased.status_code == 204, erased.text

    told = await auth.wait_published("auth.account.erased")
    assert told["accountId"] == tokens["userId"]
    revoked = await auth.wait_published(
        "auth.session.revoked", lambda b: b["sessionId"] == tokens["sessionId"]
    )
    assert revoked["reason"] == "account_erased"

    # Its sessions are revoked: auth itself (like every service) refuses the token now, once
    # its consumer of auth.session.revoked has recorded it.
    async def refused() -> httpx.Response | None:
        gone = await auth.client.get("/users/me", headers=auth.bearer(tokens))
        return gone if gone.status_code != 404 else None  # 404: revocation not recorded yet

    gone = await eventually(refused)
    assert gone.status_code == 401, gone.text
    assert gone.json()["error"]["message"] == "This session has been signed out"
    login = await auth.client.post(
        "/auth/login", json={"email": EMAIL, "password": "correct horse battery"}
    )
    assert login.status_code == 401
    refresh = await auth.client.post("/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert refresh.status_code == 401

    # No read model shows the address, not even rebuilt from the whole log.
    def dump(rows: list) -> str:
        return repr([dict(r) for r in rows])

    assert EMAIL not in dump(await auth.sql("SELECT * FROM accounts.accounts"))
    await rebuild(auth.store, Accounts())
    rows = await auth.sql("SELECT * FROM accounts.accounts")
    assert EMAIL not in dump(rows) and "Forget Me" not in dump(rows)
    assert [r["erased"] for r in rows] == [True]

    # Nor does the aggregate's history, as operators read it.
    account = await auth.store.call(auth.store.app.repository.get, UUID(tokens["userId"]))
    assert account.erased and account.email is None
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    monkeypatch.setenv("AUDIFI_DB_PREFIX", auth.store.settings.db_prefix)
    result = await asyncio.to_thread(
        CliRunner().invoke, cli.app, ["history", "auth", tokens["userId"]], env={"COLUMNS": "400"}
    )
    assert result.exit_code == 0, result.output
    assert "Registered" in result.output and "Erased" in result.output
    assert EMAIL not in result.output and "Forget Me" not in result.output

    # The address is free again: a new account, with a new id.
    again = await auth.sign_up(EMAIL)
    assert again["userId"] != tokens["userId"]
