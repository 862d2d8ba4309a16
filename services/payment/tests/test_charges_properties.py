"""A paid charge's booking conserves every cent, whatever the amounts, fee and split."""

from __future__ import annotations

from audifi_payment.bootstrap import in_memory
from audifi_payment.domain.charges import charge_legs, late_payment_legs, platform_fee
from audifi_payment.domain.ledger import Direction
from audifi_payment.ledger_verify import verify_application
from hypothesis import given, settings
from hypothesis import strategies as st

USERS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(6)]


@st.composite
def shares(draw: st.DrawFn) -> list[tuple[str, int]]:
    recipients = draw(st.lists(st.sampled_from(USERS), min_size=1, max_size=5, unique=True))
    cuts = sorted(
        draw(
            st.lists(
                st.integers(1, 9_999),
                min_size=len(recipients) - 1,
                max_size=len(recipients) - 1,
                unique=True,
            )
        )
    )
    bounds = [0, *cuts, 10_000]
    return [(r, bounds[i + 1] - bounds[i]) for i, r in enumerate(recipients)]


charges = st.integers(1, 10**9).flatmap(
    lambda gross: st.tuples(st.just(gross), st.integers(0, gross))
)


@settings(max_examples=1500)
@given(charge=charges, bps=st.integers(0, 10_000), split=shares(), seller=st.sampled_from(USERS))
def test_a_paid_charge_is_booked_to_the_cent(charge, bps, split, seller) -> None:
    gross, fee = charge
    legs = charge_legs(gross=gross, fee=fee, platform_fee_bps=bps, shares=split, seller=seller)
    debits = sum(leg.amount for leg in legs if leg.direction == Direction.DEBIT)
    credits = sum(leg.amount for leg in legs if leg.direction == Direction.CREDIT)
    assert debits == credits == gross  # the buyer's money, all of it, accounted for
    assert all(leg.amount > 0 for leg in legs)
    by_account = {}
    for leg in legs:
        by_account[leg.account] = by_account.get(leg.account, 0) + leg.amount
    taken = platform_fee(gross, fee, bps)
    assert by_account.get("stripe:fees", 0) == fee
    assert by_account.get("platform:fees", 0) == taken <= gross * bps // 10_000
    to_users = sum(a for acc, a in by_account.items() if acc.startswith("user:"))
    assert to_users == gross - fee - taken
    for recipient, part in split:  # nobody gets more than their exact share, the seller aside
        if recipient != seller:
            got = by_account.get(f"user:{recipient}:available", 0)
            assert got * 10_000 <= (gross - fee - taken) * part


@settings(max_examples=300)
@given(charge=charges)
def test_a_late_payment_is_held_whole_for_its_refund(charge) -> None:
    gross, fee = charge
    legs = late_payment_legs(gross=gross, fee=fee)
    assert sum(leg.amount for leg in legs if leg.direction == Direction.CREDIT) == gross
    assert not [leg for leg in legs if leg.account.startswith("user:")]


@settings(max_examples=200, deadline=None)
@given(
    bookings=st.lists(
        st.tuples(charges, st.integers(0, 10_000), shares(), st.sampled_from(USERS)),
        min_size=1,
        max_size=8,
    )
)
def test_booked_charges_leave_a_ledger_that_verifies(bookings) -> None:
    app = in_memory()
    for (gross, fee), bps, split, seller in bookings:
        app.record(
            currency="USD",
            legs=charge_legs(
                gross=gross, fee=fee, platform_fee_bps=bps, shares=split, seller=seller
            ),
            event_source="stripe_charge",
        )
    report = verify_application(app)
    assert report.ok, report.problems
    assert report.balances[("stripe:clearing", "USD")].debits_posted == sum(
        g for (g, _), *_ in bookings
    )
