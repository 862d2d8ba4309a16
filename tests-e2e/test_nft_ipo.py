"""An IPO end to end, through the gateway only: an artist registers a master with a real WAV
and cover, opens its IPO (opened on MasterShares on the embedded chain), a fan buys shares,
pays the order on the local Stripe's pay page, and the shares are allocated to the fan."""

from __future__ import annotations

import io
import struct
import uuid
import wave
import zlib
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from audifi_auth.adapters.signing_keys import SigningKeys
from audifi_kit.testing import eventually_sync
from platform_processes import Platform, token

ARTIST, FAN, ADMIN = (str(uuid.uuid4()) for _ in range(3))
RECEIVER = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


@pytest.fixture(scope="module")
def as_(signing_keys: SigningKeys):
    def headers(user: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(signing_keys, sub=user, roles=list(roles))}"}

    return headers


def _wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x01" * 800)
    return out.getvalue()


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x80\x00"))
        + chunk(b"IEND", b"")
    )


def test_a_fan_buys_ipo_shares_by_card_and_they_are_allocated(platform: Platform, as_) -> None:
    gw, artist, fan = platform.gateway, as_(ARTIST, "artist"), as_(FAN, "fan")
    registered = httpx.post(
        f"{gw}/masters",
        data={"title": "First Light", "isrc": "US-AUD-26-00077"},
        files={
            "audio": ("first-light.wav", _wav(), "audio/wav"),
            "cover": ("cover.png", _png(), "image/png"),
        },
        headers=artist,
        timeout=30,
    )
    assert registered.status_code == 201, registered.text
    master = registered.json()
    assert master["ipfsHash"].startswith("bafkrei")

    now = datetime.now(UTC)
    opened = httpx.post(
        f"{gw}/masters/{master['id']}/ipo",
        json={
            "cap": 100,
            "priceCents": 1250,
            "currency": "USD",
            "opensAt": (now - timedelta(minutes=1)).isoformat(),
            "closesAt": (now + timedelta(days=7)).isoformat(),
            "perAccountMax": 10,
            "royaltyReceiver": RECEIVER,
            "royaltyBps": 500,
        },
        headers=artist,
        timeout=30,
    )
    assert opened.status_code == 201, opened.text
    ipo = opened.json()
    assert ipo["status"] == "open"

    bought = httpx.post(f"{gw}/ipos/{ipo['id']}/purchase", json={"quantity": 3}, headers=fan)
    assert bought.status_code == 201, bought.text
    purchase = bought.json()
    assert (purchase["amountCents"], purchase["status"]) == (3750, "pending")

    def checkout() -> dict | None:  # payment opens the order once it heard nft's request
        answer = httpx.post(
            f"{gw}/payments/checkout", json={"orderId": purchase["id"]}, headers=fan
        )
        return answer.json() if answer.status_code == 201 else None

    session = eventually_sync(checkout, within=30, what="the order opened at payment")
    assert (
        httpx.post(session["url"], data={"card_number": "4242 4242 4242 4242"}).status_code == 303
    )

    def paid() -> dict | None:
        answer = httpx.get(f"{gw}/ipos/{ipo['id']}/purchases/{purchase['id']}", headers=fan)
        return answer.json() if answer.json().get("status") == "paid" else None

    done = eventually_sync(paid, within=30, what="the shares allocated")
    assert done["quantity"] == 3 and done["checkout"] is None
    shown = httpx.get(f"{gw}/masters/{master['id']}/ipo", headers=fan).json()
    assert (shown["allocated"], shown["available"]) == (3, 97)
