"""The values every service's aggregates share: currency codes, amounts in minor units, user
ids, instants, and the refusal that names the field a client sent wrong.

Every rule here is applied inside a domain, whatever the caller (an HTTP body, another
service's event, a webhook), so a value a ledger, Stripe or a contract cannot take is never
recorded. Field names are the API's camelCase names: the client sees the field it sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from audifi_kit.errors import ValidationFailed
from audifi_kit.fields import UuidText, check, text_type

Currency = text_type(
    "[A-Za-z]{3}",
    min_length=3,
    max_length=3,
    description="An ISO 4217 currency code (3 letters, either case; answered upper-case)",
    examples=["USD"],
)

# JSON's exact integers end at 2**53 (RFC 8259 §6): an amount above it would reach a JavaScript
# client changed.
MAX_SAFE_INTEGER = 2**53 - 1


def invalid(field: str, message: str) -> ValidationFailed:
    """The 400 a client sees for `field`, shaped as the kit's decoder answers."""
    return ValidationFailed(
        "Request validation failed", details={"fields": [{"field": field, "message": message}]}
    )


def currency_code(value: Any, *, field: str = "currency") -> str:
    """`value` as an upper-case ISO 4217 code."""
    return str(check(Currency, value, field=field)).upper()


# ISO 4217 currencies whose minor unit is not the hundredth (every other one has two decimals).
_NO_DECIMALS = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()
)
_THREE_DECIMALS = frozenset("BHD IQD JOD KWD LYD OMR TND".split())


def minor_unit_exponent(currency: str) -> int:
    """How many decimals a currency's minor unit has: 2 for USD (cents), 0 for JPY, 3 for KWD.
    One unit of the currency is `10 ** minor_unit_exponent(currency)` minor units."""
    return 0 if currency in _NO_DECIMALS else 3 if currency in _THREE_DECIMALS else 2


def whole_number(value: Any, *, field: str, minimum: int, maximum: int) -> int:
    """An exact integer in [minimum, maximum]; a float (even 5.0) or a bool is refused: money
    and counts are never approximations, and True is not 1 cent."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, "Expected an integer")
    if not minimum <= value <= maximum:
        raise invalid(field, f"Expected an integer from {minimum} to {maximum}")
    return value


def user_id(value: Any, *, field: str) -> str:
    """A user's id in its canonical form (lower-case UUID text), as access tokens carry it."""
    try:
        return str(UUID(check(UuidText, value, field=field)))
    except ValidationFailed:
        raise invalid(field, "Expected a user id (a UUID)") from None


def moment(value: Any, *, field: str) -> datetime:
    """A timezone-aware instant: a naive one would be read differently by each reader."""
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise invalid(field, "Expected a date-time with a timezone")
    return value
