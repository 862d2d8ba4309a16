"""What nft's application tests share: a registered master and an IPO's terms."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from audifi_nft.application import NftApplication
from audifi_nft.domain.master import Master, MediaRef
from audifi_nft.domain.media import PNG, WAV, MediaKind, StoredObject

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ARTIST = str(uuid.UUID(int=1))
RECEIVER = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def media(content: bytes, kind: MediaKind) -> MediaRef:
    return StoredObject.of("masters", hashlib.sha256(content).digest(), len(content), kind)


def register(app: NftApplication, isrc: str | None = "US-AUD-26-00001", **kwargs: Any) -> Master:
    return app.register_master(
        artist_id=kwargs.pop("artist_id", ARTIST),
        registered_by=kwargs.pop("registered_by", ARTIST),
        title=kwargs.pop("title", "First Light"),
        isrc_code=isrc,
        audio=kwargs.pop("audio", media(b"RIFF-audio" + str(isrc).encode(), WAV)),
        cover=kwargs.pop("cover", media(b"\x89PNG-cover", PNG)),
        metadata=kwargs.pop("metadata", {"genre": "ambient"}),
    )


def terms(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "cap": 100,
        "price_cents": 500,
        "currency": "usd",
        "opens_at": T0,
        "closes_at": T0 + timedelta(days=7),
        "per_account_max": 10,
        "royalty_receiver": RECEIVER,
        "royalty_bps": 500,
        "now": T0,
    }
    base.update(overrides)
    return base
