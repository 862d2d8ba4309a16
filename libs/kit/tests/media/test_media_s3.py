"""Media on S3: the same rules as the local store, kept content-addressed in a bucket, with
nothing left behind by a refused, failed or cancelled upload; the direct upload by a
pre-signed POST, adopted only once its content passes the same rules; and the pre-signed
download (moved here from nft's tests with the code, `audifi_kit.media.s3`).

The store talks to a real S3 protocol server (moto's, in a thread, one for the module); each
test has its own bucket, inspected with a client of its own.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import struct
import uuid
import wave
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import aioboto3
import httpx
import pytest
from audifi_kit.errors import NotFound
from audifi_kit.media.kinds import NotAllowedMedia, StoredObject, UploadTooLarge, cid_v1_raw
from audifi_kit.media.s3 import MIN_PART_BYTES, PresignedUpload, S3Storage
from moto.server import ThreadedMotoServer

MiB = 1024 * 1024
# One session for every client here: it loads S3's service model once.
SESSION = aioboto3.Session(
    aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
)


def wav(frames: int = 2000) -> bytes:
    """A mono 16-bit 8 kHz WAV of `frames` samples: 2 bytes each, after a 44-byte header."""
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
    """A 1x1 opaque red pixel."""
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + _png_chunk(b"IEND", b"")
    )


TEXT = b"These are the lyrics, not the song.\n" * 4


async def chunked(content: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(content), size):
        yield content[start : start + size]


def expected(content: bytes, extension: str, mime: str) -> StoredObject:
    digest = hashlib.sha256(content).digest()
    return StoredObject(
        key=f"masters/{digest.hex()}{extension}",
        size=len(content),
        sha256=digest.hex(),
        cid=cid_v1_raw(digest),
        mime=mime,
        category=mime.split("/")[0],
    )


# --- the server, a bucket per test, and a way to look inside it ------------------------------


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
async def s3(endpoint: str) -> AsyncIterator[Any]:
    """A plain S3 client, to see what the store left in the bucket."""
    async with SESSION.client("s3", endpoint_url=endpoint) as client:
        yield client


@pytest.fixture
def make_storage(endpoint: str) -> Iterator[Callable[..., S3Storage]]:
    bucket = f"media-{uuid.uuid4().hex[:12]}"

    def make(**options: Any) -> S3Storage:
        return S3Storage(bucket, endpoint_url=endpoint, session=SESSION, **options)

    yield make


@pytest.fixture
async def storage(make_storage: Callable[..., S3Storage]) -> AsyncIterator[S3Storage]:
    async with make_storage() as store:
        await store.ensure_bucket()
        yield store


async def keys(s3: Any, bucket: str) -> list[str]:
    listing = await s3.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


async def uploads_in_progress(s3: Any, bucket: str) -> list[str]:
    listing = await s3.list_multipart_uploads(Bucket=bucket)
    return [upload["Key"] for upload in listing.get("Uploads", [])]


async def read(storage: S3Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.open(key)])


async def post(form: PresignedUpload, content: bytes, filename: str = "song.wav") -> httpx.Response:
    """What a browser does with the form: a multipart/form-data POST, the file last."""
    async with httpx.AsyncClient() as client:
        return await client.post(
            form.url, data=form.fields, files={"file": (filename, content, "audio/wav")}
        )


# --- put and open ---------------------------------------------------------------------------


async def test_a_wav_and_a_png_are_kept_under_their_hash_and_read_back(
    storage: S3Storage, s3: Any
) -> None:
    audio, cover = wav(), png()

    kept_audio = await storage.put("masters", chunked(audio, 1000), expect="audio")
    kept_cover = await storage.put("masters", chunked(cover), expect="image")

    assert kept_audio == expected(audio, ".wav", "audio/wav")
    assert kept_cover == expected(cover, ".png", "image/png")
    assert await read(storage, kept_audio.key) == audio
    assert await read(storage, kept_cover.key) == cover
    assert await storage.exists(kept_audio.key)
    assert (await s3.head_object(Bucket=storage.bucket, Key=kept_audio.key))[
        "ContentType"
    ] == "audio/wav"
    assert (await s3.head_object(Bucket=storage.bucket, Key=kept_cover.key))[
        "ContentType"
    ] == "image/png"
    assert await keys(s3, storage.bucket) == sorted([kept_audio.key, kept_cover.key])


async def test_a_file_larger_than_a_part_goes_up_in_parts_and_reads_back_whole(
    make_storage: Callable[..., S3Storage], s3: Any
) -> None:
    audio = wav(frames=(2 * MIN_PART_BYTES + MiB) // 2)  # three parts: 5 MiB, 5 MiB, 1 MiB

    async with make_storage(part_bytes=MIN_PART_BYTES, chunk_bytes=MiB) as storage:
        await storage.ensure_bucket()
        kept = await storage.put("masters", chunked(audio), expect="audio")
        back = [chunk async for chunk in storage.open(kept.key)]

    assert kept == expected(audio, ".wav", "audio/wav")
    assert b"".join(back) == audio
    assert max(len(chunk) for chunk in back) <= MiB
    head = await s3.head_object(Bucket=storage.bucket, Key=kept.key)
    assert (head["ContentType"], head["ContentLength"]) == ("audio/wav", len(audio))
    assert await keys(s3, storage.bucket) == [kept.key]  # the temporary object is gone
    assert await uploads_in_progress(s3, storage.bucket) == []


async def test_the_same_bytes_are_kept_once(
    make_storage: Callable[..., S3Storage], s3: Any
) -> None:
    small, large = png(), wav(frames=(MIN_PART_BYTES + MiB) // 2)

    async with make_storage(part_bytes=MIN_PART_BYTES) as storage:
        await storage.ensure_bucket()
        first = await storage.put("masters", chunked(small), expect="image")
        again = await storage.put("masters", chunked(small, 7), expect="image")
        first_large = await storage.put("masters", chunked(large), expect="audio")
        again_large = await storage.put("masters", chunked(large), expect="audio")

    assert again == first
    assert again_large == first_large
    assert await keys(s3, storage.bucket) == sorted([first.key, first_large.key])
    assert await uploads_in_progress(s3, storage.bucket) == []


async def test_text_sent_as_audio_is_refused_and_nothing_is_kept(
    storage: S3Storage, s3: Any
) -> None:
    with pytest.raises(NotAllowedMedia) as refused:
        await storage.put("masters", chunked(TEXT, 16), expect="audio")
    with pytest.raises(NotAllowedMedia):
        await storage.put("masters", chunked(png()), expect="audio")

    assert refused.value.status_code == 415
    assert refused.value.details == {"expected": "audio/*", "found": "unrecognised content"}
    assert await keys(s3, storage.bucket) == []
    assert await uploads_in_progress(s3, storage.bucket) == []


async def test_an_upload_past_the_limit_is_refused_mid_stream_and_its_parts_discarded(
    make_storage: Callable[..., S3Storage], s3: Any
) -> None:
    audio = wav(frames=7 * MiB // 2)
    sent: list[int] = []
    parts_seen: list[list[str]] = []

    async with make_storage(max_bytes=6 * MiB, part_bytes=MIN_PART_BYTES) as storage:
        await storage.ensure_bucket()

        async def client() -> AsyncIterator[bytes]:
            async for chunk in chunked(audio):
                if sum(sent) + len(chunk) > 6 * MiB and not parts_seen:
                    # About to pass the limit: the first part is already on S3.
                    parts_seen.append(await uploads_in_progress(s3, storage.bucket))
                sent.append(len(chunk))
                yield chunk

        with pytest.raises(UploadTooLarge) as refused:
            await storage.put("masters", client(), expect="audio")

    assert refused.value.status_code == 413
    assert refused.value.details == {"maxBytes": 6 * MiB}
    assert len(parts_seen[0]) == 1 and parts_seen[0][0].startswith(".tmp/")
    assert sum(sent) == 6 * MiB + 64 * 1024  # read up to the chunk that passed it, no further
    assert await keys(s3, storage.bucket) == []
    assert await uploads_in_progress(s3, storage.bucket) == []


async def test_a_cancelled_upload_leaves_nothing_behind(
    make_storage: Callable[..., S3Storage], s3: Any
) -> None:
    audio = wav(frames=3 * MiB)  # 6 MiB: one part goes up, then the client stalls
    stalled = asyncio.Event()

    async def client() -> AsyncIterator[bytes]:
        async for chunk in chunked(audio[: MIN_PART_BYTES + MiB]):
            yield chunk
        stalled.set()
        await asyncio.Event().wait()

    async with make_storage(part_bytes=MIN_PART_BYTES) as storage:
        await storage.ensure_bucket()
        upload = asyncio.create_task(storage.put("masters", client(), expect="audio"))
        await asyncio.wait_for(stalled.wait(), 5)
        assert len(await uploads_in_progress(s3, storage.bucket)) == 1
        upload.cancel()
        with pytest.raises(asyncio.CancelledError):
            await upload

    assert await keys(s3, storage.bucket) == []
    assert await uploads_in_progress(s3, storage.bucket) == []


@pytest.mark.parametrize(
    "key",
    ["masters/" + "0" * 64 + ".wav", "../etc/passwd", "", ".tmp/x.part", "masters//x.wav"],
)
async def test_nothing_is_read_where_nothing_is_kept(storage: S3Storage, key: str) -> None:
    with pytest.raises(NotFound):
        await read(storage, key)
    assert not await storage.exists(key)


# --- pre-signed direct upload, then adoption ------------------------------------------------


async def test_a_presigned_post_puts_the_file_in_staging_and_adopt_keeps_it_by_its_hash(
    storage: S3Storage, s3: Any
) -> None:
    audio = wav()
    form = await storage.presign_upload("masters", expect="audio", expires_seconds=600)

    response = await post(form, audio)
    assert response.status_code in (200, 201, 204), response.text
    assert await keys(s3, storage.bucket) == [form.upload_key]
    assert not await storage.exists(form.upload_key)  # not served before it is checked
    with pytest.raises(NotFound):
        await read(storage, form.upload_key)

    kept = await storage.adopt("masters", form.upload_key, expect="audio")

    assert kept == expected(audio, ".wav", "audio/wav")
    assert await read(storage, kept.key) == audio
    assert (await s3.head_object(Bucket=storage.bucket, Key=kept.key))["ContentType"] == (
        "audio/wav"
    )
    assert await keys(s3, storage.bucket) == [kept.key]  # the staged object is gone
    with pytest.raises(NotFound):  # adopted once
        await storage.adopt("masters", form.upload_key, expect="audio")


async def test_the_presigned_form_fixes_the_key_and_bounds_the_size(storage: S3Storage) -> None:
    form = await storage.presign_upload("masters", expect="image")

    policy = json.loads(base64.b64decode(form.fields["policy"]))
    assert form.fields["key"] == form.upload_key
    assert form.upload_key.startswith("uploads/")
    assert {"key": form.upload_key} in policy["conditions"]
    assert ["content-length-range", 1, storage.max_bytes] in policy["conditions"]
    assert form.url.endswith(f"/{storage.bucket}")
    assert 890 <= (form.expires_at - datetime.now(UTC)).total_seconds() <= 900
    with pytest.raises(ValueError):
        await storage.presign_upload("masters", expect="text")


async def test_a_staged_file_that_is_not_audio_is_refused_on_adoption_and_deleted(
    storage: S3Storage, s3: Any
) -> None:
    form = await storage.presign_upload("masters", expect="audio")
    assert (await post(form, TEXT, "lyrics.wav")).is_success  # the client's name is a claim

    with pytest.raises(NotAllowedMedia):
        await storage.adopt("masters", form.upload_key, expect="audio")

    assert await keys(s3, storage.bucket) == []


async def test_a_staged_file_past_the_limit_is_refused_on_adoption_and_deleted(
    make_storage: Callable[..., S3Storage], s3: Any
) -> None:
    # S3 itself refuses a POST outside the policy's content-length-range; moto does not
    # enforce POST policies (the upload below is accepted), so this proves adopt's own rule.
    async with make_storage(max_bytes=64 * 1024) as storage:
        await storage.ensure_bucket()
        form = await storage.presign_upload("masters", expect="audio")
        assert (await post(form, wav(frames=40_000))).is_success

        with pytest.raises(UploadTooLarge):
            await storage.adopt("masters", form.upload_key, expect="audio")

    assert await keys(s3, storage.bucket) == []


async def test_only_a_staged_upload_can_be_adopted(storage: S3Storage, s3: Any) -> None:
    kept = await storage.put("masters", chunked(wav()), expect="audio")

    for key in ["uploads/" + uuid.uuid4().hex, kept.key, "uploads/../" + kept.key, "nope"]:
        with pytest.raises(NotFound):
            await storage.adopt("masters", key, expect="audio")

    assert await keys(s3, storage.bucket) == [kept.key]


# --- pre-signed download --------------------------------------------------------------------


async def test_a_presigned_download_reads_a_stored_object_and_nothing_unvetted(
    storage: S3Storage,
) -> None:
    kept = await storage.put("masters", chunked(png()), expect="image")

    url = await storage.presign_download(kept.key, expires_seconds=60)
    async with httpx.AsyncClient() as client:
        got = await client.get(url)
    assert (got.status_code, got.content) == (200, png())
    assert got.headers["content-type"] == "image/png"
    assert "X-Amz-Expires=60" in url

    form = await storage.presign_upload("masters", expect="audio")
    for key in [form.upload_key, "../etc/passwd", "", ".tmp/x.part"]:
        with pytest.raises(NotFound):  # a staged upload is not served before it is vetted
            await storage.presign_download(key)
    for seconds in (0, 7 * 24 * 3600 + 1):
        with pytest.raises(ValueError, match="expires_seconds"):
            await storage.presign_download(kept.key, expires_seconds=seconds)
