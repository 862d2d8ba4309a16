"""What a client may write into auth: every text has a rule, the schema shows it, and a value
outside it is refused with 400 before anything is recorded (issue 9: a NUL in a display name
was stored and stalled the accounts projection for good)."""

from __future__ import annotations

from typing import Any

from auth_support import AuthService

CONTROL_CHARACTERS = ["a\x00b", "a\nb", "trailing newline\n", "tab\there", "del\x7f", "c1\x85"]


def _refused_field(response: Any) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    return error["details"]["fields"][0]["field"]


async def test_a_display_name_with_a_control_character_is_refused_and_the_profile_kept(
    auth: AuthService,
) -> None:
    tokens = await auth.sign_up("carol@example.com")
    headers = auth.bearer(tokens)
    kept = await auth.client.put("/users/me", json={"displayName": "Carol"}, headers=headers)
    assert kept.status_code == 200, kept.text

    for name in CONTROL_CHARACTERS:
        refused = await auth.client.put("/users/me", json={"displayName": name}, headers=headers)
        assert _refused_field(refused) == "displayName", repr(name)

    me = await auth.client.get("/users/me", headers=headers)
    assert me.json()["displayName"] == "Carol"
    # The read model still follows: the next edit is seen at once.
    edited = await auth.client.put("/users/me", json={"displayName": "Carol K"}, headers=headers)
    assert edited.status_code == 200 and edited.json()["displayName"] == "Carol K"


async def test_a_display_name_longer_than_100_characters_is_refused_not_cut(
    auth: AuthService,
) -> None:
    tokens = await auth.sign_up("long@example.com")
    headers = auth.bearer(tokens)
    for name in ("x" * 101, "x" * 100_000):
        refused = await auth.client.put("/users/me", json={"displayName": name}, headers=headers)
        assert _refused_field(refused) == "displayName"
    assert (await auth.client.get("/users/me", headers=headers)).json()["displayName"] is None

    longest = "é" * 100
    edited = await auth.client.put("/users/me", json={"displayName": longest}, headers=headers)
    assert edited.status_code == 200 and edited.json()["displayName"] == longest


REFUSED_PREFERENCES = [
    ({"interests": ["jazz\x00"]}, "interests[0]"),
    ({"interests": ["ok", "x" * 65]}, "interests[1]"),
    ({"interests": [f"tag {i}" for i in range(51)]}, "interests"),
    ({"privacy": {"brand\x00Analytics": True}}, "privacy"),
    ({"privacy": {"has space": True}}, "privacy"),
    ({"privacy": {"k" * 65: True}}, "privacy"),
    ({"privacy": {f"setting{i}": True for i in range(51)}}, "privacy"),
]


async def test_preferences_outside_their_bounds_are_refused_and_the_old_ones_kept(
    auth: AuthService,
) -> None:
    tokens = await auth.sign_up("media@example.com")
    headers = auth.bearer(tokens)
    chosen = {"interests": ["jazz"], "privacy": {"brandAnalytics": False}}
    ok = await auth.client.put("/mediaid/preferences", json=chosen, headers=headers)
    assert ok.status_code == 200, ok.text

    for choice, field in REFUSED_PREFERENCES:
        refused = await auth.client.put("/mediaid/preferences", json=choice, headers=headers)
        assert _refused_field(refused) == field, choice
    read = await auth.client.get("/mediaid/preferences", headers=headers)
    assert read.json() == chosen


async def test_the_largest_preferences_the_schema_allows_are_kept(auth: AuthService) -> None:
    tokens = await auth.sign_up("many@example.com")
    chosen = {
        "interests": [f"{i:02d}" + "x" * 62 for i in range(50)],
        "privacy": {f"s{i:02d}." + "k" * 60: i % 2 == 0 for i in range(50)},
    }
    put = await auth.client.put("/mediaid/preferences", json=chosen, headers=auth.bearer(tokens))
    assert put.status_code == 200, put.text
    assert put.json() == chosen


REFUSED_ON_PUBLIC_ROUTES = [
    ("/auth/signup", {"email": "a\x00@example.com", "password": "long enough"}, "email"),
    ("/auth/signup", {"email": "ok@example.com", "password": "long\x00enough"}, "password"),
    ("/auth/signup", {"email": "ok@example.com", "password": "x" * 1025}, "password"),
    ("/auth/login", {"email": "ok@example.com", "password": "x" * 1025}, "password"),
    ("/auth/magic-link", {"email": "someone@example.test"}, "email"),
    ("/auth/verify-magic-link", {"token": "t\x00k"}, "token"),
    ("/auth/refresh", {"refreshToken": "x" * 513}, "refreshToken"),
    ("/auth/2fa/verify", {"code": "12345\x00"}, "code"),
    ("/auth/request-challenge", {"walletAddress": "0x" + "g" * 40}, "walletAddress"),
    (
        "/auth/verify-signature",
        {"walletAddress": "0x" + "a" * 40, "signature": "0x00", "challenge": "a\x00"},
        "challenge",
    ),
]


async def test_public_routes_refuse_text_outside_the_rules_naming_the_field(
    auth: AuthService,
) -> None:
    for path, body, field in REFUSED_ON_PUBLIC_ROUTES:
        assert _refused_field(await auth.client.post(path, json=body)) == field, (path, body)


async def test_a_role_outside_the_four_is_refused_by_its_schema(auth: AuthService) -> None:
    admin = await auth.sign_up("boss@example.com")
    fan = await auth.sign_up("fan@example.com")
    refused = await auth.client.post(
        f"/users/{fan['userId']}/roles", json={"role": "root"}, headers=auth.bearer(admin)
    )
    assert _refused_field(refused) == "role"


async def test_the_admins_user_list_refuses_a_malformed_cursor_or_limit(
    auth: AuthService,
) -> None:
    admin = auth.bearer(await auth.sign_up("boss@example.com"))
    for params, field in (
        ({"cursor": "0" * 36}, "cursor"),
        ({"cursor": "\x00"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
    ):
        response = await auth.client.get("/users", params=params, headers=admin)
        assert _refused_field(response) == field, params


def _strings(schema: dict[str, Any], document: dict[str, Any], where: str) -> list[tuple]:
    """Every string schema reachable from `schema`, with where it was found."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _strings(document["components"]["schemas"][name], document, name)
    found: list[tuple] = []
    if schema.get("type") == "string":
        found.append((where, schema))
    for key in ("oneOf", "anyOf", "allOf"):
        for i, inner in enumerate(schema.get(key, [])):
            # A union's constraints sit on the union itself (Litestar hoists them).
            merged = {**{k: v for k, v in schema.items() if k != key}, **inner}
            found += _strings(merged, document, f"{where}|{i}")
    for name, inner in schema.get("properties", {}).items():
        found += _strings(inner, document, f"{where}.{name}")
    if isinstance(schema.get("items"), dict):
        found += _strings(schema["items"], document, f"{where}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        found += _strings(schema["additionalProperties"], document, f"{where}{{}}")
    if schema.get("type") == "object" and "additionalProperties" in schema:
        names = schema.get("propertyNames")
        assert names and "pattern" in names and "maxLength" in names, f"{where}: keys unbounded"
    return found


async def test_every_text_a_client_sends_has_a_length_and_a_pattern_in_the_schema(
    auth: AuthService,
) -> None:
    document = (await auth.client.get("/schema/openapi.json")).json()
    strings = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                strings += _strings(parameter["schema"], document, f"{method} {path} {parameter}")
            for content in operation.get("requestBody", {}).get("content", {}).values():
                strings += _strings(content["schema"], document, f"{method} {path} body")
    assert len(strings) > 15
    for where, schema in strings:
        if "enum" in schema or schema.get("format") == "uuid":
            continue
        assert schema.get("maxLength") and schema.get("pattern"), where

    schemas = document["components"]["schemas"]
    display_name = schemas["ProfileEdit"]["properties"]["displayName"]
    assert display_name["maxLength"] == 100 and "\\x00" in display_name["pattern"]
