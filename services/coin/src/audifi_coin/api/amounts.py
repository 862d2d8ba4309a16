"""Amounts in base units as requests give them and answers show them: an integer or a string
of decimal digits in (wei and 18-decimal coins exceed JSON's exact integers), decimal text out.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from audifi_kit.fields import text_type
from audifi_kit.values import invalid

MAX_UINT256 = 2**256 - 1

Digits = text_type(
    "[0-9]{1,78}",
    max_length=78,
    description="A whole amount in base units, as a string of decimal digits",
    examples=["5000000"],
)
# An amount in base units: an integer, or a string of digits (wei exceed JSON's exact integers).
BaseUnits = Annotated[int, msgspec.Meta(ge=0)] | Digits


def base_units(value: int | str, *, field: str, minimum: int = 0) -> int:
    """An amount in base units from an integer or a string of digits (the decoder refused
    floats, bools, negative numbers and other text), within a uint256."""
    amount = int(value)
    if not minimum <= amount <= MAX_UINT256:
        raise invalid(field, f"Expected a whole amount of base units from {minimum} to 2**256-1")
    return amount
