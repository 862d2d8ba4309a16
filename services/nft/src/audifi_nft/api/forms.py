"""What nft's multipart forms share: a file read a chunk at a time (the kit's `chunks`), and
a JSON field bounded before it is decoded (a form field gets none of the kit's JSON body
guards: 3,000 levels of nesting overflowed the decoder)."""

from __future__ import annotations

from typing import Any

import msgspec
from audifi_kit.errors import ValidationFailed
from audifi_kit.http.bodies import check_json_body
from audifi_kit.http.uploads import UPLOAD_CHUNK_BYTES, chunks
from audifi_kit.values import invalid

__all__ = ["UPLOAD_CHUNK_BYTES", "chunks", "json_object_field"]


def json_object_field(text: str | None, *, field: str, max_bytes: int, max_depth: int) -> Any:
    """A form field holding a JSON object, as text; None when it is empty."""
    if text is None or not text.strip():
        return None
    raw = text.encode()
    if len(raw) > max_bytes:
        raise invalid(field, f"Expected at most {max_bytes} bytes of JSON")
    try:
        check_json_body(raw, max_depth=max_depth)
        value = msgspec.json.decode(raw)
    except ValidationFailed:
        raise invalid(field, f"Expected JSON nested at most {max_depth} deep") from None
    except msgspec.DecodeError:
        raise invalid(field, "Expected a JSON object") from None
    if not isinstance(value, dict):
        raise invalid(field, "Expected a JSON object")
    return value
