"""Field types for values that cross the platform's edge: each rule is declared once, in the type.

A type made here is `Annotated[str, msgspec.Meta(...)]`, and needs no web framework. That one
declaration has three effects:

* msgspec refuses a value outside the rule while decoding a request: 400 VALIDATION_ERROR
  whose details name the field (`{"fields": [{"field": "displayName", ...}]}`);
* the OpenAPI schema shows the rule (`pattern`, `minLength`, `maxLength`, `description`), also
  where the type sits inside a list or as a mapping's key (`audifi_kit.http.fields` teaches
  Litestar to read the `Meta` there, where on its own it reads one only on a struct's field);
* `check(Type, value, field=...)` applies the very same rule where a value reaches a domain
  some other way, so the schema, the decoder and the domain cannot disagree.

Why every client text needs one: a display name with a NUL character was accepted, stored as
an event, and PostgreSQL refused to project it ever after (issue 9); and rules that lived only
in handlers made requests the schema allowed fail.

Query parameters: Litestar rebuilds their types from `Parameter(...)` constraints and drops a
`Meta` nested inside `X | None`, so an API declares them as
`Annotated[str | None, audifi_kit.http.fields.query_parameter(Type)]`.

Patterns are read by two regex dialects: Python's `re` (msgspec searches with it) and ECMA-262
(JSON Schema: client generators, fuzzers). Each pattern starts with `^` and ends with
`(?![\\s\\S])` ("no character follows"), not `$`: Python's `$` also matches before a final
newline, which would let `"name\\n"` through. No escape in them is one ECMA's `u` mode refuses.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args

import msgspec

from audifi_kit.errors import ValidationFailed

END = r"(?![\s\S])"
# Unicode's control characters (category Cc): C0, DEL and C1. PostgreSQL refuses NUL in text;
# the others break single-line rendering, logs and mail headers.
CONTROL = r"\x00-\x1f\x7f-\x9f"
# Multi-line text keeps tab, line feed and carriage return.
CONTROL_BUT_LINE_BREAKS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"


def text_type(
    pattern: str,
    *,
    max_length: int,
    min_length: int | None = None,
    description: str,
    examples: list[str] | None = None,
) -> Any:
    """A string type refused outside `pattern` (anchored here) and the length bounds."""
    rule: dict[str, Any] = {
        "pattern": f"^(?:{pattern}){END}",
        "max_length": max_length,
        "description": description,
    }
    if min_length:
        rule["min_length"] = min_length
    meta = msgspec.Meta(**rule, examples=examples) if examples else msgspec.Meta(**rule)
    return Annotated[str, meta]


def SingleLineText(max_length: int, *, min_length: int = 0, description: str | None = None) -> Any:
    """One line of text of at most `max_length` characters, no control character."""
    rule = f"one line of at most {max_length} characters, without control characters"
    return text_type(
        f"[^{CONTROL}]*",
        max_length=max_length,
        min_length=min_length,
        description=f"{description} ({rule})" if description else rule.capitalize(),
    )


def MultiLineText(max_length: int, *, min_length: int = 0, description: str | None = None) -> Any:
    """Text that may have line breaks and tabs, but no other control character."""
    rule = f"at most {max_length} characters; line breaks and tabs, no other control characters"
    return text_type(
        f"[^{CONTROL_BUT_LINE_BREAKS}]*",
        max_length=max_length,
        min_length=min_length,
        description=f"{description} ({rule})" if description else rule.capitalize(),
    )


def ListOf(item_type: Any, *, max_length: int, description: str | None = None) -> Any:
    """A list of at most `max_length` items of `item_type`."""
    meta = msgspec.Meta(max_length=max_length, description=description)
    return Annotated[list[item_type], meta]  # type: ignore[valid-type]


def MappingOf(
    key_type: Any, value_type: Any, *, max_length: int, description: str | None = None
) -> Any:
    """An object of at most `max_length` entries whose names are `key_type` texts."""
    key = rule_of(key_type)
    names = {"pattern": key.pattern, "maxLength": key.max_length}
    if key.min_length:
        names["minLength"] = key.min_length
    # JSON Schema has no words in msgspec's Meta for a dict's key rule or size: they go in as
    # schema extras (`extra_json_schema["extra"]` is where Litestar reads them).
    extra = {"propertyNames": names, "maxProperties": max_length}
    meta = msgspec.Meta(
        max_length=max_length, description=description, extra_json_schema={"extra": extra}
    )
    return Annotated[dict[key_type, value_type], meta]  # type: ignore[valid-type]


# --- e-mail -------------------------------------------------------------------------------


def _any_case(word: str) -> str:
    # ECMA-262 has no inline (?i): each letter gets both cases.
    return "".join(f"[{c.upper()}{c}]" for c in word)


_ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"  # RFC 5322 §3.2.3
# A DNS label (RFC 1123), never with "--" in its 3rd and 4th characters: RFC 5890 keeps those
# for IDNA ("xn--"), and an A-label must then decode as IDNA, which no pattern can check.
_LABEL = r"(?![A-Za-z0-9-]{2}--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# Special-use names (RFC 6761, 6762, 7686) have no globally deliverable mail.
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")
_SPECIAL = "|".join(_any_case(d) for d in SPECIAL_USE_DOMAINS)
_TLD = rf"(?!(?:{_SPECIAL}){END})[A-Za-z]{{2,63}}"

EMAIL_MAX_LENGTH = 254  # RFC 5321 §4.5.3.1.3 with errata 1690
EmailAddress = text_type(
    rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@(?:{_LABEL}\.)+{_TLD}",
    max_length=EMAIL_MAX_LENGTH,
    description=(
        "An e-mail address: an ASCII dot-atom local part, '@', a domain of DNS labels under a "
        "letters-only top-level domain; not under a special-use domain ("
        + ", ".join(f".{d}" for d in SPECIAL_USE_DOMAINS)
        + "). Either case: letters' case does not tell two accounts apart."
    ),
    examples=["fan@example.com"],
)

# --- wallets ------------------------------------------------------------------------------

_EVM = "0x[0-9a-fA-F]{40}"
_BASE58 = "[1-9A-HJ-NP-Za-km-z]"
_SOLANA = f"{_BASE58}{{32,44}}"

EvmAddress = text_type(
    _EVM,
    max_length=42,
    description="An EVM address: 0x and 40 hex digits, either case (an EIP-55 checksum is not "
    "required); answered in its checksummed form",
    examples=["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"],
)
TxHash = text_type(
    "0x[0-9a-fA-F]{64}",
    max_length=66,
    description="An EVM transaction hash: 0x and 64 hex digits",
    examples=["0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060"],
)
SolanaAddress = text_type(
    _SOLANA,
    max_length=44,
    description="A Solana address: the base58 text of a 32-byte ed25519 public key (32 to 44 "
    "base58 characters; a text that does not decode to exactly 32 bytes is refused with 400)",
    examples=["9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"],
)
WalletAddress = text_type(
    f"{_EVM}|{_SOLANA}",
    max_length=44,
    description="A wallet address: EVM (0x and 40 hex digits, either case, checksum not "
    "required) or Solana (base58 of a 32-byte ed25519 public key: 32 to 44 base58 characters; "
    "one that does not decode to exactly 32 bytes is refused with 400)",
    examples=["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"],
)

# --- identifiers, codes and tokens --------------------------------------------------------

_HEX = "[0-9a-fA-F]"
UuidText = text_type(
    f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}",
    max_length=36,
    description="A UUID in its 8-4-4-4-12 hex form, either case",
    examples=["0b7f3a52-3c44-4d0e-9d7c-5a0e8f1e2c11"],
)
TotpCode = text_type(
    "[0-9]{6}",
    max_length=6,
    description="A 6-digit TOTP code (RFC 6238)",
    examples=["123456"],
)
Token = text_type(
    "[A-Za-z0-9._~-]+",
    max_length=512,
    description="An opaque token as the API issued it (URL-safe characters)",
)

# --- cursors ------------------------------------------------------------------------------

# The cursor of every paged list (see `audifi_kit.paging`, which reads and writes it): base64url
# of 24 bytes, a time in microseconds then an id. "A" is six zero bits and [A-Za-f] a value
# under 32, so the first 7 bits are zero and every text allowed names a time `datetime` holds.
Cursor = text_type(
    "A[A-Za-f][A-Za-z0-9_-]{30}",
    min_length=32,
    max_length=32,
    description="Where the page starts: the `nextCursor` of the page before (opaque)",
)


# --- use ----------------------------------------------------------------------------------


def rule_of(field_type: Any) -> msgspec.Meta:
    """The rule a type made here carries (its `pattern`, `min_length`, `max_length`, ...)."""
    found = next((m for m in get_args(field_type)[1:] if isinstance(m, msgspec.Meta)), None)
    if found is None:
        raise TypeError(f"{field_type!r} is not a type made by audifi_kit.fields")
    return found


def check(field_type: Any, value: Any, *, field: str) -> Any:
    """`value` when `field_type` allows it; else ValidationFailed naming `field`, as the
    decoder would have answered. For domains that must refuse what no request may carry."""
    try:
        return msgspec.convert(value, field_type)
    except msgspec.ValidationError as exc:
        raise ValidationFailed(
            "Request validation failed",
            details={"fields": [{"field": field, "message": str(exc)}]},
        ) from None


__all__ = [
    "CONTROL",
    "CONTROL_BUT_LINE_BREAKS",
    "EMAIL_MAX_LENGTH",
    "END",
    "SPECIAL_USE_DOMAINS",
    "Cursor",
    "EmailAddress",
    "EvmAddress",
    "ListOf",
    "MappingOf",
    "MultiLineText",
    "SingleLineText",
    "SolanaAddress",
    "Token",
    "TotpCode",
    "UuidText",
    "WalletAddress",
    "check",
    "rule_of",
    "text_type",
]
