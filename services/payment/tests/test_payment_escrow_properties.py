"""A Coda project's escrow in the ledger, played as nft decides it (`domain/escrow.py`).

A hypothesis state machine on the in-memory application plays one project's life: investments
paid by card (booked through the order settlement or recorded directly, Stripe's fee borne by
the platform), capped at the goal; the goal reached, every milestone held; approvals in order;
a cancellation at any point before the release (refunds pro rata to what was not released, the
rounding remainder to the platform); revenue shared with the funders of a released project and
claimed cumulatively. Every notice is also redelivered, and must book nothing twice.

The test's model is nft's own arithmetic, kept apart from payment's: after every step the
escrow never pays out more than it holds, its balance is what was raised less what left it,
the artist, the funders and the platform's accounts hold exactly what the model says, every
transaction balances, and the log verifies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from audifi_payment.application.stripe_port import ChargeView
from audifi_payment.bootstrap import in_memory
from audifi_payment.domain.accounts import (
    PLATFORM_ADJUSTMENTS,
    PLATFORM_FEES,
    PLATFORM_PROJECT_REVENUE,
    STRIPE_CLEARING,
    STRIPE_FEES,
    ZERO,
    Balance,
    project_escrow,
    user_available,
)
from audifi_payment.domain.charges import STRIPE_CHARGE
from audifi_payment.domain.escrow import (
    FUNDING_KIND,
    funding_legs,
    milestone_hold_id,
    milestone_hold_legs,
    payout_id,
    payout_legs,
    refund_id,
    refund_legs,
    remainder_id,
    remainder_legs,
)
from audifi_payment.domain.ledger import (
    Direction,
    InsufficientFunds,
    Leg,
    TransactionStatus,
    totals_by_account,
    transaction_id_for,
)
from audifi_payment.domain.order import PaymentOutcome, Product
from audifi_payment.ledger_verify import verify_application
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

USD = "USD"
WHOLE = 10_000
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ARTIST = "00000000-0000-4000-8000-00000000a000"
FUNDERS = [f"00000000-0000-4000-8000-00000000f00{i}" for i in range(3)]

FUNDING, IN_PROGRESS, RELEASED, CANCELLED = "funding", "in_progress", "released", "cancelled"


def debits(legs: list[Leg] | tuple[Leg, ...]) -> int:
    return sum(leg.amount for leg in legs if leg.direction == Direction.DEBIT)


def credits(legs: list[Leg] | tuple[Leg, ...]) -> int:
    return sum(leg.amount for leg in legs if leg.direction == Direction.CREDIT)


def net_by_account(legs: list[Leg]) -> dict[str, int]:
    """Each account's credits less its debits in these legs."""
    return {a: c - d for a, (d, c) in totals_by_account(legs).items()}


# --- the leg builders ------------------------------------------------------------------------


def test_a_funding_charge_puts_the_whole_gross_in_escrow_and_the_platform_bears_the_fee() -> None:
    legs = funding_legs(project_id="p-1", gross=10_000, fee=320)

    assert debits(legs) == credits(legs) == 10_320
    assert net_by_account(legs) == {
        STRIPE_CLEARING: -10_000,
        project_escrow("p-1"): 10_000,
        STRIPE_FEES: 320,
        PLATFORM_FEES: -320,
    }
    assert not [leg for leg in legs if leg.account.startswith("user:")]


def test_a_funding_charge_without_a_fee_has_no_fee_legs() -> None:
    legs = funding_legs(project_id="p-1", gross=500, fee=0)

    assert net_by_account(legs) == {STRIPE_CLEARING: -500, project_escrow("p-1"): 500}


def test_a_fee_of_the_whole_charge_still_escrows_the_whole_charge() -> None:
    legs = funding_legs(project_id="p-1", gross=77, fee=77)

    assert net_by_account(legs)[project_escrow("p-1")] == 77
    assert net_by_account(legs)[PLATFORM_FEES] == -77


@pytest.mark.parametrize(("gross", "fee"), [(0, 0), (-5, 0), (100, 101), (100, -1), (0, -1)])
def test_an_impossible_funding_charge_is_refused(gross: int, fee: int) -> None:
    with pytest.raises(ValueError):
        funding_legs(project_id="p-1", gross=gross, fee=fee)


def test_a_milestone_hold_takes_the_platform_fee_from_the_payout() -> None:
    legs = milestone_hold_legs(
        project_id="p-1", artist_id=ARTIST, payout=10_001, platform_fee_bps=250
    )

    fee = 10_001 * 250 // WHOLE
    assert fee == 250
    assert net_by_account(legs) == {
        project_escrow("p-1"): -10_001,
        PLATFORM_FEES: fee,
        user_available(ARTIST): 10_001 - fee,
    }


def test_a_milestone_hold_omits_empty_legs() -> None:
    no_fee = milestone_hold_legs(project_id="p", artist_id=ARTIST, payout=99, platform_fee_bps=0)
    all_fee = milestone_hold_legs(
        project_id="p", artist_id=ARTIST, payout=99, platform_fee_bps=WHOLE
    )
    rounded_away = milestone_hold_legs(
        project_id="p", artist_id=ARTIST, payout=99, platform_fee_bps=100
    )  # 99 * 1 % rounds down to 0

    assert net_by_account(no_fee) == {project_escrow("p"): -99, user_available(ARTIST): 99}
    assert net_by_account(all_fee) == {project_escrow("p"): -99, PLATFORM_FEES: 99}
    assert net_by_account(rounded_away) == {project_escrow("p"): -99, user_available(ARTIST): 99}
    assert all(leg.amount > 0 for leg in no_fee + all_fee + rounded_away)


@pytest.mark.parametrize(("payout", "bps"), [(0, 100), (-1, 100), (100, -1), (100, WHOLE + 1)])
def test_an_impossible_milestone_hold_is_refused(payout: int, bps: int) -> None:
    with pytest.raises(ValueError):
        milestone_hold_legs(project_id="p", artist_id=ARTIST, payout=payout, platform_fee_bps=bps)


def test_refunds_remainders_and_payouts_move_one_amount_between_two_accounts() -> None:
    assert net_by_account(refund_legs(project_id="p", account_id=FUNDERS[0], amount=7)) == {
        project_escrow("p"): -7,
        user_available(FUNDERS[0]): 7,
    }
    assert net_by_account(remainder_legs(project_id="p", amount=2)) == {
        project_escrow("p"): -2,
        PLATFORM_ADJUSTMENTS: 2,
    }
    assert net_by_account(payout_legs(account_id=FUNDERS[1], amount=9)) == {
        PLATFORM_PROJECT_REVENUE: -9,
        user_available(FUNDERS[1]): 9,
    }


def test_the_ids_are_named_by_the_facts_and_differ_between_facts() -> None:
    assert milestone_hold_id("p", 1) == milestone_hold_id("p", 1)
    ids = {
        milestone_hold_id("p", 1),
        milestone_hold_id("p", 2),
        milestone_hold_id("q", 1),
        refund_id("p", "i-1"),
        refund_id("p", "i-2"),
        refund_id("q", "i-1"),
        remainder_id("p"),
        remainder_id("q"),
        payout_id("i-1", 10),
        payout_id("i-1", 11),
        payout_id("i-2", 10),
    }
    assert len(ids) == 11


@settings(max_examples=300)
@given(
    gross=st.integers(1, 10**12),
    fee_pct=st.integers(0, 100),
    payout=st.integers(1, 10**12),
    bps=st.integers(0, WHOLE),
)
def test_every_escrow_booking_balances(gross: int, fee_pct: int, payout: int, bps: int) -> None:
    fee = gross * fee_pct // 100
    bookings = [
        funding_legs(project_id="p", gross=gross, fee=fee),
        milestone_hold_legs(project_id="p", artist_id=ARTIST, payout=payout, platform_fee_bps=bps),
        refund_legs(project_id="p", account_id=FUNDERS[0], amount=gross),
        remainder_legs(project_id="p", amount=gross),
        payout_legs(account_id=FUNDERS[0], amount=gross),
    ]
    for legs in bookings:
        assert debits(legs) == credits(legs)
        assert all(leg.amount > 0 for leg in legs)
    hold = net_by_account(bookings[1])
    assert hold[project_escrow("p")] == -payout
    assert hold.get(PLATFORM_FEES, 0) == payout * bps // WHOLE


# --- the escrow's limit ---------------------------------------------------------------------


def test_a_hold_the_escrow_does_not_cover_is_refused_and_books_nothing() -> None:
    app = in_memory()
    app.record(
        currency=USD,
        legs=funding_legs(project_id="p", gross=100, fee=3),
        event_source=STRIPE_CHARGE,
    )

    with pytest.raises(InsufficientFunds):
        app.hold_milestones(
            "p", artist_id=ARTIST, payouts=[101], currency=USD, platform_fee_bps=500
        )
    with pytest.raises(InsufficientFunds):
        app.refund_project(
            "p",
            refunds=[("i-1", FUNDERS[0], 60), ("i-2", FUNDERS[1], 41)],
            remainder=0,
            currency=USD,
        )

    report = verify_application(app)
    assert report.ok, report.problems
    escrow = app.guarded_balance(project_escrow("p"), USD)
    assert escrow == Balance(credits_posted=100, debits_posted=60)  # the first refund only
    assert app.guarded_balance(user_available(ARTIST), USD) == ZERO


# --- a project's life, as nft decides it ----------------------------------------------------


@dataclass
class Investment:
    funder: str
    amount: int
    fee: int
    charge_id: str
    via_order: bool
    refunded: int = 0
    claimed: int = 0


class ProjectEscrowMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.app = in_memory()
        self.project_id = "00000000-0000-4000-8000-000000000c0d"
        self.escrow = project_escrow(self.project_id)
        self.status = FUNDING
        self.goal = 0
        self.payouts: list[int] = []
        self.platform_fee_bps = 0
        self.share_bps = 0
        self.held = False
        self.investments: dict[str, Investment] = {}
        self.raised = 0
        self.stripe_fees = 0
        self.released_count = 0
        self.released = 0
        self.refunded = 0
        self.remainder = 0
        self.shared = 0
        self.claims: list[tuple[str, int, int]] = []  # investment, amount, claimed total
        self.cancellation: tuple[list[tuple[str, str, int]], int] | None = None
        self.booked: set[UUID] = set()  # every transaction the ledger should hold, once

    # --- nft's arithmetic ------------------------------------------------------------------

    @property
    def left(self) -> int:
        return self.goal - self.raised

    def fee_of(self, payout: int) -> int:
        return payout * self.platform_fee_bps // WHOLE

    def unreleased_payouts(self) -> list[int]:
        return self.payouts[self.released_count :]

    def claimable(self, investment_id: str) -> int:
        i = self.investments[investment_id]
        return self.shared * i.amount // self.raised - i.claimed

    # --- the project opens ------------------------------------------------------------------

    @initialize(
        goal=st.one_of(st.integers(1, 60), st.integers(61, 10**7)),
        data=st.data(),
        platform_fee_bps=st.integers(0, 2000),
        share_bps=st.integers(0, WHOLE),
    )
    def open_project(
        self, goal: int, data: st.DataObject, platform_fee_bps: int, share_bps: int
    ) -> None:
        """The artist's goal split into 1-4 milestone payouts that add up to it."""
        count = data.draw(st.integers(1, min(4, goal)), label="milestones")
        cuts = data.draw(
            st.lists(st.integers(1, goal - 1), min_size=count - 1, max_size=count - 1, unique=True)
            if count > 1
            else st.just([]),
            label="cuts",
        )
        bounds = [0, *sorted(cuts), goal]
        self.goal = goal
        self.payouts = [bounds[i + 1] - bounds[i] for i in range(count)]
        self.platform_fee_bps = platform_fee_bps
        self.share_bps = share_bps
        assert sum(self.payouts) == goal and all(p > 0 for p in self.payouts)

    # --- funding ----------------------------------------------------------------------------

    @precondition(lambda self: self.status == FUNDING)
    @rule(
        funder=st.sampled_from(FUNDERS),
        small=st.integers(1, 50),
        part=st.sampled_from([50, 100, 30, 1]),
        fee_pct=st.sampled_from([3, 0, 1, 50, 100]),
        via_order=st.booleans(),
    )
    def invest(self, funder: str, small: int, part: int, fee_pct: int, via_order: bool) -> None:
        """A paid investment (a few units, or a part of what the goal leaves), capped at the
        goal; the last one reaches it, and nft's goal_reached has every milestone held."""
        amount = min(small, self.left) if part == 1 else max(1, self.left * part // 100)
        number = len(self.investments) + 1
        investment_id = str(UUID(int=0xF0F0 << 64 | number))
        investment = Investment(
            funder=funder,
            amount=amount,
            fee=amount * fee_pct // 100,
            charge_id=f"ch_{number}",
            via_order=via_order,
        )
        self.investments[investment_id] = investment
        if via_order:
            self.app.open_order(
                UUID(investment_id),
                Product("nft", FUNDING_KIND, self.project_id),
                title="An investment in a Coda project",
                quantity=1,
                unit_amount=amount,
                currency=USD,
                buyer_id=funder,
                seller_id=ARTIST,
                expires_at=NOW + timedelta(hours=1),
                at=NOW,
            )
        txn_id = self.pay(investment_id, expect=PaymentOutcome.PAID)
        self.booked.add(txn_id)
        self.raised += amount
        self.stripe_fees += investment.fee
        if self.raised == self.goal:
            self.status = IN_PROGRESS
            held = self.hold()
            self.held = True
            assert held == [milestone_hold_id(self.project_id, s) for s in range(1, len(held) + 1)]
            self.booked.update(held)

    def pay(self, investment_id: str, *, expect: PaymentOutcome) -> UUID:
        """The investment's charge booked, through its order's settlement or directly."""
        i = self.investments[investment_id]
        txn_id = transaction_id_for(STRIPE_CHARGE, i.charge_id)
        if i.via_order:
            settled = self.app.settle_order_charge(
                UUID(investment_id),
                ChargeView(
                    id=i.charge_id,
                    payment_intent_id=f"pi_{i.charge_id}",
                    status="succeeded",
                    paid=True,
                    amount=i.amount,
                    currency=USD,
                    fee=i.fee,
                    net=i.amount - i.fee,
                    amount_refunded=0,
                    created=NOW,
                ),
                platform_fee_bps=self.platform_fee_bps,
            )
            assert settled.outcome is expect
            assert settled.ledger_transaction_id == txn_id
            return txn_id
        recorded = self.app.record(
            currency=USD,
            legs=funding_legs(project_id=self.project_id, gross=i.amount, fee=i.fee),
            event_source=STRIPE_CHARGE,
            reference_id=i.charge_id,
            txn_id=txn_id,
        )
        assert recorded == txn_id
        return txn_id

    @precondition(lambda self: self.investments)
    @rule(data=st.data())
    def redeliver_a_payment(self, data: st.DataObject) -> None:
        """Stripe's notice of a paid investment again, at any point of the project."""
        investment_id = data.draw(st.sampled_from(sorted(self.investments)), label="investment")
        self.pay(investment_id, expect=PaymentOutcome.DUPLICATE)

    def hold(self) -> list[UUID]:
        return self.app.hold_milestones(
            self.project_id,
            artist_id=ARTIST,
            payouts=self.payouts,
            currency=USD,
            platform_fee_bps=self.platform_fee_bps,
        )

    @precondition(lambda self: self.held)
    @rule()
    def redeliver_goal_reached(self) -> None:
        """The goal_reached notice again, even after releases or a cancellation."""
        again = self.hold()
        assert set(again) <= self.booked

    # --- milestones -------------------------------------------------------------------------

    @precondition(
        lambda self: self.status == IN_PROGRESS and self.released_count < len(self.payouts)
    )
    @rule()
    def approve_the_next_milestone(self) -> None:
        sequence = self.released_count + 1
        assert self.app.release_milestone(self.project_id, sequence) == milestone_hold_id(
            self.project_id, sequence
        )
        self.released_count = sequence
        self.released += self.payouts[sequence - 1]

    @precondition(lambda self: self.released_count > 0)
    @rule(data=st.data())
    def redeliver_an_approval(self, data: st.DataObject) -> None:
        sequence = data.draw(st.integers(1, self.released_count), label="sequence")
        assert self.app.release_milestone(self.project_id, sequence) == milestone_hold_id(
            self.project_id, sequence
        )

    @precondition(
        lambda self: self.status == IN_PROGRESS and self.released_count == len(self.payouts)
    )
    @rule()
    def finalize(self) -> None:
        self.status = RELEASED

    # --- cancellation -----------------------------------------------------------------------

    @precondition(lambda self: self.status in (FUNDING, IN_PROGRESS))
    @rule(dice=st.integers(0, 5))
    def cancel(self, dice: int) -> None:
        """nft's cancellation: each paid investment gets `amount * unreleased // raised`
        (all of it before the goal), the rounding's remainder goes to the platform. (Only
        some draws cancel, fewer while funding, so that most projects live long enough to
        release something.)"""
        if dice != 3 and not (self.status == IN_PROGRESS and dice > 3):
            return
        unreleased = self.raised - self.released
        refunds = [
            (iid, i.funder, i.amount * unreleased // self.raised)
            for iid, i in self.investments.items()
        ]
        refunds = [r for r in refunds if r[2]]  # nft's event names the refunds that pay
        remainder = unreleased - sum(amount for _, _, amount in refunds)
        if self.status == FUNDING:
            assert remainder == 0
        assert 0 <= remainder < max(len(self.investments), 1)
        booked = self.refund(refunds, remainder)
        expected = [refund_id(self.project_id, iid) for iid, _, _ in refunds]
        expected += [remainder_id(self.project_id)] if remainder else []
        assert booked == expected
        self.booked.update(booked)
        for iid, _, amount in refunds:
            self.investments[iid].refunded = amount
            self.refunded += amount
        self.remainder = remainder
        self.cancellation = (refunds, remainder)
        self.status = CANCELLED

    def refund(self, refunds: list[tuple[str, str, int]], remainder: int) -> list[UUID]:
        return self.app.refund_project(
            self.project_id, refunds=refunds, remainder=remainder, currency=USD
        )

    @precondition(lambda self: self.cancellation is not None)
    @rule()
    def redeliver_the_cancellation(self) -> None:
        assert self.cancellation is not None
        again = self.refund(*self.cancellation)
        assert set(again) <= self.booked

    # --- revenue shared with the funders ----------------------------------------------------

    @precondition(lambda self: self.status == RELEASED)
    @rule(amount=st.integers(1, 10**7))
    def book_revenue(self, amount: int) -> None:
        """Revenue of the released project (outside this ledger): `shareBps` of it becomes
        claimable by the funders."""
        self.shared += amount * self.share_bps // WHOLE

    @precondition(lambda self: self.status == RELEASED and self.shared > 0)
    @rule(data=st.data())
    def claim(self, data: st.DataObject) -> None:
        can = [iid for iid in sorted(self.investments) if self.claimable(iid) > 0]
        if not can:
            return
        investment_id = data.draw(st.sampled_from(can), label="claimer")
        i = self.investments[investment_id]
        amount = self.claimable(investment_id)
        claim = (investment_id, amount, i.claimed + amount)
        txn_id = self.pay_claim(*claim)
        assert txn_id == payout_id(investment_id, i.claimed + amount)
        self.booked.add(txn_id)
        i.claimed += amount
        self.claims.append(claim)

    def pay_claim(self, investment_id: str, amount: int, claimed_total: int) -> UUID:
        return self.app.pay_project_payout(
            investment_id=investment_id,
            account_id=self.investments[investment_id].funder,
            amount=amount,
            claimed_total=claimed_total,
            currency=USD,
        )

    @precondition(lambda self: self.claims)
    @rule(data=st.data())
    def redeliver_a_claim(self, data: st.DataObject) -> None:
        claim = data.draw(st.sampled_from(self.claims), label="claim")
        assert self.pay_claim(*claim) in self.booked

    # --- what must hold after every step ----------------------------------------------------

    @invariant()
    def the_escrow_never_pays_out_more_than_it_holds(self) -> None:
        escrow = self.app.guarded_balance(self.escrow, USD)
        assert escrow.debits_posted + escrow.debits_pending <= escrow.credits_posted
        assert escrow.credits_pending == 0
        assert escrow.available >= 0
        # What it holds (available or held for the artist) is what nft says it escrows.
        assert escrow.available + escrow.debits_pending == (
            self.raised - self.released - self.refunded - self.remainder
        )
        assert escrow.credits_posted == self.raised
        assert escrow.debits_posted == self.released + self.refunded + self.remainder
        pending = sum(self.unreleased_payouts()) if self.held and not self.cancellation else 0
        assert escrow.debits_pending == pending
        if self.cancellation is not None:
            assert escrow.available == escrow.debits_pending == 0

    @invariant()
    def the_artist_has_the_released_payouts_less_the_platform_fee(self) -> None:
        artist = self.app.guarded_balance(user_available(ARTIST), USD)
        released = self.payouts[: self.released_count]
        assert artist.available == sum(p - self.fee_of(p) for p in released)
        assert artist.debits_posted == artist.debits_pending == 0
        held = self.unreleased_payouts() if self.held and not self.cancellation else []
        assert artist.credits_pending == sum(p - self.fee_of(p) for p in held)

    @invariant()
    def every_funder_has_their_refunds_and_claims(self) -> None:
        for funder in FUNDERS:
            mine = [i for i in self.investments.values() if i.funder == funder]
            balance = self.app.guarded_balance(user_available(funder), USD)
            expected = sum(i.refunded + i.claimed for i in mine)
            assert balance.available == balance.credits_posted == expected
            assert balance.debits_posted == balance.debits_pending == balance.credits_pending == 0
            if self.status == CANCELLED and self.released_count == 0:
                assert expected == sum(i.amount for i in mine)  # all of it back

    @invariant()
    def the_transactions_balance_and_each_is_booked_once(self) -> None:
        for txn_id in self.booked:
            txn = self.app.ledger_transaction(txn_id)
            assert txn.currency == USD
            assert debits(txn.legs) == credits(txn.legs) > 0
        holds = [milestone_hold_id(self.project_id, s) for s in range(1, len(self.payouts) + 1)]
        if self.held:
            for sequence, hold in enumerate(holds, start=1):
                status = self.app.ledger_transaction(hold).status
                if sequence <= self.released_count:
                    assert status == TransactionStatus.POSTED
                elif self.cancellation is not None:
                    assert status == TransactionStatus.VOIDED
                else:
                    assert status == TransactionStatus.PENDING

    @invariant()
    def the_log_verifies_and_the_platform_and_stripe_accounts_agree(self) -> None:
        report = verify_application(self.app)
        assert report.ok, report.problems
        assert report.transactions == len(self.booked)  # redeliveries booked nothing

        def balance(account: str) -> Balance:
            return report.balances.get((account, USD), ZERO)

        released = self.payouts[: self.released_count]
        held = self.unreleased_payouts() if self.held and not self.cancellation else []
        assert balance(PLATFORM_FEES) == Balance(
            debits_pending=0,
            debits_posted=self.stripe_fees,  # Stripe's fee on every investment, borne here
            credits_pending=sum(self.fee_of(p) for p in held),
            credits_posted=sum(self.fee_of(p) for p in released),
        )
        assert balance(STRIPE_CLEARING) == Balance(debits_posted=self.raised)
        assert balance(STRIPE_FEES) == Balance(credits_posted=self.stripe_fees)
        assert balance(PLATFORM_ADJUSTMENTS) == Balance(credits_posted=self.remainder)
        claimed = sum(amount for _, amount, _ in self.claims)
        assert balance(PLATFORM_PROJECT_REVENUE) == Balance(debits_posted=claimed)
        assert claimed <= self.shared
        # nft's conservation: raised = released + refunded + remainder + escrowed.
        escrowed = balance(self.escrow).credits_posted - balance(self.escrow).debits_posted
        assert self.raised == self.released + self.refunded + self.remainder + escrowed


ProjectEscrowMachine.TestCase.settings = settings(
    max_examples=80, stateful_step_count=40, deadline=None
)
TestProjectEscrow = ProjectEscrowMachine.TestCase
