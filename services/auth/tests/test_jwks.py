"""Auth publishes the keys it signs with; every verifier of the platform accepts its tokens."""

from __future__ import annotations

import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from audifi_auth.adapters.signing_keys import SigningKey, SigningKeys
from audifi_auth.app import create_app
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.errors import Unauthorized
from audifi_kit.http import JwksKeys, TokenVerifier
from audifi_kit.settings import Settings
from audifi_kit.testing import drop_databases, free_port, served
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)


def claims(**extra: object) -> dict[str, object]:
    return {"sub": "user-1", "roles": ["fan"], "sid": "s-1", "exp": int(time.time()) + 300} | extra


@pytest.fixture
async def auth_url(
    postgres_url: str, unique_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, SigningKeys, SigningKeys]]:
    """The auth service, serving, configured with a new key in front of an older one."""
    old = SigningKeys([SigningKey(Ed25519PrivateKey.generate())])
    new = SigningKeys([SigningKey(Ed25519PrivateKey.generate())])
    pem = (new.current.pem() + old.current.pem()).decode()
    monkeypatch.setenv("JWT_PRIVATE_KEY", pem)
    prefix = f"t{unique_name}_"
    port = free_port()
    settings = Settings(
        database_url=postgres_url, db_prefix=prefix, var_dir=tmp_path, ports={"auth": port}
    )
    async with served(create_app(settings, InProcessBus()), port=port) as url:
        yield url, new, old
    await drop_databases(postgres_url, prefix)


async def test_tokens_signed_by_the_current_or_a_rotated_out_key_verify_elsewhere(
    auth_url: tuple[str, SigningKeys, SigningKeys],
) -> None:
    url, new, old = auth_url
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/.well-known/jwks.json")
    assert response.status_code == 200
    published = {k["kid"] for k in response.json()["keys"]}
    assert published == {new.current.kid, old.current.kid}

    keys = JwksKeys(f"{url}/.well-known/jwks.json")
    verifier = TokenVerifier(keys)
    try:
        identity = await verifier.verify(new.sign(claims()))
        assert (identity.user_id, identity.session_id) == ("user-1", "s-1")
        assert (await verifier.verify(old.sign(claims(sub="user-2")))).user_id == "user-2"
        stranger = SigningKeys([SigningKey(Ed25519PrivateKey.generate())])
        with pytest.raises(Unauthorized):
            await verifier.verify(stranger.sign(claims()))
    finally:
        await keys.close()


def test_a_generated_key_is_kept_private_and_survives_a_restart(tmp_path: Path) -> None:
    first = SigningKeys.load({}, tmp_path)
    again = SigningKeys.load({}, tmp_path)
    assert first.current.kid == again.current.kid
    kept = next(tmp_path.rglob("*.pem"))
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_a_key_of_another_kind_is_refused() -> None:
    rsa = generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
    with pytest.raises(ValueError, match="Ed25519"):
        SigningKeys.load({"JWT_PRIVATE_KEY": pem}, Path("unused"))
    with pytest.raises(ValueError, match="no PEM"):
        SigningKeys.load({"JWT_PRIVATE_KEY": "not a key"}, Path("unused"))


async def test_the_session_route_answers_with_the_verified_identity_only(
    auth_url: tuple[str, SigningKeys, SigningKeys],
) -> None:
    url, new, _ = auth_url
    token = new.sign(claims(roles=["artist", "fan"]))
    async with httpx.AsyncClient(base_url=url) as client:
        mine = await client.get("/auth/session", headers={"Authorization": f"Bearer {token}"})
        anonymous = await client.get("/auth/session")
    assert mine.status_code == 200
    assert mine.json() == {"userId": "user-1", "roles": ["artist", "fan"], "sessionId": "s-1"}
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "UNAUTHORIZED"
