"""The rules every upload meets, whichever adapter keeps it (`storage.LocalStorage`,
`storage.InMemoryStorage`, `s3.S3Storage`): where it may be kept and what it must be.

A key prefix, and so a key, is "/"-separated segments of letters, digits, ".", "_" and "-",
none starting with "." (so no key leaves the store, names a temporary file, or is empty). An
upload is taken chunk by chunk (`Intake`): the running size must stay within the limit
(`UploadTooLarge`, raised on the chunk that goes past it), and its kind is sniffed from its
first bytes (`SNIFF_BYTES`, or the whole file if shorter) and must be of a category the caller
expects (`NotAllowedMedia`).
"""

from __future__ import annotations

import re

from audifi_kit.media.kinds import (
    CATEGORIES,
    SNIFF_BYTES,
    MediaKind,
    NotAllowedMedia,
    StoredObject,
    UploadTooLarge,
    sniff_kinds,
)

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_key_prefix(key_prefix: str) -> str:
    """`key_prefix` itself when it is well formed; ValueError when it is not."""
    segments = key_prefix.split("/")
    if not all(_SEGMENT.fullmatch(s) for s in segments):
        raise ValueError(f"not a storage key prefix: {key_prefix!r}")
    return key_prefix


def is_key(key: str) -> bool:
    """Whether `key` is well formed (what it names is the adapter's to say)."""
    return all(_SEGMENT.fullmatch(s) for s in key.split("/"))


def check_expect(expect: str | tuple[str, ...]) -> tuple[str, ...]:
    """The categories an upload may be: one, or any of several (an image or a PDF; audio,
    video or an image)."""
    categories = (expect,) if isinstance(expect, str) else tuple(expect)
    if not categories or any(c not in CATEGORIES for c in categories):
        raise ValueError(f"expect must be among {CATEGORIES}, not {expect!r}")
    return categories


class Intake:
    """The rules every upload meets, chunk by chunk: the size limit and the sniffed kind.

    `take` answers the bytes that may be kept so far (nothing while the head is gathered);
    `finish` sniffs a file shorter than the head and answers what is left of it. The kind is
    the first the head may be (`sniff_kinds`) whose category is expected.
    """

    def __init__(self, expect: str | tuple[str, ...], max_bytes: int) -> None:
        self.categories = check_expect(expect)
        self.expect = expect
        self.max_bytes = max_bytes
        self.size = 0
        self.kind: MediaKind | None = None
        self._head = bytearray()

    def take(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise UploadTooLarge(self.max_bytes)
        if self.kind is not None:
            return chunk
        self._head += chunk
        if len(self._head) < SNIFF_BYTES:
            return b""
        return self._sniffed()

    def finish(self) -> bytes:
        return b"" if self.kind is not None else self._sniffed()

    def _sniffed(self) -> bytes:
        # The first kind the head may be that the upload expects: an "isom" MP4 is audio/mp4
        # where audio is expected, video/mp4 where video is.
        kinds = sniff_kinds(bytes(self._head[:SNIFF_BYTES]))
        kind = next((k for k in kinds if k.category in self.categories), None)
        if kind is None:
            raise NotAllowedMedia(self.expect, kinds)
        self.kind = kind
        head, self._head = bytes(self._head), bytearray()
        return head

    def stored(self, key_prefix: str, digest: bytes) -> StoredObject:
        assert self.kind is not None
        return StoredObject.of(key_prefix, digest, self.size, self.kind)
