"""Media storage on S3 (or any S3-compatible store: MinIO, moto in tests): the distributed
twin of `audifi_kit.media.storage.LocalStorage`, an adapter of the same port (`MediaStorage`)
held to the same rules (`audifi_kit.media.intake.Intake`: the sniffed kind, the size limit)
and the same content addressing (`<key_prefix>/<sha256><extension>`). A stored object can
also be read straight from S3 through a short-lived URL (`presign_download`).

An upload reaches S3 in one of two ways.

Through the service (`put`): the chunks are sniffed, counted and hashed as they come. A file
that fits in one part (`part_bytes`) is kept in memory until its end, when its hash, and so its
key, is known, and is written there with one PutObject. A larger file goes out as a multipart
upload under a temporary key (`.tmp/<uuid>.part`; no key can name it, a key's segments never
start with "."), never more than about one part in memory; once complete it is copied
server-side to its content-addressed key and the temporary object is deleted. A refusal, an
error or a cancellation aborts the multipart upload and deletes the temporary object, so no
orphan part or object is left behind (a bucket lifecycle rule on `.tmp/` and on incomplete
multipart uploads is still wise, for a process killed mid-upload).

Directly from the client (`presign_upload`, then `adopt`): the client POSTs the file to S3 with
a pre-signed form whose policy fixes the key to a staging key (`uploads/<uuid>`) and bounds the
size (`content-length-range`, 1 to `max_bytes`). S3 knows nothing of our content rules, so
nothing staged is served (`open` and `exists` do not see staging keys) until `adopt` has read
it back as a stream under the same rules, hashed it and copied it server-side to its
content-addressed key. A staged object that breaks a rule is deleted and the refusal raised.

The same content under the same prefix is kept once: the content-addressed key is written only
when nothing is there yet.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import aioboto3
import msgspec
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError

from audifi_kit.errors import Conflict, NotFound
from audifi_kit.media.intake import Intake, check_expect, check_key_prefix, is_key
from audifi_kit.media.kinds import (
    MAX_UPLOAD_BYTES,
    NotAllowedMedia,
    StoredObject,
    UploadTooLarge,
)
from audifi_kit.media.storage import CHUNK_BYTES

log = logging.getLogger(__name__)

MIN_PART_BYTES = 5 * 1024 * 1024  # S3's floor for every part of a multipart upload but the last
PART_BYTES = 8 * 1024 * 1024
MAX_COPY_BYTES = 5 * 1024 * 1024 * 1024  # the most one CopyObject copies
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # the longest a SigV4 signature lives
_TMP = ".tmp"
_STAGING = "uploads"
_STAGED = re.compile(rf"{_STAGING}/[0-9a-f]{{32}}")  # never a content-addressed key (64 hex)
_MISSING = frozenset({"404", "NoSuchKey", "NoSuchBucket", "NotFound"})


class PresignedUpload(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Where and how the client uploads a file straight to S3: a multipart/form-data POST to
    `url` with every one of `fields`, then the file as the last field, named "file", before
    `expires_at`. The service then adopts `upload_key`."""

    url: str
    fields: dict[str, str]
    upload_key: str
    expires_at: datetime


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _served(key: str) -> bool:
    """Whether `key` may name stored media: a well-formed key that is not a staged upload,
    which nothing has vetted yet."""
    return is_key(key) and not _STAGED.fullmatch(key)


class _Spool:
    """The bytes of one `put` on their way to S3: at most about a part in memory (`pending`),
    the rest already sent as parts of a multipart upload under a temporary key, begun only
    when the file outgrows one part."""

    def __init__(self, client: Any, bucket: str, part_bytes: int) -> None:
        self.client = client
        self.bucket = bucket
        self.part_bytes = part_bytes
        self.key = f"{_TMP}/{uuid.uuid4().hex}.part"
        self.pending = bytearray()
        self.upload_id: str | None = None
        self._creating: asyncio.Future[dict[str, Any]] | None = None
        self._parts: list[dict[str, Any]] = []

    @property
    def multipart(self) -> bool:
        return self._creating is not None

    async def write(self, data: bytes, mime: str) -> None:
        self.pending += data
        if len(self.pending) >= self.part_bytes:
            if self._creating is None:
                await self._begin(mime)
            await self._send()

    async def seal(self) -> None:
        """Send the last part and complete the upload into the temporary object."""
        if self.pending:
            await self._send()
        await self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    async def discard(self) -> None:
        """Abort the multipart upload and delete the temporary object (the upload may have
        been completed just before a cancellation). Never raises: the caller is already
        failing for a better reason, which a failed clean-up must not hide."""
        if self._creating is None:
            return
        try:
            # Shielded in `_begin`: it runs on after a cancellation, and may yet create it.
            self.upload_id = (await self._creating)["UploadId"]
        except Exception:
            return
        try:
            try:
                await self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
                )
            except ClientError as error:
                if _code(error) != "NoSuchUpload":
                    raise
            await self.client.delete_object(Bucket=self.bucket, Key=self.key)
        except (ClientError, BotoCoreError):
            log.warning(
                "Could not discard the multipart upload %s of %s/%s",
                self.upload_id,
                self.bucket,
                self.key,
                exc_info=True,
            )

    async def _begin(self, mime: str) -> None:
        self._creating = asyncio.ensure_future(
            self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key, ContentType=mime)
        )
        self.upload_id = (await asyncio.shield(self._creating))["UploadId"]

    async def _send(self) -> None:
        part, self.pending = bytes(self.pending), bytearray()
        number = len(self._parts) + 1
        response = await self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=part
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})


class S3Storage:
    """Objects in one S3 bucket, one per distinct content and prefix.

    It owns one S3 client, opened by `start()` (or `async with`) and closed by `close()`.
    Credentials are `access_key_id`/`secret_access_key` when given, else boto's usual chain
    (environment, shared files, instance role). A custom `endpoint_url` (MinIO, moto) is
    addressed path-style unless `path_style` says otherwise. Stores given one `session` share
    its credentials and the service model it has loaded once (loading it is most of the cost of
    opening a client).
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        max_bytes: int = MAX_UPLOAD_BYTES,
        chunk_bytes: int = CHUNK_BYTES,
        part_bytes: int = PART_BYTES,
        path_style: bool | None = None,
        session: aioboto3.Session | None = None,
    ) -> None:
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"S3 parts are at least {MIN_PART_BYTES} bytes, not {part_bytes}")
        if not 0 < max_bytes <= MAX_COPY_BYTES:
            # Objects are placed by one CopyObject, which copies at most 5 GiB.
            raise ValueError(f"max_bytes must be within 1..{MAX_COPY_BYTES}, not {max_bytes}")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.max_bytes = max_bytes
        self.chunk_bytes = chunk_bytes
        self.part_bytes = part_bytes
        if session is not None and (access_key_id or secret_access_key):
            raise ValueError("give either a session or its credentials, not both")
        self._session = session or aioboto3.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        path = endpoint_url is not None if path_style is None else path_style
        self._config = AioConfig(
            signature_version="s3v4", s3={"addressing_style": "path" if path else "auto"}
        )
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._cleanups: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self._stack is not None:
            return
        stack = AsyncExitStack()
        self._client = await stack.enter_async_context(
            self._session.client("s3", endpoint_url=self.endpoint_url, config=self._config)
        )
        self._stack = stack

    async def close(self) -> None:
        """Wait for the clean-ups of cancelled uploads, then close the client."""
        if self._cleanups:
            await asyncio.gather(*self._cleanups, return_exceptions=True)
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> S3Storage:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def _s3(self) -> Any:
        if self._client is None:
            raise RuntimeError("S3Storage is not started: call start() or use `async with`")
        return self._client

    async def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (for development and tests: in production the
        bucket, its lifecycle rules and its CORS policy are provisioned, not created here)."""
        try:
            await self._s3.head_bucket(Bucket=self.bucket)
            return
        except ClientError as error:
            if _code(error) not in _MISSING:
                raise
        where = (
            {}
            if self.region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
        )
        try:
            await self._s3.create_bucket(Bucket=self.bucket, **where)
        except ClientError as error:
            if _code(error) != "BucketAlreadyOwnedByYou":
                raise

    async def put(
        self, key_prefix: str, chunks: AsyncIterator[bytes], *, expect: str | tuple[str, ...]
    ) -> StoredObject:
        check_key_prefix(key_prefix)
        intake = Intake(expect, self.max_bytes)
        digest = hashlib.sha256()
        spool = _Spool(self._s3, self.bucket, self.part_bytes)
        try:
            async for chunk in chunks:
                if data := intake.take(chunk):
                    digest.update(data)
                    await spool.write(data, _mime(intake))
            if data := intake.finish():
                digest.update(data)
                await spool.write(data, _mime(intake))
            stored = intake.stored(key_prefix, digest.digest())
            if not spool.multipart:
                if not await self._has(stored.key):
                    await self._s3.put_object(
                        Bucket=self.bucket,
                        Key=stored.key,
                        Body=bytes(spool.pending),
                        ContentType=stored.mime,
                    )
                return stored
            await spool.seal()
            await self._place(spool.key, stored)
            await self._s3.delete_object(Bucket=self.bucket, Key=spool.key)
        except BaseException:
            await self._clean_up(spool.discard())
            raise
        return stored

    async def open(self, key: str) -> AsyncIterator[bytes]:
        if not _served(key):
            raise NotFound("No stored media under this key")
        try:
            response = await self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                raise NotFound("No stored media under this key") from None
            raise
        body = response["Body"]
        async with body:  # closes the connection if the reader stops early
            async for chunk in body.iter_chunks(self.chunk_bytes):
                yield chunk

    async def exists(self, key: str) -> bool:
        return _served(key) and await self._has(key)

    async def presign_download(self, key: str, *, expires_seconds: int = 300) -> str:
        """A short-lived URL that reads one stored object straight from S3 (nft: a
        locker's download): whoever holds it may GET the bytes until it expires."""
        if not _served(key):
            raise NotFound("No stored media under this key")
        if not 0 < expires_seconds <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_seconds must be within 1..{MAX_PRESIGN_SECONDS}")
        url: str = await self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_seconds
        )
        return url

    async def presign_upload(
        self, key_prefix: str, *, expect: str, expires_seconds: int = 900
    ) -> PresignedUpload:
        """A form for the client to POST one file straight to S3, under a fresh staging key.

        S3 enforces the size range and the key; the kind cannot be checked before the bytes
        are there, so `key_prefix` and `expect` are only checked here: `adopt` holds the
        staged file to them.
        """
        check_key_prefix(key_prefix)
        check_expect(expect)
        if not 0 < expires_seconds <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_seconds must be within 1..{MAX_PRESIGN_SECONDS}")
        upload_key = f"{_STAGING}/{uuid.uuid4().hex}"
        expires_at = datetime.now(UTC) + timedelta(seconds=expires_seconds)
        form = await self._s3.generate_presigned_post(
            Bucket=self.bucket,
            Key=upload_key,
            Conditions=[["content-length-range", 1, self.max_bytes]],
            ExpiresIn=expires_seconds,
        )
        return PresignedUpload(
            url=form["url"], fields=form["fields"], upload_key=upload_key, expires_at=expires_at
        )

    async def adopt(self, key_prefix: str, upload_key: str, *, expect: str) -> StoredObject:
        """Keep the staged upload under its content-addressed key if it is `expect` content
        within the limit, and delete it from staging; a staged file that is not is deleted
        and the refusal raised. NotFound when nothing is staged under `upload_key`."""
        check_key_prefix(key_prefix)
        intake = Intake(expect, self.max_bytes)
        if not _STAGED.fullmatch(upload_key):
            raise NotFound("No upload under this key")
        try:
            response = await self._s3.get_object(Bucket=self.bucket, Key=upload_key)
        except ClientError as error:
            if _code(error) in _MISSING:
                raise NotFound("No upload under this key") from None
            raise
        digest = hashlib.sha256()
        try:
            body = response["Body"]
            async with body:
                if response["ContentLength"] > self.max_bytes:
                    raise UploadTooLarge(self.max_bytes)
                async for chunk in body.iter_chunks(self.chunk_bytes):
                    digest.update(intake.take(chunk))
                digest.update(intake.finish())
        except (NotAllowedMedia, UploadTooLarge):
            await self._clean_up(self._forget(upload_key))
            raise
        stored = intake.stored(key_prefix, digest.digest())
        # The pre-signed form can be posted again until it expires: copy only the bytes read.
        await self._place(upload_key, stored, if_match=response["ETag"])
        await self._delete(upload_key)
        return stored

    async def _has(self, key: str) -> bool:
        try:
            await self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _code(error) in _MISSING:
                return False
            raise
        return True

    async def _place(
        self, source: str, stored: StoredObject, *, if_match: str | None = None
    ) -> None:
        """Copy `source` to the content-addressed key, unless that content is already there."""
        if await self._has(stored.key):
            return
        condition = {} if if_match is None else {"CopySourceIfMatch": if_match}
        try:
            await self._s3.copy_object(
                Bucket=self.bucket,
                Key=stored.key,
                CopySource={"Bucket": self.bucket, "Key": source},
                ContentType=stored.mime,
                MetadataDirective="REPLACE",
                **condition,
            )
        except ClientError as error:
            if _code(error) == "PreconditionFailed":
                raise Conflict("The upload changed while it was checked; adopt it again") from None
            raise

    async def _delete(self, key: str) -> None:
        await self._s3.delete_object(Bucket=self.bucket, Key=key)

    async def _forget(self, upload_key: str) -> None:
        """Delete a refused staged upload; a failure is logged, not raised, so that the client
        hears why the upload was refused (the staging lifecycle rule deletes it later)."""
        try:
            await self._delete(upload_key)
        except (ClientError, BotoCoreError):
            log.warning("Could not delete the refused upload %s", upload_key, exc_info=True)

    async def _clean_up(self, cleanup: Coroutine[Any, Any, None]) -> None:
        """Run `cleanup` to its end even if the caller is cancelled meanwhile (`close` waits
        for it then)."""
        task = asyncio.ensure_future(cleanup)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
        await asyncio.shield(task)


def _mime(intake: Intake) -> str:
    assert intake.kind is not None  # bytes are let through only once the head is sniffed
    return intake.kind.mime
