"""What uploaded media is: audio, video, an image or a PDF, told by its own first bytes, and
its address: the vocabulary of the storage port (`audifi_kit.media.storage`), for nft's
masters, proofs and lockers and for any other service's files (vstudio's stems and mixes).

A client's Content-Type and file name are claims; the content is the fact. `sniff_kinds` reads
the magic numbers at the start of a file (the head: `SNIFF_BYTES` are enough for every format
here) and answers every `MediaKind` it may be, the likeliest first, or nothing for anything
else (text, an archive); `sniff` answers the first of them, or None. Most heads are one kind.
Some are two, because the head cannot tell: an MP4 of the brands "isom" or "mp42" may hold
sound alone (an M4A, audio/mp4) or a film (video/mp4), and so may a WebM (video/webm,
audio/webm). The storage keeps such an upload as the first of its kinds the upload
expects, so an "isom" MP4 is audio/mp4 (".m4a") where audio is expected and video/mp4
(".mp4") where video is; brands only audio has ("M4A ", "M4B ") are never video, and
"M4V " or a QuickTime movie ("qt  ") never audio. A Matroska file is told from a WebM by the
DocType of its EBML header when the head holds it (a WebM when it does not).

What a caller expects is one category or several ("audio", "video", "image", "document": a
PDF); content of none of them is refused (`NotAllowedMedia`, 415), and an upload past the size
limit too (`UploadTooLarge`, 413; `MAX_UPLOAD_BYTES` unless the store is given another).

A stored file (`StoredObject`) is addressed as IPFS would: `cid_v1_raw` turns the SHA-256 of
its bytes into the CIDv1 of a raw block (multicodec raw 0x55, multihash sha2-256), written in
multibase base32 ("b" + lower-case RFC 4648 base32 without padding), so the same bytes have
the same CID here and on any IPFS node that adds them with `--cid-version 1 --raw-leaves` as
one block.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Literal

import msgspec

from audifi_kit.errors import PayloadTooLarge, UnsupportedMediaType

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
SNIFF_BYTES = 64  # gather at least this many bytes (or the whole file) before sniffing

Category = Literal["audio", "video", "image", "document"]
CATEGORIES: tuple[Category, ...] = ("audio", "video", "image", "document")


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
WEBM_AUDIO = MediaKind("audio", "audio/webm", ".weba")
MP4 = MediaKind("video", "video/mp4", ".mp4")
MOV = MediaKind("video", "video/quicktime", ".mov")
WEBM = MediaKind("video", "video/webm", ".webm")
MKV = MediaKind("video", "video/x-matroska", ".mkv")
PNG = MediaKind("image", "image/png", ".png")
JPEG = MediaKind("image", "image/jpeg", ".jpg")
GIF = MediaKind("image", "image/gif", ".gif")
WEBP = MediaKind("image", "image/webp", ".webp")
PDF = MediaKind("document", "application/pdf", ".pdf")

# The kinds an ISO BMFF file ("ftyp" box) may be, by its major brand, the likeliest first.
_MP4_BRANDS: dict[bytes, tuple[MediaKind, ...]] = {
    **dict.fromkeys((b"M4A ", b"M4B "), (M4A,)),  # iTunes audio, audiobooks
    **dict.fromkeys((b"isom", b"mp42"), (M4A, MP4)),  # sound alone, or a film
    **dict.fromkeys(
        (b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"avc1", b"dash", b"M4V "), (MP4,)
    ),
    b"qt  ": (MOV,),
}
_EBML = b"\x1a\x45\xdf\xa3"
_EBML_DOC_TYPE = 0x4282
_KINDS = (WAV, MP3, FLAC, OGG, AAC, M4A, WEBM_AUDIO, MP4, MOV, WEBM, MKV, PNG, JPEG, GIF, WEBP, PDF)
_BY_EXTENSION = {k.extension: k for k in _KINDS}


def kind_of_key(key: str) -> MediaKind | None:
    """The kind of a stored object, from the extension its key was given when it was sniffed."""
    dot = key.rfind(".")
    return _BY_EXTENSION.get(key[dot:]) if dot >= 0 else None


def sniff(head: bytes) -> MediaKind | None:
    """The likeliest kind of content that starts with `head` (the first of `sniff_kinds`), or
    None when it is no audio, video, image or document this platform takes."""
    kinds = sniff_kinds(head)
    return kinds[0] if kinds else None


def sniff_kinds(head: bytes) -> tuple[MediaKind, ...]:
    """Every kind the content that starts with `head` may be, the likeliest first: one for
    most, two when the head cannot tell sound alone from a film (an "isom" MP4, a WebM), none
    when it is no audio, video, image or document this platform takes."""
    if head[:4] == b"RIFF" and len(head) >= 12:
        riff = {b"WAVE": WAV, b"WEBP": WEBP}.get(head[8:12])
        return (riff,) if riff is not None else ()
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return (PNG,)
    if head.startswith(b"\xff\xd8\xff"):
        return (JPEG,)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return (GIF,)
    if head.startswith(b"%PDF-"):
        return (PDF,)
    if head.startswith(b"fLaC"):
        return (FLAC,)
    if head.startswith(b"OggS"):
        return (OGG,)
    if head.startswith(b"ID3"):
        return (MP3,)
    if head[4:8] == b"ftyp" and (mp4 := _MP4_BRANDS.get(head[8:12])):
        return mp4
    if head.startswith(_EBML):
        return _matroska(head)
    if _is_adts(head):
        return (AAC,)
    if _is_mpeg_audio_frame(head):
        return (MP3,)
    return ()


def _matroska(head: bytes) -> tuple[MediaKind, ...]:
    doc_type = _ebml_doc_type(head)
    if doc_type is None or doc_type == b"webm":  # a WebM, unless the head says otherwise
        return (WEBM, WEBM_AUDIO)
    if doc_type == b"matroska":
        return (MKV,)
    return ()  # another EBML format


def _ebml_doc_type(head: bytes) -> bytes | None:
    """The DocType of the EBML header `head` starts with, or None when it cannot be read in
    the head (cut short, or not well formed)."""
    header = _vint(head, len(_EBML))
    if header is None:
        return None
    size, pos = header
    end = min(pos + size, len(head))
    while pos < end:
        # An element ID keeps its length marker and has 1 to 4 bytes.
        if head[pos] < 0x10:
            return None
        id_end = pos + 9 - head[pos].bit_length()
        element_id = int.from_bytes(head[pos:id_end], "big")
        data = _vint(head, id_end) if id_end < end else None
        if data is None or data[0] + data[1] > end:
            return None
        size, pos = data
        if element_id == _EBML_DOC_TYPE:
            return head[pos : pos + size].rstrip(b"\x00")
        pos += size
    return None


def _vint(head: bytes, pos: int) -> tuple[int, int] | None:
    """The EBML variable-size integer at `pos` (its length marker taken off) and where it
    ends, or None when it does not fit in the head or is longer than 8 bytes."""
    if pos >= len(head) or head[pos] == 0:
        return None
    length = 9 - head[pos].bit_length()
    if pos + length > len(head):
        return None
    value = int.from_bytes(head[pos : pos + length], "big") & ((1 << (7 * length)) - 1)
    return value, pos + length


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
    """What a client must send for a category or any of several: "audio/*", "video/*",
    "image/*", "application/pdf", "image/* or application/pdf"."""
    if isinstance(categories, str):
        categories = (categories,)
    return " or ".join("application/pdf" if c == "document" else f"{c}/*" for c in categories)


class NotAllowedMedia(UnsupportedMediaType):
    """The content is not the audio, video or image the upload is for: 415, naming every kind
    it may be ("found audio/mp4 or video/mp4" when the head cannot tell)."""

    def __init__(
        self,
        expected: str | tuple[str, ...],
        found: MediaKind | tuple[MediaKind, ...] | None,
    ) -> None:
        kinds = () if found is None else (found,) if isinstance(found, MediaKind) else found
        what = " or ".join(k.mime for k in kinds) or "unrecognised content"
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
