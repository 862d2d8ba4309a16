"""Sessions: refresh rotation, reuse of a rotated token revoking the family, logout."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from audifi_events import encode
from audifi_events.auth import SessionRevokedV1
from audifi_kit.messages import Message
from audifi_kit.testing import eventually
from auth_support import AuthService


async def test_a_refresh_token_rotates_and_its_reuse_revokes_the_whole_session(
    auth: AuthService,
) -> None:
    first = await auth.sign_up("rot@example.com")
    second = await auth.client.post("/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["sessionId"] == first["sessionId"]
    assert rotated["refreshToken"] != first["refreshToken"]

    reused = await auth.client.post("/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "REFRESH_TOKEN_REUSED"
    # The family is gone: the legitimate newest token no longer works either.
    newest = await auth.client.post("/auth/refresh", json={"refreshToken": rotated["refreshToken"]})
    assert newest.status_code == 401

    revoked = await auth.wait_published(
        "auth.session.revoked", lambda b: b["sessionId"] == first["sessionId"]
    )
    assert revoked["reason"] == "refresh_token_reuse"
    assert revoked["accountId"] == first["userId"]


async def test_an_unknown_refresh_token_is_refused(auth: AuthService) -> None:
    for token in ("nonsense", "0" * 32 + ".abc"):
        response = await auth.client.post("/auth/refresh", json={"refreshToken": token})
        assert response.status_code == 401


async def test_logout_ends_the_session_and_tells_the_platform(auth: AuthService) -> None:
    tokens = await auth.sign_up("bye@example.com")
    session = await auth.client.get("/auth/session", headers=auth.bearer(tokens))
    assert session.json()["active"] is True
    assert session.json()["method"] == "password"

    out = await auth.client.post("/auth/logout", headers=auth.bearer(tokens))
    assert out.status_code == 200
    assert out.json() == {"success": True, "sessionId": tokens["sessionId"]}

    revoked = await auth.wait_published("auth.session.revoked")
    assert revoked["sessionId"] == tokens["sessionId"] and revoked["reason"] == "logout"
    assert revoked["accessTokensValidUntil"] > revoked["revokedAt"]
    refresh = await auth.client.post("/auth/refresh", json={"refreshToken": tokens["refreshToken"]})
    assert refresh.status_code == 401

    # Until auth's own consumer has recorded the revocation the session reads as ended; from
    # then on the token is refused outright, as the gateway and every service refuse it.
    async def refused() -> httpx.Response | None:
        after = await auth.client.get("/auth/session", headers=auth.bearer(tokens))
        if after.status_code == 200 and after.json()["active"] is not False:
            pytest.fail(f"a signed-out session read as active: {after.text}")
        return after if after.status_code != 200 else None

    after = await eventually(refused)
    assert after.status_code == 401
    assert after.json()["error"]["message"] == "This session has been signed out"


async def test_a_revocation_published_in_its_first_shape_still_signs_the_session_out(
    auth: AuthService,
) -> None:
    """A `userId` revocation queued or parked before version 2 (`accountId`) is read alike."""
    tokens = await auth.sign_up("old-shape@example.com")
    now = datetime.now(UTC)
    old = SessionRevokedV1(
        session_id=tokens["sessionId"],
        user_id=tokens["userId"],
        revoked_at=now,
        access_tokens_valid_until=now + timedelta(minutes=15),
        reason="logout",
    )
    await auth.app.state["runtime"].bus.publish(
        [
            Message(
                message_id=f"auth-{uuid.uuid4().hex}",
                routing_key=SessionRevokedV1.routing_key,
                body=encode(old),
                schema_version=1,
            )
        ]
    )

    async def refused() -> httpx.Response | None:
        after = await auth.client.get("/auth/session", headers=auth.bearer(tokens))
        return after if after.status_code != 200 else None

    after = await eventually(refused)
    assert after.status_code == 401
    assert after.json()["error"]["message"] == "This session has been signed out"


async def test_the_access_token_carries_the_session_and_roles(auth: AuthService) -> None:
    tokens = await auth.sign_up("claims@example.com")
    session = await auth.client.get("/auth/session", headers=auth.bearer(tokens))
    assert session.json()["userId"] == tokens["userId"]
    assert session.json()["sessionId"] == tokens["sessionId"]
    assert session.json()["roles"] == ["fan"]


async def test_access_tokens_are_eddsa_jwts_living_fifteen_minutes(auth: AuthService) -> None:
    tokens = await auth.sign_up("jwt@example.com")
    assert jwt.get_unverified_header(tokens["token"])["alg"] == "EdDSA"
    claims = jwt.decode(tokens["token"], options={"verify_signature": False})
    assert claims["sub"] == tokens["userId"] and claims["sid"] == tokens["sessionId"]
    assert claims["roles"] == ["fan"]
    assert claims["exp"] - claims["iat"] == 15 * 60
