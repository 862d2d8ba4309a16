"""A multipart upload's file, read a chunk at a time: what a service hands to the media port
(`audifi_kit.media`), never the whole file in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from litestar.datastructures import UploadFile

UPLOAD_CHUNK_BYTES = 256 * 1024


async def chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    """The upload's bytes, a chunk at a time."""
    while chunk := await upload.read(UPLOAD_CHUNK_BYTES):
        yield chunk
