"""nft's media on S3: the service keeps masters' media in the bucket its settings name, and an
artist uploads straight to the bucket with a pre-signed form, then registers the master.

The store itself (`audifi_kit.media.s3.S3Storage`: its rules, multipart streaming, pre-signed
uploads and downloads) is tested in the kit, libs/kit/tests/media/test_media_s3.py. Here it
talks to a real S3 protocol server (moto's, in a thread, one for the module); each test has
its own bucket, inspected with a client of its own.
"""

from __future__ import annotations

import hashlib
import io
import struct
import uuid
import wave
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import aioboto3
import httpx
import pytest
from audifi_nft.adapters.storage_s3 import PresignedUpload, S3Storage
from moto.server import ThreadedMotoServer

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


async def chunked(content: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(content), size):
        yield content[start : start + size]


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


async def keys(s3: Any, bucket: str) -> list[str]:
    listing = await s3.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


async def post(form: PresignedUpload, content: bytes, filename: str = "song.wav") -> httpx.Response:
    """What a browser does with the form: a multipart/form-data POST, the file last."""
    async with httpx.AsyncClient() as client:
        return await client.post(
            form.url, data=form.fields, files={"file": (filename, content, "audio/wav")}
        )


# --- the service's choice of store --------------------------------------------------------


async def test_the_service_keeps_media_in_the_bucket_its_settings_name(
    endpoint: str, s3: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from audifi_kit.media.storage import opened
    from audifi_kit.settings import Settings
    from audifi_nft.adapters.storage_local import LocalStorage
    from audifi_nft.app import media_storage

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert isinstance(media_storage(Settings(var_dir=tmp_path)), LocalStorage)
    bucket = f"masters-{uuid.uuid4().hex[:12]}"
    chosen = media_storage(
        Settings(extra={"AUDIFI_NFT_S3_BUCKET": bucket, "AUDIFI_NFT_S3_ENDPOINT": endpoint})
    )
    assert isinstance(chosen, S3Storage)
    async with opened(chosen):  # the app's lifespan: the client opened, the bucket made
        stored = await chosen.put("masters/m1", chunked(wav()), expect="audio")
    assert await keys(s3, bucket) == [stored.key]


# --- served: an artist uploads straight to the bucket, then registers -----------------------


async def test_an_artist_uploads_to_the_bucket_with_a_presigned_form_and_registers(
    endpoint: str, s3: Any, postgres_url: str, tmp_path: Any
) -> None:
    from audifi_kit.bus.inprocess import InProcessBus
    from audifi_kit.chain.platform import PlatformChain
    from audifi_kit.settings import Settings
    from audifi_kit.testing import TokenSigner, drop_databases, served
    from audifi_nft.app import create_app
    from litestar import Litestar, get

    signer = TokenSigner()

    @get("/.well-known/jwks.json", sync_to_thread=False)
    def jwks() -> dict[str, Any]:
        return signer.jwks()

    artist, other = str(uuid.uuid4()), str(uuid.uuid4())

    def as_(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {signer.token(user, roles=('artist',))}"}

    bucket = f"media-{uuid.uuid4().hex[:12]}"
    storage = S3Storage(bucket, endpoint_url=endpoint, session=SESSION)
    prefix = f"audifi_s{uuid.uuid4().hex[:8]}_"
    async with served(Litestar([jwks])) as auth:
        settings = Settings(
            database_url=postgres_url,
            db_prefix=prefix,
            var_dir=tmp_path,
            jwks_url=f"{auth}/.well-known/jwks.json",
            pool_size=3,
        )
        chain = PlatformChain(settings)
        await chain.start()
        try:
            async with (
                served(create_app(settings, InProcessBus(), chain=chain, storage=storage)) as url,
                httpx.AsyncClient(base_url=url, timeout=30) as c,
            ):

                async def upload(kind: str, content: bytes, user: str = artist) -> str:
                    answer = await c.post(
                        "/masters/uploads", json={"kind": kind}, headers=as_(user)
                    )
                    assert answer.status_code == 201, answer.text
                    form = PresignedUpload(
                        url=answer.json()["url"],
                        fields=answer.json()["fields"],
                        upload_key=answer.json()["uploadKey"],
                        expires_at=datetime.fromisoformat(answer.json()["expiresAt"]),
                    )
                    assert (await post(form, content)).status_code in (200, 201, 204)
                    return form.upload_key

                audio, cover = await upload("audio", wav()), await upload("cover", png())
                theirs = await upload("audio", wav(), user=other)
                body = {"title": "First Light", "isrc": "US-AUD-26-00123"}
                stolen = await c.post(
                    "/masters/from-uploads",
                    json=body | {"audioUpload": theirs, "coverUpload": cover},
                    headers=as_(artist),
                )
                assert stolen.status_code == 404  # another's upload is not theirs to use
                made = await c.post(
                    "/masters/from-uploads",
                    json=body | {"audioUpload": audio, "coverUpload": cover},
                    headers=as_(artist),
                )
                assert made.status_code == 201, made.text
                master = made.json()
                assert master["audio"]["sha256"] == hashlib.sha256(wav()).hexdigest()
                assert master["audio"]["mime"] == "audio/wav"
                stored = await keys(s3, bucket)
                assert f"masters/{master['audio']['sha256']}.wav" in stored
                assert audio not in stored and cover not in stored  # adopted, staging emptied
                again = await c.post(
                    "/masters/from-uploads",
                    json={"title": "Again", "isrc": "US-AUD-26-00124"}
                    | {"audioUpload": audio, "coverUpload": cover},
                    headers=as_(artist),
                )
                assert again.status_code == 404  # an upload is used once
        finally:
            await chain.close()
            await drop_databases(postgres_url, prefix)
