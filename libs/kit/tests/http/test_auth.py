"""Access tokens verified against auth's JWKS, served over real HTTP (ARCHITECTURE.md §7)."""

from __future__ import annotations

import asyncio

import pytest
from jwks_support import AUDIENCE, ISSUER, JwksServer, SigningKey
from litestar.testing import AsyncTestClient
from service_app import build_app


@pytest.fixture
async def client(jwks_server: JwksServer):
    app = build_app(
        jwks_url=jwks_server.url,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwks_min_refetch_interval=0.3,
    )
    async with AsyncTestClient(app=app) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_valid_token_gives_the_handler_the_callers_identity(
    client, signing_key: SigningKey
) -> None:
    token = signing_key.token("artist-7", roles=("artist", "fan"))
    response = await client.get("/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "userId": "artist-7",
        "roles": ["artist", "fan"],
        "sessionId": "session-1",
    }
    whoami = await client.get("/whoami", headers=bearer(token))
    assert whoami.json() == {"userId": "artist-7"}


async def test_a_protected_route_without_a_token_is_unauthorized(client) -> None:
    assert_unauthorized(await client.get("/me"))
    assert_unauthorized(await client.get("/me", headers={"Authorization": "Basic dTpw"}))


async def test_public_routes_need_no_token(client) -> None:
    assert (await client.get("/masters/1")).status_code == 200
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200
    assert (await client.get("/schema/openapi.json")).status_code == 200


async def test_a_forged_signature_is_unauthorized(client, signing_key: SigningKey) -> None:
    forger = SigningKey(kid=signing_key.kid)  # same kid, another private key
    assert_unauthorized(await client.get("/me", headers=bearer(forger.token())))
    tampered = signing_key.token("fan-1")
    header, payload, signature = tampered.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert_unauthorized(await client.get("/me", headers=bearer(f"{header}.{payload}.{flipped}")))
    assert_unauthorized(await client.get("/me", headers=bearer("not-a-jwt")))


async def test_an_expired_token_is_unauthorized(client, signing_key: SigningKey) -> None:
    response = await client.get("/me", headers=bearer(signing_key.token(ttl=-60)))
    assert_unauthorized(response)
    assert "expired" in response.json()["error"]["message"]


async def test_a_token_for_another_issuer_or_audience_is_unauthorized(
    client, signing_key: SigningKey
) -> None:
    assert_unauthorized(await client.get("/me", headers=bearer(signing_key.token(iss="evil"))))
    assert_unauthorized(await client.get("/me", headers=bearer(signing_key.token(aud="other"))))


async def test_an_unknown_key_id_is_unauthorized_after_one_refetch(
    client, jwks_server: JwksServer
) -> None:
    stranger = SigningKey(kid="k-unknown")
    assert_unauthorized(await client.get("/me", headers=bearer(stranger.token())))
    assert jwks_server.hits == 1
    # Within the minimum refetch interval a flood of unknown kids costs auth nothing more.
    responses = await asyncio.gather(
        *(client.get("/me", headers=bearer(stranger.token())) for _ in range(5))
    )
    for response in responses:
        assert_unauthorized(response)
    assert jwks_server.hits == 1


async def test_a_rotated_key_is_picked_up_by_refetching_the_jwks(
    client, signing_key: SigningKey, jwks_server: JwksServer
) -> None:
    assert (await client.get("/me", headers=bearer(signing_key.token()))).status_code == 200
    assert jwks_server.hits == 1
    await asyncio.sleep(0.35)  # past the minimum refetch interval
    new_key = jwks_server.rotate()
    response = await client.get("/me", headers=bearer(new_key.token("fan-2")))
    assert response.status_code == 200, response.text
    assert response.json()["userId"] == "fan-2"
    assert jwks_server.hits == 2
    # Both keys are now cached: no further fetch for either.
    await client.get("/me", headers=bearer(signing_key.token()))
    await client.get("/me", headers=bearer(new_key.token()))
    assert jwks_server.hits == 2


async def test_a_role_guard_forbids_callers_without_the_role(
    client, signing_key: SigningKey
) -> None:
    fan = await client.get("/admin/report", headers=bearer(signing_key.token(roles=("fan",))))
    assert fan.status_code == 403
    assert fan.json()["error"]["code"] == "FORBIDDEN"
    assert fan.json()["error"]["details"] == {"requiredRoles": ["admin"]}
    admin = await client.get("/admin/report", headers=bearer(signing_key.token(roles=("admin",))))
    assert admin.status_code == 200
    assert_unauthorized(await client.get("/admin/report"))


async def test_without_a_jwks_url_routes_needing_an_identity_are_unauthorized(
    signing_key: SigningKey,
) -> None:
    async with AsyncTestClient(app=build_app()) as client:
        assert_unauthorized(await client.get("/me", headers=bearer(signing_key.token())))
        assert_unauthorized(await client.get("/admin/report"))
