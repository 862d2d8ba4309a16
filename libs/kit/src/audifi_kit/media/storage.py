"""The media storage port (`MediaStorage`), its local-file adapter and their in-memory twin;
the S3 adapter is `audifi_kit.media.s3.S3Storage`. A service hands its application one of them.

Every adapter takes an upload as a stream of chunks and holds it to the same rules before
anything is kept (`audifi_kit.media.intake`): its kind is sniffed from its first bytes
(`SNIFF_BYTES`, or the whole file if shorter), never from what the client says, and must be
the category the caller expects (`NotAllowedMedia`); the running size must stay within
`max_bytes` (`UploadTooLarge`, raised on the chunk that goes past it, without reading the
rest). Content is addressed by its SHA-256 (`<key_prefix>/<sha256><extension>`), so the same
bytes under the same prefix are kept once and every `put` of them answers the same
`StoredObject`. Which prefixes there are is the service's business (nft's "masters/<id>",
"items/<id>"...), not the store's.

`LocalStorage` streams to a temporary file under `root/.tmp` (never the whole file in memory),
hashing as it writes, and moves it into place with an atomic rename; a refusal, an error or a
cancellation removes the temporary file. Every blocking file call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Protocol

from audifi_kit.errors import NotFound
from audifi_kit.media.intake import Intake, check_key_prefix, is_key
from audifi_kit.media.kinds import MAX_UPLOAD_BYTES, StoredObject

CHUNK_BYTES = 64 * 1024
_TMP = ".tmp"  # no key can name it: a key's segments never start with "."


class MediaStorage(Protocol):
    """Where uploaded media are kept: nft's masters' audio and covers, proofs and lockers'
    items, and any other service's files (vstudio's stems and mixes)."""

    async def put(
        self, key_prefix: str, chunks: AsyncIterator[bytes], *, expect: str | tuple[str, ...]
    ) -> StoredObject:
        """Keep the upload if it is `expect` content (a category: "audio", "video",
        "image", "document"; or any of several) within the limit."""
        ...

    def open(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes, in chunks (`async for chunk in storage.open(key)`); NotFound when
        nothing is stored under `key`, raised on the first iteration."""
        ...

    async def exists(self, key: str) -> bool: ...


def _write(file: IO[bytes], digest: hashlib._Hash, data: bytes) -> None:
    digest.update(data)
    file.write(data)


def _seal(file: IO[bytes]) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()


def _place(temp: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.is_file():  # the same content is already there: keep the one copy
        temp.unlink()
    else:
        os.replace(temp, final)


def _discard(file: IO[bytes], temp: Path) -> None:
    file.close()
    temp.unlink(missing_ok=True)


def _open_temp(temp: Path) -> IO[bytes]:
    temp.parent.mkdir(parents=True, exist_ok=True)
    return temp.open("xb")


async def _open_for_upload(temp: Path) -> IO[bytes]:
    """The temporary file, opened in a thread; if the upload is cancelled meanwhile, the file
    the thread still opens is discarded when it is."""
    opening = asyncio.get_running_loop().run_in_executor(None, _open_temp, temp)
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(
            lambda done: None if done.exception() else _discard(done.result(), temp)
        )
        raise


class LocalStorage:
    """Files under `root`, one per distinct content and prefix."""

    def __init__(
        self, root: Path, *, max_bytes: int = MAX_UPLOAD_BYTES, chunk_bytes: int = CHUNK_BYTES
    ) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.chunk_bytes = chunk_bytes

    async def put(
        self, key_prefix: str, chunks: AsyncIterator[bytes], *, expect: str | tuple[str, ...]
    ) -> StoredObject:
        check_key_prefix(key_prefix)
        intake = Intake(expect, self.max_bytes)
        digest = hashlib.sha256()
        temp = self.root / _TMP / f"{uuid.uuid4().hex}.part"
        file = await _open_for_upload(temp)
        try:
            async for chunk in chunks:
                data = intake.take(chunk)
                if data:
                    await asyncio.to_thread(_write, file, digest, data)
            data = intake.finish()
            if data:
                await asyncio.to_thread(_write, file, digest, data)
            await asyncio.to_thread(_seal, file)
            stored = intake.stored(key_prefix, digest.digest())
            await asyncio.to_thread(_place, temp, self.root / stored.key)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(_discard, file, temp))
            raise
        return stored

    async def open(self, key: str) -> AsyncIterator[bytes]:
        if not is_key(key):
            raise NotFound("No stored media under this key")
        try:
            file = await asyncio.to_thread((self.root / key).open, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound("No stored media under this key") from None
        try:
            while chunk := await asyncio.to_thread(file.read, self.chunk_bytes):
                yield chunk
        finally:
            file.close()

    async def exists(self, key: str) -> bool:
        return is_key(key) and await asyncio.to_thread((self.root / key).is_file)


class InMemoryStorage:
    """The twin of `LocalStorage` for application tests: the same rules, bytes in a dict."""

    def __init__(
        self, *, max_bytes: int = MAX_UPLOAD_BYTES, chunk_bytes: int = CHUNK_BYTES
    ) -> None:
        self.max_bytes = max_bytes
        self.chunk_bytes = chunk_bytes
        self._objects: dict[str, bytes] = {}

    async def put(
        self, key_prefix: str, chunks: AsyncIterator[bytes], *, expect: str | tuple[str, ...]
    ) -> StoredObject:
        check_key_prefix(key_prefix)
        intake = Intake(expect, self.max_bytes)
        content = bytearray()
        async for chunk in chunks:
            content += intake.take(chunk)
        content += intake.finish()
        stored = intake.stored(key_prefix, hashlib.sha256(content).digest())
        self._objects.setdefault(stored.key, bytes(content))
        return stored

    async def open(self, key: str) -> AsyncIterator[bytes]:
        content = self._objects.get(key)
        if content is None:
            raise NotFound("No stored media under this key")
        for start in range(0, len(content), self.chunk_bytes):
            yield content[start : start + self.chunk_bytes]

    async def exists(self, key: str) -> bool:
        return key in self._objects

    def keys(self) -> list[str]:
        """What is stored (test-facing)."""
        return sorted(self._objects)


@contextlib.asynccontextmanager
async def opened(storage: MediaStorage) -> AsyncIterator[MediaStorage]:
    """The store ready for as long as the app serves: an S3 store's client open and its
    bucket made when missing; local files and memory need nothing."""
    from audifi_kit.media.s3 import S3Storage  # boto only where S3 is used

    if not isinstance(storage, S3Storage):
        yield storage
        return
    async with storage:
        await storage.ensure_bucket()
        yield storage
