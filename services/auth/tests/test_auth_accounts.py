"""Accounts: sign up, log in, the profile, roles — and e-mail uniqueness."""

from __future__ import annotations

import asyncio

from auth_support import AuthService


async def test_a_new_fan_signs_up_and_sees_their_profile(auth: AuthService) -> None:
    tokens = await auth.sign_up("Ada@Example.com")
    assert tokens["success"] is True and tokens["roles"] == ["fan"]
    assert tokens["refreshToken"] and tokens["token"]

    me = await auth.client.get("/users/me", headers=auth.bearer(tokens))
    assert me.status_code == 200, me.text
    assert me.json()["email"] == "Ada@example.com"
    assert me.json()["roles"] == ["fan"]
    assert me.json()["twoFactorEnabled"] is False

    registered = await auth.wait_published("auth.account.registered")
    assert registered["accountId"] == tokens["userId"]
    assert registered["email"] == "Ada@example.com"
    started = await auth.wait_published("auth.session.started")
    assert started["method"] == "password" and started["sessionId"] == tokens["sessionId"]


async def test_an_address_registers_once_whatever_its_case(auth: AuthService) -> None:
    await auth.sign_up("dup@example.com")
    again = await auth.client.post(
        "/auth/signup", json={"email": "DUP@example.com", "password": "another password"}
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "CONFLICT"


async def test_two_registrations_racing_for_one_address_leave_one_account(
    auth: AuthService,
) -> None:
    answers = await asyncio.gather(
        *(
            auth.client.post(
                "/auth/signup", json={"email": "race@example.com", "password": f"password {i}"}
            )
            for i in range(4)
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]


async def test_login_with_the_right_password_only(auth: AuthService) -> None:
    await auth.sign_up("bob@example.com", "bob's long password")
    good = await auth.client.post(
        "/auth/login", json={"email": "BOB@example.com", "password": "bob's long password"}
    )
    assert good.status_code == 200, good.text
    assert good.json()["roles"] == ["fan"]
    wrong = await auth.client.post(
        "/auth/login", json={"email": "bob@example.com", "password": "not bob's password"}
    )
    nobody = await auth.client.post(
        "/auth/login", json={"email": "nobody@example.com", "password": "whatever it is"}
    )
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json()["error"]["code"] == nobody.json()["error"]["code"] == "INVALID_CREDENTIALS"


async def test_signup_refuses_a_bad_address_or_a_short_password(auth: AuthService) -> None:
    bad = await auth.client.post(
        "/auth/signup", json={"email": "not-an-email", "password": "x" * 9}
    )
    short = await auth.client.post(
        "/auth/signup", json={"email": "ok@example.com", "password": "x"}
    )
    assert bad.status_code == short.status_code == 400
    assert bad.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_a_fan_edits_their_display_name(auth: AuthService) -> None:
    tokens = await auth.sign_up("carol@example.com")
    edited = await auth.client.put(
        "/users/me", json={"displayName": "Carol K"}, headers=auth.bearer(tokens)
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["displayName"] == "Carol K"


async def test_configured_admins_get_the_role_and_grant_roles_to_others(
    auth: AuthService,
) -> None:
    boss = await auth.sign_up("boss@example.com")
    assert sorted(boss["roles"]) == ["admin", "fan"]
    fan = await auth.sign_up("artist@example.com")

    refused = await auth.client.post(
        f"/users/{boss['userId']}/roles", json={"role": "artist"}, headers=auth.bearer(fan)
    )
    assert refused.status_code == 403

    granted = await auth.client.post(
        f"/users/{fan['userId']}/roles", json={"role": "artist"}, headers=auth.bearer(boss)
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["roles"] == ["artist", "fan"]
    unknown = await auth.client.post(
        f"/users/{fan['userId']}/roles", json={"role": "pope"}, headers=auth.bearer(boss)
    )
    assert unknown.status_code == 400

    audit = await auth.wait_published(
        "auth.account.role_granted", lambda b: b["accountId"] == fan["userId"]
    )
    assert audit == {"accountId": fan["userId"], "role": "artist", "grantedBy": boss["userId"]}
    configured = await auth.wait_published(
        "auth.account.role_granted", lambda b: b["accountId"] == boss["userId"]
    )
    assert configured["grantedBy"] is None and configured["role"] == "admin"

    listing = await auth.client.get("/users", headers=auth.bearer(boss))
    assert listing.status_code == 200
    assert {u["id"] for u in listing.json()["items"]} == {boss["userId"], fan["userId"]}


async def test_personal_data_is_sealed_in_the_event_store(auth: AuthService) -> None:
    await auth.sign_up("sealed@example.com", "a sealed password")
    rows = await auth.sql(f"SELECT state FROM {auth.store.table}")
    stored = b"".join(bytes(r["state"]) for r in rows)
    assert b"sealed@example.com" not in stored
    assert b"argon2" not in stored


async def test_the_admin_listing_pages_by_cursor(auth: AuthService) -> None:
    boss = await auth.sign_up("boss@example.com")
    signed_up = [boss["userId"]]
    for i in range(4):
        signed_up.append((await auth.sign_up(f"fan{i}@example.com"))["userId"])
    seen, cursor = [], None
    for _ in range(3):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = await auth.client.get("/users", params=params, headers=auth.bearer(boss))
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) <= 2
        seen += [u["id"] for u in page.json()["items"]]
        cursor = page.json()["nextCursor"]
        if cursor is None:
            break
    assert seen == signed_up  # each once, in the order they signed up
    bad = await auth.client.get("/users?cursor=nope", headers=auth.bearer(boss))
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "VALIDATION_ERROR"
    assert [f["field"] for f in bad.json()["error"]["details"]["fields"]] == ["cursor"]


async def test_the_service_documents_its_api(auth: AuthService) -> None:
    schema = await auth.client.get("/schema/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    for path in ("/auth/signup", "/auth/login", "/auth/verify-signature", "/users/me"):
        assert path in paths
