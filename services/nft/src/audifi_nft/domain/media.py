"""What uploaded media is: audio, an image or a PDF, told by its own first bytes, and its
address.

A client's Content-Type and file name are claims; the content is the fact. `sniff` reads the
magic numbers at the start of a file (the head: `SNIFF_BYTES` are enough for every format
here) and answers the `MediaKind` it is, or None for anything else (text, an archive). A
master's files are audio and an image; a milestone's proof an image or a PDF ("document").

A stored file is addressed as IPFS would: `cid_v1_raw` turns the SHA-256 of its bytes into
the CIDv1 of a raw block (multicodec raw 0x55, multihash sha2-256), written in multibase
base32 ("b" + lower-case RFC 4648 base32 without padding), so the same bytes have the same
CID here and on any IPFS node that adds them with `--cid-version 1 --raw-leaves` as one block.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec
from audifi_kit.errors import PayloadTooLarge, UnsupportedMediaType
from eventsourcing.domain import Aggregate, event

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
SNIFF_BYTES = 64  # gather at least this many bytes (or the whole file) before sniffing

Category = Literal["audio", "image", "document"]
CATEGORIES: tuple[Category, ...] = ("audio", "image", "document")


@dataclass(frozen=True, slots=True)
class MediaKind:
    category: Category
    mime: str
    extension: str  # with its dot: ".wav"


WAV = MediaKind("audio", "audio/wav", ".wav")
MP3 = MediaKind("audio", "audio/mpeg", ".mp3")
FLAC = MediaKind("audio", "audio/flac", ".flac")
OGG = MediaKind("audio", "audio/ogg", ".ogg")
AAC = MediaKind("audio", "audio/aac", ".aac")
M4A = MediaKind("audio", "audio/mp4", ".m4a")
PNG = MediaKind("image", "image/png", ".png")
JPEG = MediaKind("image", "image/jpeg", ".jpg")
GIF = MediaKind("image", "image/gif", ".gif")
WEBP = MediaKind("image", "image/webp", ".webp")
PDF = MediaKind("document", "application/pdf", ".pdf")

_MP4_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"mp42", b"isom"})
_BY_EXTENSION = {k.extension: k for k in (WAV, MP3, FLAC, OGG, AAC, M4A, PNG, JPEG, GIF, WEBP, PDF)}


def kind_of_key(key: str) -> MediaKind | None:
    """The kind of a stored object, from the extension its key was given when it was sniffed."""
    dot = key.rfind(".")
    return _BY_EXTENSION.get(key[dot:]) if dot >= 0 else None


def sniff(head: bytes) -> MediaKind | None:
    """The kind of content that starts with `head`, or None when it is no audio, image or
    document this platform takes."""
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WAVE": WAV, b"WEBP": WEBP}.get(head[8:12])
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"fLaC"):
        return FLAC
    if head.startswith(b"OggS"):
        return OGG
    if head.startswith(b"ID3"):
        return MP3
    if head[4:8] == b"ftyp" and head[8:12] in _MP4_AUDIO_BRANDS:
        return M4A
    if _is_adts(head):
        return AAC
    if _is_mpeg_audio_frame(head):
        return MP3
    return None


def _is_adts(head: bytes) -> bool:
    # 12 bits of sync (0xFFF), then the MPEG version bit (either), layer 00, protection_absent
    # (either): 0xFFF0, 0xFFF1, 0xFFF8, 0xFFF9.
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0


def _is_mpeg_audio_frame(head: bytes) -> bool:
    # 11 bits of frame sync (0xFFE), a version that is not the reserved 01, layer III (01) or
    # II (10): not the reserved 00, and not layer I (11), which nobody ships and whose headers
    # 0xFFFE/0xFFFF are a UTF-16 byte-order mark or padding; when the third byte is there,
    # neither the "bad" bitrate index 1111 nor the reserved sample rate 11.
    if len(head) < 2 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0b11, (head[1] >> 1) & 0b11
    if version == 0b01 or layer in (0b00, 0b11):
        return False
    return len(head) < 3 or (head[2] >> 4 != 0b1111 and (head[2] >> 2) & 0b11 != 0b11)


_CID_V1 = 0x01
_RAW = 0x55
_SHA2_256 = 0x12


def cid_v1_raw(sha256_digest: bytes) -> str:
    """The CIDv1 (raw codec, sha2-256 multihash, base32 multibase) of content whose SHA-256
    digest is `sha256_digest`: "bafkrei..."."""
    if len(sha256_digest) != 32:
        raise ValueError(f"a SHA-256 digest has 32 bytes, not {len(sha256_digest)}")
    binary = bytes((_CID_V1, _RAW, _SHA2_256, len(sha256_digest))) + sha256_digest
    return "b" + base64.b32encode(binary).decode("ascii").lower().rstrip("=")


def expected_media(categories: str | tuple[str, ...]) -> str:
    """What a client must send for a category or any of several: "audio/*", "image/*",
    "application/pdf", "image/* or application/pdf"."""
    if isinstance(categories, str):
        categories = (categories,)
    return " or ".join("application/pdf" if c == "document" else f"{c}/*" for c in categories)


class NotAllowedMedia(UnsupportedMediaType):
    """The content is not the audio (or image) the upload is for: 415."""

    def __init__(self, expected: str | tuple[str, ...], found: MediaKind | None) -> None:
        what = found.mime if found is not None else "unrecognised content"
        super().__init__(
            f"Expected {expected_media(expected)} content, found {what}",
            details={"expected": expected_media(expected), "found": what},
        )


class UploadTooLarge(PayloadTooLarge):
    """The upload went past the limit: 413, naming the limit."""

    def __init__(self, limit: int) -> None:
        size = f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit} bytes"
        super().__init__(
            f"The upload is larger than the limit of {size}", details={"maxBytes": limit}
        )


class StoredObject(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """A file as the media storage kept it: content-addressed, with its SHA-256 (hex) and its
    IPFS CIDv1 (raw), and the type its content was sniffed as."""

    key: str
    size: int
    sha256: str
    cid: str
    mime: str
    category: str

    @classmethod
    def of(cls, key_prefix: str, digest: bytes, size: int, kind: MediaKind) -> StoredObject:
        """The object kept under `key_prefix` for content of this SHA-256 `digest`."""
        return cls(
            key=f"{key_prefix}/{digest.hex()}{kind.extension}",
            size=size,
            sha256=digest.hex(),
            cid=cid_v1_raw(digest),
            mime=kind.mime,
            category=kind.category,
        )


STAGED_NAMESPACE = uuid.UUID("e4a7c2b9-1d3f-4c8e-9a6b-5f0d2e7c1b38")


def staged_upload_id(upload_key: str) -> uuid.UUID:
    return uuid.uuid5(STAGED_NAMESPACE, upload_key)


class StagedUpload(Aggregate):
    """A pre-signed upload handed to one user: only they may register a master with it."""

    @event("Issued")
    def __init__(self, *, upload_key: str, owner_id: str, expect: str, expires_at: datetime):
        self.upload_key = upload_key
        self.owner_id = owner_id
        self.expect = expect
        self.expires_at = expires_at
        self.adopted = False

    @classmethod
    def issue(
        cls, *, upload_key: str, owner_id: str, expect: str, expires_at: datetime
    ) -> StagedUpload:
        return cls._create(
            cls.Issued,
            id=staged_upload_id(upload_key),
            upload_key=upload_key,
            owner_id=owner_id,
            expect=expect,
            expires_at=expires_at,
        )

    @event("Adopted")
    def adopt(self, master_id: str) -> None:
        self.adopted = True
