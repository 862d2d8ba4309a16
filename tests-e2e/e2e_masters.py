"""What the end-to-end stories share about masters: a real WAV and PNG, and a master
registered through the gateway with its IPO opened (on chain first)."""

from __future__ import annotations

import io
import struct
import wave
import zlib
from datetime import UTC, datetime, timedelta

import httpx
from platform_processes import Platform

RECEIVER = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


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


def _register_and_open(platform: Platform, artist: dict, isrc: str, **terms) -> tuple[dict, dict]:
    """A master registered with a real WAV and cover, and its IPO opened (on chain first)."""
    gw = platform.gateway
    registered = httpx.post(
        f"{gw}/masters",
        data={"title": "First Light", "isrc": isrc},
        files={"audio": ("a.wav", _wav(), "audio/wav"), "cover": ("c.png", _png(), "image/png")},
        headers=artist,
        timeout=30,
    )
    assert registered.status_code == 201, registered.text
    now = datetime.now(UTC)
    opened = httpx.post(
        f"{gw}/masters/{registered.json()['id']}/ipo",
        json={
            "cap": 1000,
            "priceCents": 1250,
            "currency": "USD",
            "opensAt": (now - timedelta(minutes=1)).isoformat(),
            "closesAt": (now + timedelta(days=7)).isoformat(),
            "perAccountMax": 10,
            "royaltyReceiver": RECEIVER,
            "royaltyBps": 500,
        }
        | terms,
        headers=artist,
        timeout=30,
    )
    assert opened.status_code == 201, opened.text
    return registered.json(), opened.json()
