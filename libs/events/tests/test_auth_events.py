"""Auth's published events: a message in a superseded shape is read in the current one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from audifi_events import encode, registry
from audifi_events.auth import PreferencesSet, SessionRevoked

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_a_session_revocation_naming_user_id_is_read_as_one_naming_the_account() -> None:
    # As auth published it before version 2, byte for byte the same shape.
    body = json.dumps(
        {
            "sessionId": "s-1",
            "userId": "a-1",
            "revokedAt": NOW.isoformat(),
            "accessTokensValidUntil": (NOW + timedelta(minutes=15)).isoformat(),
            "reason": "logout",
        }
    ).encode()

    event = registry.decode("auth.session.revoked", 1, body)

    assert event == SessionRevoked(
        session_id="s-1",
        account_id="a-1",
        revoked_at=NOW,
        access_tokens_valid_until=NOW + timedelta(minutes=15),
        reason="logout",
    )


def test_auth_publishes_session_revocations_in_version_2() -> None:
    assert SessionRevoked.schema_version == 2
    assert registry.get("auth.session.revoked").struct is SessionRevoked
    event = SessionRevoked(
        session_id="s-1",
        account_id="a-1",
        revoked_at=NOW,
        access_tokens_valid_until=NOW,
        reason="logout",
    )
    assert json.loads(encode(event))["accountId"] == "a-1"
    assert registry.decode("auth.session.revoked", 2, encode(event)) == event


def test_preferences_published_as_updated_are_read_as_set() -> None:
    body = b'{"accountId": "a-1", "interests": ["jazz"], "privacy": {"brandAnalytics": true}}'

    event = registry.decode("auth.preferences.updated", 1, body)

    assert event == PreferencesSet(
        account_id="a-1", interests=["jazz"], privacy={"brandAnalytics": True}
    )
    assert PreferencesSet.routing_key == "auth.preferences.set"
