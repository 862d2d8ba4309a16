"""Splitting an amount of minor units between recipients by basis points, losing no cent.

The rule (the issue's "the remainder goes to the rule's owner", made precise): every recipient
gets floor(amount * bps / 10,000); the cents those floors leave over (fewer than the number of
recipients) all go to `remainder_to`, the rule's owner, who need not be a recipient. Nobody is
ever paid more than their exact share except the owner, so a recipient can check their share
with one division, and the sum is always exactly `amount`. (The largest-remainder method's
first step, the floors, without its second: the left-over cents are not spread by fractional
parts, they go to one party the rule names.)
"""

from __future__ import annotations

from collections.abc import Sequence

WHOLE = 10_000  # basis points in 100 %


def allocate(
    amount: int, shares: Sequence[tuple[str, int]], remainder_to: str
) -> list[tuple[str, int]]:
    """Each recipient's part of `amount`, in the order of `shares`; the owner's remainder is
    added to its own share, or follows as one more line when the owner is not a recipient
    (only when there is a remainder: a zero line books nothing).

    `shares` are (recipient, basis points) with distinct recipients and basis points summing
    to 10,000; `amount` is a non-negative integer. Anything else is a programming error here:
    rules are validated when they are defined (`SplitRule`).
    """
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ValueError(f"amount must be a non-negative integer: {amount!r}")
    recipients = [recipient for recipient, _ in shares]
    if len(set(recipients)) != len(recipients):
        raise ValueError("recipients must be distinct")
    if any(isinstance(bps, bool) or not isinstance(bps, int) or bps < 0 for _, bps in shares):
        raise ValueError("basis points must be non-negative integers")
    if sum(bps for _, bps in shares) != WHOLE:
        raise ValueError(f"basis points must sum to {WHOLE}")

    parts = [(recipient, amount * bps // WHOLE) for recipient, bps in shares]
    remainder = amount - sum(part for _, part in parts)
    if remainder == 0:
        return parts
    if remainder_to in recipients:
        return [(r, part + remainder if r == remainder_to else part) for r, part in parts]
    return [*parts, (remainder_to, remainder)]
