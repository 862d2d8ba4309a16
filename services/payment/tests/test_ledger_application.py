"""The ledger's commands on the application: recording, holds, reversals, idempotent ids, and
concurrent writers of one user balance that never take it below zero (in memory, and through
the kit's group commit on PostgreSQL)."""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from audifi_kit.errors import DomainError, ValidationFailed
from audifi_kit.eventstore import GroupCommit
from audifi_kit.settings import Settings
from audifi_kit.testing import drop_databases
from audifi_payment import bootstrap
from audifi_payment.application import PaymentApplication
from audifi_payment.domain.accounts import (
    PLATFORM_ADJUSTMENTS,
    PLATFORM_FEES,
    STRIPE_CLEARING,
    Balance,
)
from audifi_payment.domain.ledger import (
    Direction,
    InsufficientFunds,
    LedgerTransactionNotFound,
    Leg,
    TransactionAlreadyReversed,
    TransactionIdTaken,
    TransactionNotPending,
    TransactionNotPosted,
    TransactionStatus,
    transaction_id_for,
)
from audifi_payment.ledger_verify import verify_application

ADA = "user:ada:available"


def log_length(app: PaymentApplication) -> int:
    return len(app.recorder.select_notifications(start=1, limit=10_000))


def fund(
    app: PaymentApplication, amount: int, account: str = ADA, currency: str = "USD"
) -> uuid.UUID:
    return app.record(
        currency=currency,
        legs=[Leg(STRIPE_CLEARING, "debit", amount), Leg(account, "credit", amount)],
        event_source="stripe_charge",
        reference_id=f"ch_{uuid.uuid4().hex[:8]}",
    )


def spend(app: PaymentApplication, amount: int, *, pending: bool = False) -> uuid.UUID:
    return app.record(
        currency="USD",
        legs=[Leg(ADA, "debit", amount), Leg(PLATFORM_FEES, "credit", amount)],
        event_source="platform_fee",
        pending=pending,
    )


def test_a_recorded_transaction_reads_back_as_it_was_given() -> None:
    app = bootstrap.in_memory()
    txn_id = app.record(
        currency="USD",
        legs=[
            Leg(STRIPE_CLEARING, "debit", 941),
            Leg("stripe:fees", "debit", 59, event_source="stripe_fee"),
            Leg(ADA, "credit", 1000),
        ],
        event_source="stripe_charge",
        reference_id="ch_1",
    )

    txn = app.ledger_transaction(txn_id)
    assert txn.status == TransactionStatus.POSTED
    assert (txn.currency, txn.event_source, txn.reference_id) == ("USD", "stripe_charge", "ch_1")
    assert [(leg.account, leg.direction, leg.amount, leg.event_source) for leg in txn.legs] == [
        (STRIPE_CLEARING, Direction.DEBIT, 941, "stripe_charge"),
        ("stripe:fees", Direction.DEBIT, 59, "stripe_fee"),
        (ADA, Direction.CREDIT, 1000, "stripe_charge"),
    ]
    assert txn.created_at.tzinfo is not None
    assert app.guarded_balance(ADA, "USD") == Balance(credits_posted=1000)
    assert app.guarded_balance(ADA, "EUR") == Balance()
    assert verify_application(app).ok


def test_a_transaction_between_hot_accounts_touches_no_other_aggregate() -> None:
    app = bootstrap.in_memory()
    app.record(
        currency="USD",
        legs=[Leg(STRIPE_CLEARING, "debit", 5), Leg(PLATFORM_FEES, "credit", 5)],
        event_source="platform_fee",
    )
    assert log_length(app) == 1  # the Recorded event alone: no guard, nothing to contend on


def test_the_balance_of_a_hot_account_is_not_kept_at_write_time() -> None:
    app = bootstrap.in_memory()
    with pytest.raises(ValidationFailed):
        app.guarded_balance(PLATFORM_FEES, "USD")


def test_a_refused_transaction_saves_nothing() -> None:
    app = bootstrap.in_memory()
    fund(app, 100)
    before = log_length(app)
    with pytest.raises(InsufficientFunds):
        spend(app, 101)
    with pytest.raises(ValidationFailed):
        app.record(
            currency="USD",
            legs=[Leg(ADA, "debit", 10), Leg(PLATFORM_FEES, "credit", 9)],
            event_source="platform_fee",
        )
    assert log_length(app) == before
    assert app.guarded_balance(ADA, "USD").available == 100


def test_a_hold_is_posted_or_voided_once() -> None:
    app = bootstrap.in_memory()
    fund(app, 1000)
    kept, released = spend(app, 300, pending=True), spend(app, 200, pending=True)
    assert app.guarded_balance(ADA, "USD").available == 500

    app.post(kept)
    app.void(released)

    assert app.guarded_balance(ADA, "USD") == Balance(debits_posted=300, credits_posted=1000)
    assert app.ledger_transaction(kept).status == TransactionStatus.POSTED
    assert app.ledger_transaction(released).status == TransactionStatus.VOIDED
    for settle in (app.post, app.void):
        for txn_id in (kept, released):
            with pytest.raises(TransactionNotPending):
                settle(txn_id)
    assert verify_application(app).ok


def test_a_hold_reserves_the_money_until_it_is_voided() -> None:
    app = bootstrap.in_memory()
    fund(app, 1000)
    hold = spend(app, 800, pending=True)
    with pytest.raises(InsufficientFunds) as refused:
        spend(app, 300)
    assert refused.value.details["available"] == 200

    app.void(hold)
    spend(app, 300)
    assert app.guarded_balance(ADA, "USD").available == 700


def test_a_reversal_undoes_a_posted_transaction_once() -> None:
    app = bootstrap.in_memory()
    charge = fund(app, 1000)

    reversal = app.reverse(charge, reason="duplicate charge", actor="admin-1")

    undo = app.ledger_transaction(reversal)
    assert undo.reverses == charge
    assert (undo.event_source, undo.reason, undo.actor) == (
        "reversal",
        "duplicate charge",
        "admin-1",
    )
    assert [(leg.account, leg.direction) for leg in undo.legs] == [
        (STRIPE_CLEARING, Direction.CREDIT),
        (ADA, Direction.DEBIT),
    ]
    assert app.ledger_transaction(charge).reversed_by == reversal
    assert app.guarded_balance(ADA, "USD").available == 0
    with pytest.raises(TransactionAlreadyReversed):
        app.reverse(charge, reason="again", actor="admin-1")
    assert verify_application(app).ok


def test_only_a_posted_transaction_can_be_reversed() -> None:
    app = bootstrap.in_memory()
    fund(app, 1000)
    hold, voided = spend(app, 10, pending=True), spend(app, 10, pending=True)
    app.void(voided)
    for txn_id in (hold, voided):
        with pytest.raises(TransactionNotPosted):
            app.reverse(txn_id, reason="no", actor=None)


def test_a_reversal_that_would_overdraw_a_user_is_refused() -> None:
    app = bootstrap.in_memory()
    charge = fund(app, 1000)
    spend(app, 600)
    before = log_length(app)

    with pytest.raises(InsufficientFunds) as refused:
        app.reverse(charge, reason="refund", actor="admin-1")

    assert refused.value.code == "INSUFFICIENT_FUNDS"
    assert log_length(app) == before
    assert app.ledger_transaction(charge).reversed_by is None


def test_an_unknown_transaction_is_not_found() -> None:
    app = bootstrap.in_memory()
    unknown = uuid.uuid4()
    for command in (app.ledger_transaction, app.post, app.void):
        with pytest.raises(LedgerTransactionNotFound):
            command(unknown)
    with pytest.raises(LedgerTransactionNotFound):
        app.reverse(unknown, reason="x", actor=None)


def test_a_redelivered_booking_is_recorded_once() -> None:
    app = bootstrap.in_memory()
    txn_id = transaction_id_for("stripe_charge", "ch_42")

    def book(amount: int) -> uuid.UUID:
        return app.record(
            txn_id=txn_id,
            currency="USD",
            legs=[Leg(STRIPE_CLEARING, "debit", amount), Leg(ADA, "credit", amount)],
            event_source="stripe_charge",
            reference_id="ch_42",
        )

    assert [book(1000) for _ in range(5)] == [txn_id] * 5
    assert app.guarded_balance(ADA, "USD").available == 1000
    with pytest.raises(TransactionIdTaken):
        book(999)
    assert app.guarded_balance(ADA, "USD").available == 1000
    assert verify_application(app).ok


def test_an_id_taken_by_another_kind_of_record_is_refused() -> None:
    app = bootstrap.in_memory()
    fund(app, 10)
    guard_of_ada = next(
        n.originator_id for n in app.notification_log.select(1, 10) if "AccountGuard" in n.topic
    )
    with pytest.raises(TransactionIdTaken):
        app.record(
            txn_id=guard_of_ada,
            currency="USD",
            legs=[Leg(STRIPE_CLEARING, "debit", 1), Leg(PLATFORM_FEES, "credit", 1)],
            event_source="platform_fee",
        )


# --- concurrency -----------------------------------------------------------------------------

WRITERS = 50
DEBIT = 7
CREDIT = 7 * 31 + 4  # covers 31 debits of 7, not 32


def adjustment(app: PaymentApplication) -> uuid.UUID:
    return app.record(
        currency="USD",
        legs=[Leg(ADA, "debit", DEBIT), Leg(PLATFORM_ADJUSTMENTS, "credit", DEBIT)],
        event_source="manual_adjustment",
        reason="chargeback fee",
        actor="admin-1",
    )


def test_a_writer_that_lost_the_race_checks_the_limit_again_on_the_winners_balance() -> None:
    app = bootstrap.in_memory()
    fund(app, 10)
    save = app.save
    raced: list[uuid.UUID] = []

    def save_after_a_rival(*aggregates: object, **kwargs: object) -> object:
        # Between this writer's decision (on a balance of 10) and its save, a rival debits 7.
        if not raced:
            app.save = save  # type: ignore[method-assign]
            raced.append(adjustment(app))
        return save(*aggregates, **kwargs)  # type: ignore[arg-type]

    app.save = save_after_a_rival  # type: ignore[method-assign]

    with pytest.raises(InsufficientFunds):
        adjustment(app)

    assert len(raced) == 1
    assert app.guarded_balance(ADA, "USD").available == 3
    assert verify_application(app).ok


@pytest.fixture
def threads_switch_often() -> Iterator[None]:
    """Threads preempted every microsecond: writers interleave between decision and save, as
    they would on separate connections, instead of each running to completion in its slice."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("threads_switch_often")
def test_fifty_concurrent_adjustments_never_take_a_user_below_zero() -> None:
    app = bootstrap.in_memory()
    fund(app, CREDIT)
    start = threading.Barrier(WRITERS)
    outcomes: list[object] = [None] * WRITERS

    def writer(i: int) -> None:
        start.wait()
        try:
            outcomes[i] = adjustment(app)
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    accepted = [o for o in outcomes if isinstance(o, uuid.UUID)]
    refused = [o for o in outcomes if not isinstance(o, uuid.UUID)]
    assert len(accepted) == CREDIT // DEBIT == 31
    assert all(isinstance(o, DomainError) and o.code == "INSUFFICIENT_FUNDS" for o in refused)
    assert app.guarded_balance(ADA, "USD").available == CREDIT % DEBIT
    assert verify_application(app).ok


async def test_group_committed_adjustments_never_take_a_user_below_zero(
    postgres_url: str, tmp_path: Path
) -> None:
    prefix = f"audifi_l{uuid.uuid4().hex[:8]}_"
    store = await bootstrap.on_postgres(
        Settings(database_url=postgres_url, db_prefix=prefix, var_dir=tmp_path)
    )
    group = GroupCommit(store)
    try:
        app = store.app
        await store.call(fund, app, CREDIT)

        async def submit() -> object:
            try:
                return await group.submit(
                    lambda: (
                        app.prepare_record(
                            currency="USD",
                            legs=[
                                Leg(ADA, "debit", DEBIT),
                                Leg(PLATFORM_ADJUSTMENTS, "credit", DEBIT),
                            ],
                            event_source="manual_adjustment",
                            reason="chargeback fee",
                            actor="admin-1",
                        ).aggregates
                    )
                )
            except Exception as exc:
                return exc

        outcomes = await asyncio.gather(*(submit() for _ in range(WRITERS)))

        refused = [o for o in outcomes if isinstance(o, Exception)]
        assert len(outcomes) - len(refused) == 31
        assert all(isinstance(o, DomainError) and o.code == "INSUFFICIENT_FUNDS" for o in refused)
        assert group.batches < WRITERS, "the adjustments were not grouped"
        balance = await store.call(app.guarded_balance, ADA, "USD")
        assert balance.available == CREDIT % DEBIT
        report = await store.call(verify_application, app)
        assert report.ok, report.problems
        assert report.transactions == 32
    finally:
        await group.close()
        store.close()
        await drop_databases(postgres_url, prefix)
