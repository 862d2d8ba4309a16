"""MediaID preferences: interests and privacy settings, published for analytics."""

from __future__ import annotations

from auth_support import AuthService


async def test_a_fan_states_interests_and_what_brands_may_use(auth: AuthService) -> None:
    tokens = await auth.sign_up("media@example.com")
    empty = await auth.client.get("/mediaid/preferences", headers=auth.bearer(tokens))
    assert empty.json() == {"interests": [], "privacy": {}}

    chosen = {"interests": ["jazz", "lofi", "jazz"], "privacy": {"brandAnalytics": False}}
    put = await auth.client.put("/mediaid/preferences", json=chosen, headers=auth.bearer(tokens))
    assert put.status_code == 200, put.text
    expected = {"interests": ["jazz", "lofi"], "privacy": {"brandAnalytics": False}}
    assert put.json() == expected
    read = await auth.client.get("/mediaid/preferences", headers=auth.bearer(tokens))
    assert read.json() == expected
    published = await auth.wait_published("auth.preferences.set")
    assert published == {"accountId": tokens["userId"], **expected}

    changed = {"interests": ["hip-hop"], "privacy": {"brandAnalytics": True}}
    await auth.client.put("/mediaid/preferences", json=changed, headers=auth.bearer(tokens))
    await auth.wait_published("auth.preferences.set", lambda b: b["interests"] == ["hip-hop"])
