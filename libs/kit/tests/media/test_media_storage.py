"""Media, for any service that keeps files: the content is told by its own bytes, kept once
per content, read back whole (moved here from nft's tests with the code, `audifi_kit.media`).

The storage tests run against both the local-file adapter (on tmp_path) and its in-memory twin.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import struct
import wave
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from audifi_kit.errors import NotFound
from audifi_kit.media.kinds import (
    MAX_UPLOAD_BYTES,
    NotAllowedMedia,
    StoredObject,
    UploadTooLarge,
    cid_v1_raw,
    expected_media,
    sniff,
    sniff_kinds,
)
from audifi_kit.media.storage import InMemoryStorage, LocalStorage, MediaStorage

# --- real minimal files -------------------------------------------------------------------


def wav(frames: int = 2000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(range(256)) * (frames * 2 // 256) + bytes(frames * 2 % 256))
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png() -> bytes:
    """A 1x1 opaque red pixel: signature, IHDR, IDAT, IEND, each with its CRC."""
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    idat = zlib.compress(b"\x00\xff\x00\x00")  # filter byte 0, then R G B
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(64)
GIF87 = b"GIF87a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"  # noqa: E501
GIF89 = b"GIF89a" + GIF87[6:]
# A 1x1 lossless WebP (the one Modernizr probes browsers with).
WEBP = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
# Block sizes, frame sizes, then 44.1 kHz / stereo / 16 bits / 0 samples, then the MD5.
STREAMINFO = (
    struct.pack(">HH", 4096, 4096) + bytes(6) + bytes.fromhex("0ac442f000000000") + bytes(16)
)
FLAC = b"fLaC" + b"\x80" + len(STREAMINFO).to_bytes(3, "big") + STREAMINFO
OGG = (
    b"OggS\x00\x02"
    + bytes(8)  # granule position
    + struct.pack("<III", 0x1234, 0, 0)  # serial, page sequence, checksum
    + b"\x01\x1e"  # one segment of 30 bytes: the Vorbis identification header
    + b"\x01vorbis"
    + bytes(23)
)
MPEG1_L3_FRAME = b"\xff\xfb\x90\x64" + bytes(413)  # 128 kbit/s, 44.1 kHz: 417 bytes
MPEG2_L3_FRAME = b"\xff\xf3\x90\x64" + bytes(200)
MPEG25_L3_FRAME = b"\xff\xe3\x90\x64" + bytes(200)
MPEG1_L2_FRAME = b"\xff\xfd\x90\x64" + bytes(200)
ID3_MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + MPEG1_L3_FRAME
ADTS = b"\xff\xf1\x50\x80\x02\x1f\xfc" + bytes(9)  # AAC LC, 44.1 kHz, stereo, no CRC
ADTS_MPEG2 = b"\xff\xf9" + ADTS[2:]


def ftyp(brand: bytes) -> bytes:
    box = b"ftyp" + brand + bytes(4) + brand + b"mp42isom"
    return struct.pack(">I", 4 + len(box)) + box + struct.pack(">I", 8) + b"mdat"


# A QuickTime movie: its ftyp box ("qt  ", minor version 2005-03), then a wide and an mdat atom.
MOV = (
    struct.pack(">I", 20)
    + b"ftypqt  \x20\x05\x03\x00qt  "
    + struct.pack(">I", 8)
    + b"wide"
    + struct.pack(">I", 8)
    + b"mdat"
)


def _ebml(element_id: bytes, data: bytes) -> bytes:
    return element_id + bytes([0x80 | len(data)]) + data  # a size of one byte: < 127


def ebml(doc_type: bytes, *, void: int = 0) -> bytes:
    """An EBML header as muxers write it (versions, DocType, DocType versions), optionally
    after a Void element of `void` bytes, then the start of a Segment of unknown size."""
    header = (
        (_ebml(b"\xec", bytes(void)) if void else b"")
        + _ebml(b"\x42\x86", b"\x01")  # EBMLVersion
        + _ebml(b"\x42\xf7", b"\x01")  # EBMLReadVersion
        + _ebml(b"\x42\xf2", b"\x04")  # EBMLMaxIDLength
        + _ebml(b"\x42\xf3", b"\x08")  # EBMLMaxSizeLength
        + _ebml(b"\x42\x82", doc_type)  # DocType
        + _ebml(b"\x42\x87", b"\x04")  # DocTypeVersion
        + _ebml(b"\x42\x85", b"\x02")  # DocTypeReadVersion
    )
    segment = b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff" + bytes(64)
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(header)]) + header + segment


WEBM = ebml(b"webm")
MKV = ebml(b"matroska")
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + bytes(32)
TEXT = b"These are the lyrics, not the song.\n" * 4


# --- sniffing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "category", "mime", "extension"),
    [
        (wav(), "audio", "audio/wav", ".wav"),
        (ID3_MP3, "audio", "audio/mpeg", ".mp3"),
        (MPEG1_L3_FRAME, "audio", "audio/mpeg", ".mp3"),
        (MPEG2_L3_FRAME, "audio", "audio/mpeg", ".mp3"),
        (MPEG25_L3_FRAME, "audio", "audio/mpeg", ".mp3"),
        (MPEG1_L2_FRAME, "audio", "audio/mpeg", ".mp3"),
        (FLAC, "audio", "audio/flac", ".flac"),
        (OGG, "audio", "audio/ogg", ".ogg"),
        (ADTS, "audio", "audio/aac", ".aac"),
        (ADTS_MPEG2, "audio", "audio/aac", ".aac"),
        (ftyp(b"M4A "), "audio", "audio/mp4", ".m4a"),
        (ftyp(b"M4B "), "audio", "audio/mp4", ".m4a"),
        (ftyp(b"mp42"), "audio", "audio/mp4", ".m4a"),
        (ftyp(b"isom"), "audio", "audio/mp4", ".m4a"),
        (ftyp(b"iso2"), "video", "video/mp4", ".mp4"),
        (ftyp(b"iso4"), "video", "video/mp4", ".mp4"),
        (ftyp(b"iso5"), "video", "video/mp4", ".mp4"),
        (ftyp(b"iso6"), "video", "video/mp4", ".mp4"),
        (ftyp(b"mp41"), "video", "video/mp4", ".mp4"),
        (ftyp(b"avc1"), "video", "video/mp4", ".mp4"),
        (ftyp(b"dash"), "video", "video/mp4", ".mp4"),
        (ftyp(b"M4V "), "video", "video/mp4", ".mp4"),
        (MOV, "video", "video/quicktime", ".mov"),
        (WEBM, "video", "video/webm", ".webm"),
        (MKV, "video", "video/x-matroska", ".mkv"),
        (png(), "image", "image/png", ".png"),
        (JPEG, "image", "image/jpeg", ".jpg"),
        (GIF87, "image", "image/gif", ".gif"),
        (GIF89, "image", "image/gif", ".gif"),
        (WEBP, "image", "image/webp", ".webp"),
        (PDF, "document", "application/pdf", ".pdf"),
    ],
)
def test_each_format_is_told_by_its_first_bytes(
    content: bytes, category: str, mime: str, extension: str
) -> None:
    kind = sniff(content[:64])
    assert kind is not None
    assert (kind.category, kind.mime, kind.extension) == (category, mime, extension)


@pytest.mark.parametrize(
    "content",
    [
        TEXT,
        b"",
        b"PK\x03\x04\x14\x00\x00\x00" + bytes(56),  # a zip
        b"RIFF\x24\x00\x00\x00AVI LIST" + bytes(52),  # RIFF, but neither WAVE nor WEBP
        ftyp(b"heic"),  # an ISO BMFF file, but a HEIF image
        ebml(b"x-other"),  # an EBML file, but neither WebM nor Matroska
        b"\xff\xfe" + "a UTF-16 text".encode("utf-16-le"),  # sync bits, not a frame
        b"\xff\xfb\xf0\x64" + bytes(60),  # an MPEG header with the forbidden bitrate index
    ],
)
def test_anything_else_is_not_recognised(content: bytes) -> None:
    assert sniff(content[:64]) is None
    assert sniff_kinds(content[:64]) == ()


def mimes(content: bytes) -> list[str]:
    return [kind.mime for kind in sniff_kinds(content[:64])]


@pytest.mark.parametrize("brand", [b"isom", b"mp42"])
def test_an_mp4_of_a_general_brand_may_be_sound_alone_or_a_film(brand: bytes) -> None:
    assert mimes(ftyp(brand)) == ["audio/mp4", "video/mp4"]  # audio first, as it always was


def test_a_webm_may_be_sound_alone_or_a_film() -> None:
    assert mimes(WEBM) == ["video/webm", "audio/webm"]
    assert [kind.extension for kind in sniff_kinds(WEBM[:64])] == [".webm", ".weba"]


@pytest.mark.parametrize(
    ("content", "only"),
    [
        (ftyp(b"M4A "), "audio/mp4"),
        (ftyp(b"M4B "), "audio/mp4"),
        (ftyp(b"M4V "), "video/mp4"),
        (ftyp(b"avc1"), "video/mp4"),
        (MOV, "video/quicktime"),
        (MKV, "video/x-matroska"),
        (wav(), "audio/wav"),
        (png(), "image/png"),
    ],
)
def test_other_heads_are_one_kind_only(content: bytes, only: str) -> None:
    assert mimes(content) == [only]


def test_a_matroska_doc_type_past_the_head_is_taken_for_webm() -> None:
    late = ebml(b"matroska", void=40)
    assert late.index(b"matroska") > 64
    assert mimes(late) == ["video/webm", "audio/webm"]
    assert mimes(ebml(b"matroska", void=20)) == ["video/x-matroska"]  # still within it
    assert mimes(b"\x1a\x45\xdf\xa3") == ["video/webm", "audio/webm"]  # the magic alone


# --- content ids -------------------------------------------------------------------------


def test_the_cid_of_the_empty_content_is_the_ipfs_one() -> None:
    digest = hashlib.sha256(b"").digest()
    assert cid_v1_raw(digest) == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_the_cid_of_hello_world_is_the_ipfs_one() -> None:
    # `ipfs add --cid-version 1 --raw-leaves` of "hello world" (no newline).
    digest = hashlib.sha256(b"hello world").digest()
    assert cid_v1_raw(digest) == "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"


def test_a_cid_is_only_made_from_a_sha256_digest() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        cid_v1_raw(b"\x00" * 20)


# --- refusals as the client reads them ---------------------------------------------------


def test_a_refused_kind_names_what_was_expected_and_what_was_found() -> None:
    wrong = NotAllowedMedia("audio", sniff(png()[:64]))
    assert wrong.status_code == 415
    assert wrong.message == "Expected audio/* content, found image/png"
    assert wrong.details == {"expected": "audio/*", "found": "image/png"}
    unknown = NotAllowedMedia("image", None)
    assert unknown.message == "Expected image/* content, found unrecognised content"
    either = NotAllowedMedia("image", sniff_kinds(ftyp(b"isom")))
    assert either.message == "Expected image/* content, found audio/mp4 or video/mp4"
    assert NotAllowedMedia("video", ()).details["found"] == "unrecognised content"


def test_video_is_expected_as_video_anything() -> None:
    assert expected_media("video") == "video/*"
    assert expected_media(("audio", "video", "image")) == "audio/* or video/* or image/*"


def test_too_large_names_the_limit() -> None:
    refused = UploadTooLarge(MAX_UPLOAD_BYTES)
    assert refused.status_code == 413
    assert MAX_UPLOAD_BYTES == 200 * 1024 * 1024
    assert "200 MiB" in refused.message
    assert refused.details == {"maxBytes": MAX_UPLOAD_BYTES}


# --- storage, against both adapters ------------------------------------------------------

MakeStorage = Callable[..., MediaStorage]


@pytest.fixture(params=["local", "memory"])
def make_storage(request: pytest.FixtureRequest, tmp_path: Path) -> MakeStorage:
    def make(max_bytes: int = MAX_UPLOAD_BYTES) -> MediaStorage:
        if request.param == "local":
            return LocalStorage(tmp_path / "media", max_bytes=max_bytes, chunk_bytes=4096)
        return InMemoryStorage(max_bytes=max_bytes, chunk_bytes=4096)

    return make


def stored_files(storage: MediaStorage) -> list[str]:
    """Every file the storage holds, temporary ones included."""
    if isinstance(storage, LocalStorage):
        root = storage.root
        if not root.exists():
            return []
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert isinstance(storage, InMemoryStorage)
    return storage.keys()


class Upload:
    """A client's body, sent in `size`-byte chunks; counts what the storage pulled."""

    def __init__(self, content: bytes, size: int = 1000) -> None:
        self.content, self.size, self.pulled = content, size, 0

    async def chunks(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.content), self.size):
            self.pulled += 1
            yield self.content[start : start + self.size]


async def read_back(storage: MediaStorage, key: str) -> list[bytes]:
    return [chunk async for chunk in storage.open(key)]


async def test_an_audio_master_is_stored_by_its_content_and_read_back_whole(
    make_storage: MakeStorage,
) -> None:
    storage = make_storage()
    content = wav(frames=20_000)  # ~40 kB, sent in 7-byte chunks: the head spans many
    digest = hashlib.sha256(content).digest()

    stored = await storage.put("masters/m-1", Upload(content, 7).chunks(), expect="audio")

    assert stored == StoredObject(
        key=f"masters/m-1/{digest.hex()}.wav",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        cid=cid_v1_raw(digest),
        mime="audio/wav",
        category="audio",
    )
    assert stored.cid.startswith("bafkrei")
    assert await storage.exists(stored.key)
    chunks = await read_back(storage, stored.key)
    assert len(chunks) > 1  # streamed, not one blob
    assert b"".join(chunks) == content
    assert stored_files(storage) == [stored.key]


async def test_a_cover_image_is_stored_as_an_image(make_storage: MakeStorage) -> None:
    storage = make_storage()
    stored = await storage.put("masters/m-1", Upload(png()).chunks(), expect="image")
    assert (stored.mime, stored.category) == ("image/png", "image")
    assert stored.key.endswith(".png")
    assert b"".join(await read_back(storage, stored.key)) == png()


async def test_the_same_content_twice_is_kept_once(make_storage: MakeStorage) -> None:
    storage = make_storage()
    content = wav()
    first = await storage.put("masters/m-1", Upload(content, 100).chunks(), expect="audio")
    second = await storage.put("masters/m-1", Upload(content, 333).chunks(), expect="audio")
    assert first == second
    assert stored_files(storage) == [first.key]
    assert b"".join(await read_back(storage, first.key)) == content


async def test_a_file_shorter_than_the_sniffed_head_is_judged_whole(
    make_storage: MakeStorage,
) -> None:
    storage = make_storage()
    header_only = wav(frames=0)
    assert len(header_only) < 64
    stored = await storage.put("masters/m-2", Upload(header_only, 5).chunks(), expect="audio")
    assert stored.size == len(header_only)
    assert b"".join(await read_back(storage, stored.key)) == header_only


async def test_an_image_is_refused_where_audio_is_expected(make_storage: MakeStorage) -> None:
    storage = make_storage()
    with pytest.raises(NotAllowedMedia) as refused:
        await storage.put("masters/m-1", Upload(png()).chunks(), expect="audio")
    assert refused.value.status_code == 415
    assert refused.value.details == {"expected": "audio/*", "found": "image/png"}
    assert stored_files(storage) == []


async def test_audio_is_refused_where_a_cover_image_is_expected(make_storage: MakeStorage) -> None:
    storage = make_storage()
    with pytest.raises(NotAllowedMedia, match=r"Expected image/\* content, found audio/wav"):
        await storage.put("masters/m-1", Upload(wav()).chunks(), expect="image")
    assert stored_files(storage) == []


@pytest.mark.parametrize("content", [TEXT, b""], ids=["text", "empty"])
@pytest.mark.parametrize("expect", ["audio", "video", "image", "document"])
async def test_unrecognised_content_is_refused(
    make_storage: MakeStorage, content: bytes, expect: str
) -> None:
    storage = make_storage()
    with pytest.raises(NotAllowedMedia, match="found unrecognised content"):
        await storage.put("masters/m-1", Upload(content, 10).chunks(), expect=expect)
    assert stored_files(storage) == []


async def test_a_proof_may_be_an_image_or_a_pdf_and_nothing_else(
    make_storage: MakeStorage,
) -> None:
    storage = make_storage()
    proof = ("image", "document")
    pdf = await storage.put("proofs/p-1", Upload(PDF).chunks(), expect=proof)
    image = await storage.put("proofs/p-1", Upload(png()).chunks(), expect=proof)
    assert (pdf.mime, pdf.key[-4:], image.mime) == ("application/pdf", ".pdf", "image/png")
    with pytest.raises(
        NotAllowedMedia, match=r"Expected image/\* or application/pdf content, found audio/wav"
    ):
        await storage.put("proofs/p-1", Upload(wav()).chunks(), expect=proof)
    with pytest.raises(NotAllowedMedia, match="found application/pdf"):
        await storage.put("masters/m-1", Upload(PDF).chunks(), expect="audio")
    assert sorted(stored_files(storage)) == sorted([pdf.key, image.key])


@pytest.mark.parametrize("brand", [b"isom", b"mp42"])
async def test_an_ambiguous_mp4_is_audio_where_audio_is_expected_and_video_where_video_is(
    make_storage: MakeStorage, brand: bytes
) -> None:
    storage = make_storage()
    content = ftyp(brand) + bytes(5000)
    digest = hashlib.sha256(content).hexdigest()

    audio = await storage.put("items/i-1", Upload(content, 7).chunks(), expect="audio")
    video = await storage.put("items/i-1", Upload(content, 7).chunks(), expect="video")

    assert (audio.key, audio.mime, audio.category) == (
        f"items/i-1/{digest}.m4a",
        "audio/mp4",
        "audio",
    )
    assert (video.key, video.mime, video.category) == (
        f"items/i-1/{digest}.mp4",
        "video/mp4",
        "video",
    )
    assert (audio.sha256, audio.cid, audio.size) == (video.sha256, video.cid, video.size)
    assert sorted(stored_files(storage)) == sorted([audio.key, video.key])
    assert b"".join(await read_back(storage, video.key)) == content


async def test_a_webm_is_audio_where_audio_is_expected_and_video_where_video_is(
    make_storage: MakeStorage,
) -> None:
    storage = make_storage()
    audio = await storage.put("items/i-1", Upload(WEBM, 5).chunks(), expect="audio")
    video = await storage.put("items/i-1", Upload(WEBM, 5).chunks(), expect="video")
    assert (audio.mime, audio.key[-5:]) == ("audio/webm", ".weba")
    assert (video.mime, video.key[-5:]) == ("video/webm", ".webm")


@pytest.mark.parametrize(
    ("content", "mime", "extension"),
    [
        (ftyp(b"avc1"), "video/mp4", ".mp4"),
        (ftyp(b"M4V "), "video/mp4", ".mp4"),
        (MOV, "video/quicktime", ".mov"),
        (MKV, "video/x-matroska", ".mkv"),
    ],
)
async def test_a_video_is_stored_as_a_video(
    make_storage: MakeStorage, content: bytes, mime: str, extension: str
) -> None:
    storage = make_storage()
    stored = await storage.put("items/i-1", Upload(content, 3).chunks(), expect="video")
    assert (stored.mime, stored.category) == (mime, "video")
    assert stored.key.endswith(extension)
    assert b"".join(await read_back(storage, stored.key)) == content


async def test_a_video_is_refused_where_an_image_is_expected(make_storage: MakeStorage) -> None:
    storage = make_storage()
    with pytest.raises(NotAllowedMedia, match=r"Expected image/\* content, found video/mp4$"):
        await storage.put("items/i-1", Upload(ftyp(b"avc1")).chunks(), expect="image")
    with pytest.raises(
        NotAllowedMedia, match=r"Expected image/\* content, found audio/mp4 or video/mp4$"
    ) as refused:
        await storage.put("items/i-1", Upload(ftyp(b"isom")).chunks(), expect="image")
    assert refused.value.status_code == 415
    assert refused.value.details == {"expected": "image/*", "found": "audio/mp4 or video/mp4"}
    with pytest.raises(NotAllowedMedia, match=r"found video/webm or audio/webm$"):
        await storage.put("items/i-1", Upload(WEBM).chunks(), expect="image")
    assert stored_files(storage) == []


async def test_an_image_is_refused_where_video_is_expected(make_storage: MakeStorage) -> None:
    storage = make_storage()
    with pytest.raises(NotAllowedMedia) as refused:
        await storage.put("items/i-1", Upload(png()).chunks(), expect="video")
    assert refused.value.status_code == 415
    assert refused.value.message == "Expected video/* content, found image/png"
    assert stored_files(storage) == []


@pytest.mark.parametrize("brand", [b"M4A ", b"M4B "])
async def test_audio_only_mp4_brands_are_never_video(
    make_storage: MakeStorage, brand: bytes
) -> None:
    storage = make_storage()
    with pytest.raises(NotAllowedMedia, match=r"Expected video/\* content, found audio/mp4$"):
        await storage.put("items/i-1", Upload(ftyp(brand)).chunks(), expect="video")
    with pytest.raises(NotAllowedMedia, match=r"found audio/wav$"):
        await storage.put("items/i-1", Upload(wav()).chunks(), expect="video")
    assert stored_files(storage) == []


@pytest.mark.parametrize(
    ("content", "found"),
    [(ftyp(b"M4V "), "video/mp4"), (MOV, "video/quicktime"), (MKV, "video/x-matroska")],
)
async def test_video_only_kinds_are_never_audio(
    make_storage: MakeStorage, content: bytes, found: str
) -> None:
    storage = make_storage()
    with pytest.raises(NotAllowedMedia, match=rf"Expected audio/\* content, found {found}$"):
        await storage.put("masters/m-1", Upload(content).chunks(), expect="audio")
    assert stored_files(storage) == []


async def test_a_locker_item_may_be_audio_video_or_an_image(make_storage: MakeStorage) -> None:
    storage = make_storage()
    item = ("audio", "video", "image")
    kinds = [
        ((s := await storage.put("items/i-1", Upload(c).chunks(), expect=item)).mime, s.category)
        for c in (wav(), MOV, png(), ftyp(b"M4V "), ftyp(b"isom"), WEBM)
    ]
    assert kinds == [
        ("audio/wav", "audio"),
        ("video/quicktime", "video"),
        ("image/png", "image"),
        ("video/mp4", "video"),
        ("audio/mp4", "audio"),  # where either is expected, the likelier kind first
        ("video/webm", "video"),
    ]
    with pytest.raises(
        NotAllowedMedia,
        match=r"Expected audio/\* or video/\* or image/\* content, found application/pdf",
    ):
        await storage.put("items/i-1", Upload(PDF).chunks(), expect=item)


async def test_the_kind_is_refused_without_reading_the_rest(make_storage: MakeStorage) -> None:
    storage = make_storage()
    upload = Upload(PDF + bytes(100_000), 16)
    with pytest.raises(NotAllowedMedia):
        await storage.put("masters/m-1", upload.chunks(), expect="audio")
    assert upload.pulled == 4  # 64 bytes: enough to know
    assert stored_files(storage) == []


async def test_an_upload_over_the_limit_is_refused_as_soon_as_it_passes_it(
    make_storage: MakeStorage,
) -> None:
    storage = make_storage(max_bytes=10_000)
    upload = Upload(wav(frames=50_000), 1000)  # ~100 kB
    with pytest.raises(UploadTooLarge) as refused:
        await storage.put("masters/m-1", upload.chunks(), expect="audio")
    assert refused.value.status_code == 413
    assert refused.value.details == {"maxBytes": 10_000}
    assert "10000 bytes" in refused.value.message
    assert upload.pulled == 11  # the chunk that went past 10,000 bytes, and no further
    assert stored_files(storage) == []


async def test_an_upload_of_exactly_the_limit_is_taken(make_storage: MakeStorage) -> None:
    content = wav(frames=1000)
    storage = make_storage(max_bytes=len(content))
    stored = await storage.put("masters/m-1", Upload(content).chunks(), expect="audio")
    assert stored.size == len(content)


async def test_an_upload_cut_off_midway_leaves_nothing(make_storage: MakeStorage) -> None:
    storage = make_storage()

    async def cut_off() -> AsyncIterator[bytes]:
        yield wav()[:5000]
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        await storage.put("masters/m-1", cut_off(), expect="audio")
    assert stored_files(storage) == []


async def test_a_cancelled_upload_leaves_nothing(make_storage: MakeStorage) -> None:
    storage = make_storage()
    reached = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        yield wav()[:5000]
        reached.set()  # the first 5,000 bytes are written by now
        await asyncio.Event().wait()
        yield b""

    upload = asyncio.create_task(storage.put("masters/m-1", stalls(), expect="audio"))
    await reached.wait()
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload
    assert stored_files(storage) == []


@pytest.mark.parametrize("key", ["masters/m-1/nothing.wav", "../outside.wav", "masters", ""])
async def test_an_unknown_key_is_not_found(make_storage: MakeStorage, key: str) -> None:
    storage = make_storage()
    await storage.put("masters/m-1", Upload(wav()).chunks(), expect="audio")
    assert not await storage.exists(key)
    with pytest.raises(NotFound):
        await read_back(storage, key)


@pytest.mark.parametrize("prefix", ["../escape", "/abs", "masters/../x", "masters/.tmp", ""])
async def test_a_key_prefix_cannot_leave_the_storage(
    make_storage: MakeStorage, prefix: str
) -> None:
    storage = make_storage()
    with pytest.raises(ValueError, match="key prefix"):
        await storage.put(prefix, Upload(wav()).chunks(), expect="audio")
    assert stored_files(storage) == []


async def test_local_files_are_named_by_their_content(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    content = png()
    stored = await storage.put("covers/m-9", Upload(content, 3).chunks(), expect="image")
    path = tmp_path / "covers" / "m-9" / f"{hashlib.sha256(content).hexdigest()}.png"
    assert path.read_bytes() == content
    assert stored.key == path.relative_to(tmp_path).as_posix()
    assert storage.max_bytes == MAX_UPLOAD_BYTES
