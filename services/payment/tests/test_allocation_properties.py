"""Splitting an amount never creates or loses a cent: every recipient gets the floor of their
exact share and the owner takes what the floors leave over."""

from __future__ import annotations

from fractions import Fraction

import pytest
from audifi_payment.domain.allocation import WHOLE, allocate
from hypothesis import given, settings
from hypothesis import strategies as st

OWNER = "owner"


@st.composite
def basis_points(draw: st.DrawFn) -> list[tuple[str, int]]:
    """1 to 20 distinct recipients (the owner sometimes among them), summing to 10,000."""
    n = draw(st.integers(1, 20))
    cuts = sorted(
        draw(st.lists(st.integers(1, WHOLE - 1), min_size=n - 1, max_size=n - 1, unique=True))
    )
    bps = [b - a for a, b in zip([0, *cuts], [*cuts, WHOLE], strict=True)]
    names = [f"r{i}" for i in range(n)]
    if draw(st.booleans()):
        names[draw(st.integers(0, n - 1))] = OWNER
    return list(zip(names, bps, strict=True))


amounts = st.integers(0, 2**53 - 1) | st.integers(0, 10_000)


@settings(max_examples=2000)
@given(amount=amounts, shares=basis_points())
def test_the_parts_sum_to_the_amount_and_stay_within_a_cent_per_recipient(
    amount: int, shares: list[tuple[str, int]]
) -> None:
    parts = allocate(amount, shares, remainder_to=OWNER)

    assert sum(part for _, part in parts) == amount
    assert all(part >= 0 for _, part in parts)
    got = dict(parts)
    assert len(got) == len(parts)  # one line per party
    n = len(shares)
    for recipient, bps in shares:
        exact = Fraction(amount * bps, WHOLE)
        if recipient == OWNER:
            assert exact - 1 < got[recipient] < exact + n
        else:  # never more than the exact share, never a cent less than its floor
            assert got[recipient] == amount * bps // WHOLE
    extra = set(got) - {r for r, _ in shares}
    assert extra <= {OWNER}
    if extra:
        assert 0 < got[OWNER] < n


@settings(max_examples=300)
@given(shares=basis_points())
def test_nothing_to_split_gives_everyone_zero_and_the_owner_no_line(
    shares: list[tuple[str, int]],
) -> None:
    assert allocate(0, shares, remainder_to=OWNER) == [(r, 0) for r, _ in shares]


@settings(max_examples=300)
@given(amount=amounts, shares=basis_points())
def test_the_same_split_twice_gives_the_same_parts_in_the_rule_order(
    amount: int, shares: list[tuple[str, int]]
) -> None:
    first = allocate(amount, shares, remainder_to=OWNER)
    assert first == allocate(amount, list(shares), remainder_to=OWNER)
    assert [r for r, _ in first][: len(shares)] == [r for r, _ in shares]


def test_seventy_thirty_of_an_odd_amount_gives_the_left_over_cent_to_the_owner() -> None:
    assert allocate(1001, [("artist", 7000), ("producer", 3000)], remainder_to="artist") == [
        ("artist", 701),
        ("producer", 300),
    ]
    assert allocate(100, [("a", 3333), ("b", 3333), ("c", 3334)], remainder_to="host") == [
        ("a", 33),
        ("b", 33),
        ("c", 33),
        ("host", 1),
    ]


@pytest.mark.parametrize(
    ("amount", "shares"),
    [
        (-1, [("a", WHOLE)]),
        (1.5, [("a", WHOLE)]),
        (True, [("a", WHOLE)]),
        (100, [("a", 5000), ("b", 4999)]),
        (100, [("a", 5000), ("a", 5000)]),
    ],
)
def test_an_amount_or_rule_that_cannot_be_split_exactly_is_refused(
    amount: object, shares: list[tuple[str, int]]
) -> None:
    with pytest.raises(ValueError):
        allocate(amount, shares, remainder_to="a")  # type: ignore[arg-type]
