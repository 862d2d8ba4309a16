"""The ledger's rules, pure: what a transaction must be to be recorded, the chart's limits,
two-phase holds, reversals, and the verifier catching every kind of broken log."""

from __future__ import annotations

from uuid import uuid4

import pytest
from audifi_kit.errors import Conflict, ValidationFailed
from audifi_payment.domain.accounts import (
    PLATFORM_FEES,
    STRIPE_CLEARING,
    STRIPE_FEES,
    Balance,
    flags_for,
)
from audifi_payment.domain.ledger import (
    AccountGuard,
    Direction,
    InsufficientFunds,
    LedgerTransaction,
    Leg,
    TransactionAlreadyReversed,
    TransactionNotPending,
    TransactionNotPosted,
    TransactionStatus,
    book_transaction,
    post_transaction,
    terms,
    void_transaction,
)
from audifi_payment.ledger_verify import Posted, Recorded, ReversalLinked, Voided, verify

ADA = "user:ada:available"
BOB = "user:bob:available"


def charge(amount: int = 1000, fee: int = 59) -> list[Leg]:
    """A paid charge: gross into Stripe's clearing, Stripe's fee, the net to Ada."""
    return [
        Leg(STRIPE_CLEARING, "debit", amount - fee),
        Leg(STRIPE_FEES, "debit", fee, event_source="stripe_fee"),
        Leg(ADA, "credit", amount),
    ]


def refused_field(exc: pytest.ExceptionInfo[ValidationFailed]) -> str:
    [only] = exc.value.details["fields"]
    return only["field"]


# --- what a transaction must be ------------------------------------------------------------


def test_a_balanced_transaction_gives_every_leg_its_source_and_the_currency() -> None:
    checked = terms(currency="USD", legs=charge(), event_source="stripe_charge")

    assert [(leg.account, leg.direction, leg.amount) for leg in checked.legs] == [
        (STRIPE_CLEARING, Direction.DEBIT, 941),
        (STRIPE_FEES, Direction.DEBIT, 59),
        (ADA, Direction.CREDIT, 1000),
    ]
    assert [leg.event_source for leg in checked.legs] == [
        "stripe_charge",
        "stripe_fee",
        "stripe_charge",
    ]
    assert {leg.currency for leg in checked.legs} == {"USD"}


def test_an_unbalanced_transaction_is_refused_naming_legs_and_the_difference() -> None:
    legs = [Leg(STRIPE_CLEARING, "debit", 1000), Leg(ADA, "credit", 990)]
    with pytest.raises(ValidationFailed) as refused:
        terms(currency="USD", legs=legs, event_source="stripe_charge")
    assert refused_field(refused) == "legs"
    assert "differ by 10" in refused.value.message


def test_a_transaction_mixing_currencies_is_refused() -> None:
    legs = [Leg(STRIPE_CLEARING, "debit", 1000), Leg(ADA, "credit", 1000, currency="EUR")]
    with pytest.raises(ValidationFailed) as refused:
        terms(currency="USD", legs=legs, event_source="stripe_charge")
    assert refused_field(refused) == "legs"
    assert "EUR" in refused.value.message


@pytest.mark.parametrize("amount", [1.5, 1000.0, True, 0, -1000, 2**63, "1000", None])
def test_an_amount_that_is_not_a_positive_whole_number_of_minor_units_is_refused(
    amount: object,
) -> None:
    legs = [Leg(STRIPE_CLEARING, "debit", amount), Leg(ADA, "credit", 1000)]  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed) as refused:
        terms(currency="USD", legs=legs, event_source="manual_adjustment")
    assert refused_field(refused) == "legs[0].amount"


def test_legs_that_together_overflow_a_bigint_are_refused() -> None:
    big = 2**62
    legs = [
        Leg(STRIPE_CLEARING, "debit", big),
        Leg(STRIPE_CLEARING, "debit", big),
        Leg(PLATFORM_FEES, "credit", big),
        Leg(PLATFORM_FEES, "credit", big),
    ]
    with pytest.raises(ValidationFailed) as refused:
        terms(currency="USD", legs=legs, event_source="manual_adjustment")
    assert refused_field(refused) == "legs"


@pytest.mark.parametrize(
    "account",
    [
        "user::available",
        "user:a b:available",
        "user:a:b:available",
        "user:ada:savings",
        "user:ada\x00:available",
        "platform:fee",
        "bank:ada",
        "order:",
        "",
        42,
    ],
)
def test_an_account_outside_the_chart_is_refused(account: object) -> None:
    legs = [Leg(STRIPE_CLEARING, "debit", 5), Leg(account, "credit", 5)]  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed) as refused:
        terms(currency="USD", legs=legs, event_source="manual_adjustment")
    assert refused_field(refused) == "legs[1].account"


@pytest.mark.parametrize("count", [0, 1])
def test_a_transaction_needs_two_legs(count: int) -> None:
    legs = [Leg(PLATFORM_FEES, "debit", 5)][:count]
    with pytest.raises(ValidationFailed) as refused:
        terms(currency="USD", legs=legs, event_source="manual_adjustment")
    assert refused_field(refused) == "legs"


@pytest.mark.parametrize("currency", ["usd", "US", "USDT", "U$D", 840, None])
def test_a_currency_that_is_not_an_iso_code_is_refused(currency: object) -> None:
    with pytest.raises(ValidationFailed) as refused:
        terms(currency=currency, legs=charge(), event_source="stripe_charge")
    assert refused_field(refused) == "currency"


def test_a_direction_other_than_debit_or_credit_is_refused() -> None:
    legs = [Leg(STRIPE_CLEARING, "withdraw", 5), Leg(ADA, "credit", 5)]
    with pytest.raises(ValidationFailed) as refused:
        terms(currency="USD", legs=legs, event_source="manual_adjustment")
    assert refused_field(refused) == "legs[0].direction"


@pytest.mark.parametrize("source", ["", "Stripe", "stripe charge", "x" * 65, None])
def test_an_event_source_that_is_not_a_plain_name_is_refused(source: object) -> None:
    with pytest.raises(ValidationFailed) as refused:
        terms(currency="USD", legs=charge(), event_source=source)
    assert refused_field(refused) == "eventSource"


def test_only_a_users_balances_are_limited() -> None:
    assert flags_for(ADA).debits_must_not_exceed_credits
    assert flags_for("user:ada:pending").debits_must_not_exceed_credits
    for hot in (PLATFORM_FEES, STRIPE_CLEARING, STRIPE_FEES, "order:o-1", "platform:disputes"):
        assert not flags_for(hot).flagged


def test_the_same_request_twice_has_the_same_terms_and_another_does_not() -> None:
    first = terms(currency="USD", legs=charge(), event_source="stripe_charge", reference_id="ch_1")
    again = terms(currency="USD", legs=charge(), event_source="stripe_charge", reference_id="ch_1")
    other = terms(currency="USD", legs=charge(999), event_source="stripe_charge")
    assert first == again
    assert first != other


# --- balances and limits -----------------------------------------------------------------


def funded_guard(credit: int) -> AccountGuard:
    guard = AccountGuard.open(ADA, "USD")
    guard.book(uuid4(), 0, credit, pending=False)
    return guard


def test_a_user_cannot_spend_more_than_was_credited() -> None:
    guard = funded_guard(100)
    guard.book(uuid4(), 100, 0, pending=False)
    with pytest.raises(InsufficientFunds) as refused:
        guard.book(uuid4(), 1, 0, pending=False)
    assert refused.value.code == "INSUFFICIENT_FUNDS"
    assert refused.value.status_code == 409
    assert guard.balance == Balance(debits_posted=100, credits_posted=100)


def test_a_held_debit_counts_against_the_limit_and_a_held_credit_does_not() -> None:
    guard = funded_guard(100)
    guard.book(uuid4(), 70, 0, pending=True)
    assert guard.balance.available == 30
    with pytest.raises(InsufficientFunds):
        guard.book(uuid4(), 31, 0, pending=False)
    guard.book(uuid4(), 0, 500, pending=True)
    with pytest.raises(InsufficientFunds):
        guard.book(uuid4(), 31, 0, pending=False)


def test_a_refused_transaction_changes_none_of_its_guards() -> None:
    ada, bob = funded_guard(50), AccountGuard.open(BOB, "USD")
    # Ada pays Bob 10 (fine for Ada) while Bob pays the platform 30 (Bob has nothing).
    txn = LedgerTransaction.open(
        uuid4(),
        terms(
            currency="USD",
            legs=[
                Leg(ADA, "debit", 10),
                Leg(BOB, "credit", 10),
                Leg(BOB, "debit", 30),
                Leg(PLATFORM_FEES, "credit", 30),
            ],
            event_source="split",
        ),
    )
    with pytest.raises(InsufficientFunds):
        book_transaction(txn, {ADA: ada, BOB: bob})
    assert ada.balance == Balance(credits_posted=50)
    assert bob.balance == Balance()


# --- two phases ------------------------------------------------------------------------------


def held(amount: int) -> tuple[LedgerTransaction, AccountGuard]:
    guard = funded_guard(1000)
    txn = LedgerTransaction.open(
        uuid4(),
        terms(
            currency="USD",
            legs=[Leg(ADA, "debit", amount), Leg("order:o-1", "credit", amount)],
            event_source="split",
            pending=True,
        ),
    )
    book_transaction(txn, {ADA: guard})
    return txn, guard


def test_posting_a_hold_turns_it_into_a_posting_once() -> None:
    txn, guard = held(300)
    assert guard.balance == Balance(debits_pending=300, credits_posted=1000)

    post_transaction(txn, {ADA: guard})

    assert txn.status == TransactionStatus.POSTED
    assert guard.balance == Balance(debits_posted=300, credits_posted=1000)
    with pytest.raises(TransactionNotPending):
        post_transaction(txn, {ADA: guard})
    with pytest.raises(TransactionNotPending):
        void_transaction(txn, {ADA: guard})
    assert guard.balance == Balance(debits_posted=300, credits_posted=1000)


def test_voiding_a_hold_releases_it_and_it_can_then_never_be_posted() -> None:
    txn, guard = held(300)

    void_transaction(txn, {ADA: guard})

    assert txn.status == TransactionStatus.VOIDED
    assert guard.balance == Balance(credits_posted=1000)
    with pytest.raises(Conflict):
        post_transaction(txn, {ADA: guard})
    with pytest.raises(Conflict):
        void_transaction(txn, {ADA: guard})


# --- reversals -------------------------------------------------------------------------------


def test_a_reversal_swaps_every_leg_and_names_what_it_reverses() -> None:
    original = LedgerTransaction.open(
        uuid4(),
        terms(currency="EUR", legs=charge(), event_source="stripe_charge", reference_id="ch_9"),
    )
    undo = original.reversal_terms(reason="charged twice", actor="admin-1")

    assert [(leg.account, leg.direction, leg.amount) for leg in undo.legs] == [
        (STRIPE_CLEARING, Direction.CREDIT, 941),
        (STRIPE_FEES, Direction.CREDIT, 59),
        (ADA, Direction.DEBIT, 1000),
    ]
    assert undo.reverses == original.id
    assert undo.event_source == "reversal"
    assert {leg.event_source for leg in undo.legs} == {"reversal"}
    assert (undo.currency, undo.reference_id, undo.reason, undo.actor) == (
        "EUR",
        "ch_9",
        "charged twice",
        "admin-1",
    )


def test_a_transaction_is_reversed_at_most_once_and_only_once_posted() -> None:
    txn, _ = held(10)
    with pytest.raises(TransactionNotPosted):
        txn.mark_reversed(uuid4())

    txn.post()
    txn.mark_reversed(by := uuid4())
    assert txn.reversed_by == by
    with pytest.raises(TransactionAlreadyReversed):
        txn.mark_reversed(uuid4())


# --- the verifier ----------------------------------------------------------------------------


def recorded(*legs: Leg, pending: bool = False, currency: str = "USD", **kw: object) -> Recorded:
    return Recorded(uuid4(), currency, tuple(legs), pending=pending, **kw)  # type: ignore[arg-type]


def funding(amount: int = 100) -> Recorded:
    return recorded(Leg(STRIPE_CLEARING, "debit", amount), Leg(ADA, "credit", amount))


def spending(amount: int, pending: bool = False) -> Recorded:
    return recorded(
        Leg(ADA, "debit", amount), Leg(PLATFORM_FEES, "credit", amount), pending=pending
    )


def test_the_verifier_folds_a_sound_log_into_its_balances() -> None:
    fund, hold, hold2 = funding(100), spending(60, pending=True), spending(40, pending=True)
    report = verify([fund, hold, hold2, Posted(hold.txn_id), Voided(hold2.txn_id)])

    assert report.ok, report.problems
    assert report.transactions == 3
    assert report.balances[(ADA, "USD")] == Balance(debits_posted=60, credits_posted=100)
    assert report.balances[(PLATFORM_FEES, "USD")] == Balance(credits_posted=60)
    assert report.balances[(STRIPE_CLEARING, "USD")] == Balance(debits_posted=100)


def test_the_verifier_finds_an_unbalanced_or_malformed_transaction() -> None:
    report = verify(
        [
            recorded(Leg(STRIPE_CLEARING, "debit", 100), Leg(ADA, "credit", 90)),
            recorded(Leg(STRIPE_CLEARING, "debit", 5)),
            recorded(Leg(STRIPE_CLEARING, "debit", 5), Leg("bank:x", "credit", 5)),
            recorded(Leg(STRIPE_CLEARING, "debit", 5), Leg(ADA, "credit", 5, currency="EUR")),
            recorded(Leg(STRIPE_CLEARING, "debit", 5.0), Leg(ADA, "credit", 5)),  # type: ignore[arg-type]
        ]
    )
    messages = [p.message for p in report.problems]
    assert any("unbalanced: debits 100, credits 90" in m for m in messages)
    assert any("has 1 leg" in m for m in messages)
    assert any("unknown account 'bank:x'" in m for m in messages)
    assert any("is in EUR" in m for m in messages)
    assert any("not a positive integer" in m for m in messages)


def test_the_verifier_finds_a_user_below_zero_even_for_a_moment() -> None:
    # Overdrawn, then funded again: the end balance is fine, the log is not.
    report = verify([funding(50), spending(80), funding(100)])
    assert [p.message for p in report.problems] == [f"{ADA} beyond its limit in USD"]
    assert report.balances[(ADA, "USD")].available == 70


def test_the_verifier_counts_a_hold_against_the_limit() -> None:
    report = verify([funding(50), spending(40, pending=True), spending(20)])
    assert [p.message for p in report.problems] == [f"{ADA} beyond its limit in USD"]


def test_the_verifier_finds_holds_settled_wrongly() -> None:
    fund, hold = funding(100), spending(10, pending=True)
    report = verify(
        [fund, Posted(fund.txn_id), hold, Voided(hold.txn_id), Posted(hold.txn_id), Voided(uuid4())]
    )
    assert [p.message for p in report.problems] == [
        "posted while posted",
        "posted while voided",
        "voided but never recorded",
    ]


def test_the_verifier_finds_reversals_of_the_missing_the_pending_and_the_reversed() -> None:
    fund, hold = funding(100), spending(10, pending=True)
    undo = recorded(
        Leg(STRIPE_CLEARING, "credit", 100), Leg(ADA, "debit", 100), reverses=fund.txn_id
    )
    undo_again = recorded(
        Leg(STRIPE_CLEARING, "credit", 100), Leg(ADA, "debit", 100), reverses=fund.txn_id
    )
    undo_hold = recorded(
        Leg(PLATFORM_FEES, "debit", 10), Leg(ADA, "credit", 10), reverses=hold.txn_id
    )
    ghost = recorded(Leg(ADA, "credit", 1), Leg(PLATFORM_FEES, "debit", 1), reverses=uuid4())
    report = verify(
        [
            fund,
            hold,
            undo,
            ReversalLinked(fund.txn_id, undo.txn_id),
            undo_again,
            undo_hold,
            ghost,
        ]
    )
    messages = [p.message for p in report.problems]
    assert any(f"already reversed by {undo.txn_id}" in m for m in messages)
    assert any("which is pending" in m for m in messages)
    assert any("which was never recorded" in m for m in messages)


def test_the_verifier_finds_a_reversal_that_does_not_mirror_its_original() -> None:
    fund = funding(100)
    undo = recorded(Leg(STRIPE_CLEARING, "credit", 60), Leg(ADA, "debit", 60), reverses=fund.txn_id)
    report = verify([fund, undo, ReversalLinked(fund.txn_id, undo.txn_id)])
    assert [p.message for p in report.problems] == [f"does not undo {fund.txn_id} leg for leg"]


def test_the_verifier_finds_a_reversal_without_its_link() -> None:
    fund = funding(100)
    undo = recorded(
        Leg(STRIPE_CLEARING, "credit", 100), Leg(ADA, "debit", 100), reverses=fund.txn_id
    )
    report = verify([fund, undo])
    assert [p.message for p in report.problems] == [f"reversed by {undo.txn_id} but not linked"]
