"""The values payment's aggregates share: the kit's (`audifi_kit.values`), named here."""

from audifi_kit.values import (
    MAX_SAFE_INTEGER,
    Currency,
    currency_code,
    invalid,
    moment,
    user_id,
    whole_number,
)

__all__ = [
    "MAX_SAFE_INTEGER",
    "Currency",
    "currency_code",
    "invalid",
    "moment",
    "user_id",
    "whole_number",
]
