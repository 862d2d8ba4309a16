"""Payment's read models on the real PostgreSQL: commands go through the application on its
event store, the projection runners follow its log, and the queries read what a route would.

The ledger's views are held against the ledger's own verifier (`ledger_verify`), which folds
the log independently: every leg is one entry with its transaction's status, every balance is
the fold's, live (small pages, so holds are settled pages after they were recorded) and after
a rebuild (the whole log in one page, then one event at a time).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from audifi_kit.errors import DomainError, ValidationFailed
from audifi_kit.eventstore import EventStore
from audifi_kit.paging import Position, encode_cursor
from audifi_kit.projections import Projection, ProjectionRunner, rebuild
from audifi_kit.settings import Settings
from audifi_kit.testing import WITHIN, drop_databases
from audifi_payment import bootstrap, queries
from audifi_payment.application import PaymentApplication
from audifi_payment.domain.accounts import (
    PLATFORM_FEES,
    STRIPE_CLEARING,
    STRIPE_FEES,
    Balance,
    user_available,
    user_pending,
)
from audifi_payment.domain.ledger import Leg
from audifi_payment.domain.order import Product
from audifi_payment.domain.subscription import StripeSubscriptionState
from audifi_payment.ledger_verify import Posted, Recorded, Voided, facts_of, verify_application
from audifi_payment.projections import PROJECTIONS, AccountBalances, LedgerEntries

Store = EventStore[PaymentApplication]
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def payment(postgres_url: str) -> AsyncIterator[Store]:
    """The payment application on its own database under a fresh prefix, dropped after."""
    prefix = f"audifi_t{uuid.uuid4().hex[:8]}_"
    store = await bootstrap.on_postgres(
        Settings(database_url=postgres_url, db_prefix=prefix, poll_interval=0.2)
    )
    try:
        yield store
    finally:
        store.close()
        await drop_databases(postgres_url, prefix)


@pytest.fixture
async def db(payment: Store) -> AsyncIterator[asyncpg.Pool]:
    """What the routes read the views through."""
    pool = await payment.create_pool()
    yield pool
    await pool.close()


class Views:
    def __init__(self, store: Store, runners: list[ProjectionRunner]) -> None:
        self.store = store
        self.runners = runners

    async def caught_up(self) -> None:
        """Every view includes everything written so far (what a route waits for)."""
        # The log's last id, committed or not yet readable (the recorder's own maximum stops
        # below any transaction still open in the database, a runner's step included).
        conn = await self.store.connect()
        try:
            head = await conn.fetchval(
                f"SELECT coalesce(max(notification_id), 0) FROM {self.store.table}"
            )
        finally:
            await conn.close()
        for runner in self.runners:
            await runner.wait(head, timeout=WITHIN)


@asynccontextmanager
async def following(
    store: Store, projections: tuple[type[Projection], ...] = PROJECTIONS, page_size: int = 3
) -> AsyncIterator[Views]:
    runners = [ProjectionRunner(store, p(), page_size=page_size) for p in projections]
    for runner in runners:
        await runner.start()
    try:
        yield Views(store, runners)
    finally:
        for runner in runners:
            await runner.stop()


@pytest.fixture
async def views(payment: Store) -> AsyncIterator[Views]:
    async with following(payment) as v:
        yield v


async def fetch(db: asyncpg.Pool, sql: str, *args: Any) -> list[tuple]:
    return [tuple(r) for r in await db.fetch(sql, *args)]


async def record(
    store: Store,
    currency: str,
    *legs: Leg,
    pending: bool = False,
    event_source: str = "stripe_charge",
    **kw: Any,
) -> UUID:
    return await store.call(
        store.app.record,
        currency=currency,
        legs=list(legs),
        event_source=event_source,
        pending=pending,
        **kw,
    )


def fund(user: str, amount: int) -> tuple[Leg, Leg]:
    return Leg(STRIPE_CLEARING, "debit", amount), Leg(user_available(user), "credit", amount)


def spend(user: str, amount: int) -> tuple[Leg, Leg]:
    return Leg(user_available(user), "debit", amount), Leg(PLATFORM_FEES, "credit", amount)


def new_user() -> str:
    return str(uuid.uuid4())


# --- the ledger -------------------------------------------------------------------------------


async def test_every_leg_is_one_entry_carrying_its_transactions_status(
    payment: Store, views: Views, db: asyncpg.Pool
) -> None:
    ada, bob = new_user(), new_user()
    funded = await record(payment, "USD", *fund(ada, 1000), reference_id="ch_1")
    held_in = await record(payment, "USD", *fund(bob, 500), pending=True, reference_id="ch_2")
    await payment.call(payment.app.post, held_in)
    held_out = await record(payment, "USD", *spend(ada, 300), pending=True, event_source="fee")
    await payment.call(payment.app.void, held_out)
    fee = await record(payment, "USD", *spend(ada, 100), event_source="fee", reference_id="f1")
    reversal = await payment.call(payment.app.reverse, fee, reason="charged twice", actor="adm")
    held = await record(payment, "USD", *spend(ada, 50), pending=True, event_source="fee")
    await views.caught_up()

    rows = await fetch(
        db,
        "SELECT txn_id, account, user_id, direction, amount_cents, event_source, reference_id, "
        "status, reverses, reason, actor FROM ledger_entries.entries ORDER BY id",
    )
    a, b, fees, cl, ch = (
        user_available(ada),
        user_available(bob),
        PLATFORM_FEES,
        STRIPE_CLEARING,
        "stripe_charge",
    )
    plain = (None, None, None)  # reverses nothing, no reason, no actor
    why = (fee, "charged twice", "adm")
    assert rows == [
        (funded, cl, None, "debit", 1000, ch, "ch_1", "posted", *plain),
        (funded, a, ada, "credit", 1000, ch, "ch_1", "posted", *plain),
        (held_in, cl, None, "debit", 500, ch, "ch_2", "posted", *plain),
        (held_in, b, bob, "credit", 500, ch, "ch_2", "posted", *plain),
        (held_out, a, ada, "debit", 300, "fee", None, "voided", *plain),
        (held_out, fees, None, "credit", 300, "fee", None, "voided", *plain),
        (fee, a, ada, "debit", 100, "fee", "f1", "posted", *plain),
        (fee, fees, None, "credit", 100, "fee", "f1", "posted", *plain),
        (reversal, a, ada, "credit", 100, "reversal", "f1", "posted", *why),
        (reversal, fees, None, "debit", 100, "reversal", "f1", "posted", *why),
        (held, a, ada, "debit", 50, "fee", None, "pending", *plain),
        (held, fees, None, "credit", 50, "fee", None, "pending", *plain),
    ]


async def a_busy_ledger(store: Store, seed: int) -> None:
    """Transactions of every kind between three users in two currencies: posted, held then
    posted or voided or left held, multi-leg charges naming one account twice, reversals;
    the ones the ledger refuses (an overdraft, a second reversal) are simply not there."""
    rng = random.Random(seed)
    users = [new_user() for _ in range(3)]
    held: list[UUID] = []
    posted: list[UUID] = []
    for _ in range(70):
        user, currency = rng.choice(users), rng.choice(["USD", "EUR"])
        amount = rng.randint(100, 5000)
        pending = rng.random() < 0.4
        kind = rng.random()
        if kind < 0.35:
            legs: tuple[Leg, ...] = fund(user, amount)
        elif kind < 0.65:
            legs = spend(user, amount // 4)
        else:
            fee, platform, half = amount // 30, amount // 20, amount // 2
            legs = (
                Leg(STRIPE_CLEARING, "debit", amount),
                Leg(STRIPE_FEES, "credit", fee),
                Leg(PLATFORM_FEES, "credit", platform),
                Leg(user_available(user), "credit", half),
                Leg(user_available(user), "credit", amount - fee - platform - half - 1),
                Leg(user_pending(rng.choice(users)), "credit", 1),
            )
        try:
            txn = await record(store, currency, *legs, pending=pending)
        except DomainError:
            continue
        (held if pending else posted).append(txn)
        if held and rng.random() < 0.5:
            settle = held.pop(rng.randrange(len(held)))
            if rng.random() < 0.5:
                await store.call(store.app.void, settle)
            else:
                await store.call(store.app.post, settle)
                posted.append(settle)
        if posted and rng.random() < 0.15:
            try:
                await store.call(
                    store.app.reverse, rng.choice(posted), reason="correction", actor="admin"
                )
            except DomainError:
                pass


async def balances_view(db: asyncpg.Pool) -> dict[tuple[str, str], Balance]:
    rows = await fetch(
        db,
        "SELECT account, currency, debits_pending, debits_posted, credits_pending, "
        "credits_posted FROM account_balances.balances",
    )
    return {(r[0], r[1]): Balance(*r[2:]) for r in rows}


async def ledger_view_rows(db: asyncpg.Pool) -> list[list[tuple]]:
    return [
        await fetch(db, "SELECT * FROM ledger_entries.entries ORDER BY id"),
        await fetch(db, "SELECT * FROM account_balances.balances ORDER BY account, currency"),
        await fetch(db, "SELECT * FROM account_balances.pending_legs ORDER BY txn_id, account"),
    ]


async def test_the_ledger_views_are_the_verifiers_fold_live_and_rebuilt(
    payment: Store, db: asyncpg.Pool
) -> None:
    ledger_views = (LedgerEntries, AccountBalances)
    async with following(payment, ledger_views, page_size=3) as views:
        await a_busy_ledger(payment, seed=12)
        await views.caught_up()

    report = await payment.call(verify_application, payment.app)
    assert report.ok, report.problems
    assert await balances_view(db) == report.balances
    assert any(b.debits_pending or b.credits_pending for b in report.balances.values())

    # Each leg once, in log order, with the status its transaction ended in.
    facts = await payment.call(lambda: list(facts_of(payment.app)))
    status: dict[UUID, str] = {}
    legs: list[tuple] = []
    for fact in facts:
        if isinstance(fact, Recorded):
            status[fact.txn_id] = "pending" if fact.pending else "posted"
            legs += [(fact.txn_id, leg.account, leg.direction, leg.amount) for leg in fact.legs]
        elif isinstance(fact, Posted):
            status[fact.txn_id] = "posted"
        elif isinstance(fact, Voided):
            status[fact.txn_id] = "voided"
    entries = await fetch(
        db,
        "SELECT txn_id, account, direction, amount_cents, status FROM ledger_entries.entries "
        "ORDER BY id",
    )
    assert [e[:4] for e in entries] == legs
    assert [e[4] for e in entries] == [status[e[0]] for e in entries]
    assert {e[4] for e in entries} == {"pending", "posted", "voided"}

    live = await ledger_view_rows(db)
    for page_size in (1000, 1):
        for view in ledger_views:
            await rebuild(payment, view(), page_size=page_size)
        assert await ledger_view_rows(db) == live


async def test_a_hot_accounts_balance_is_read_from_the_view(
    payment: Store, views: Views, db: asyncpg.Pool
) -> None:
    for i in range(1, 6):
        await record(payment, "USD", *fund(new_user(), 100 * i))
    held = await record(payment, "USD", *fund(new_user(), 40), pending=True)
    await record(payment, "EUR", *fund(new_user(), 70))
    await views.caught_up()

    assert await queries.account_balance(db, STRIPE_CLEARING, "USD") == queries.AccountBalance(
        account=STRIPE_CLEARING, currency="USD", debits_posted=1500, debits_pending=40
    )
    await payment.call(payment.app.post, held)
    await views.caught_up()
    clearing = await queries.account_balance(db, STRIPE_CLEARING, "USD")
    assert (clearing.debits_posted, clearing.debits_pending) == (1540, 0)
    assert await queries.account_balance(db, PLATFORM_FEES, "USD") == queries.AccountBalance(
        account=PLATFORM_FEES, currency="USD"
    )


async def test_a_users_balances_show_what_they_may_spend_and_what_is_on_its_way(
    payment: Store, views: Views, db: asyncpg.Pool
) -> None:
    ada, bob = new_user(), new_user()
    await record(payment, "USD", *fund(ada, 1000))
    await record(payment, "USD", *spend(ada, 300), pending=True)  # a hold on her money
    await record(payment, "USD", *fund(ada, 200), pending=True)  # a payment not yet settled
    await record(
        payment,
        "USD",
        Leg(STRIPE_CLEARING, "debit", 50),
        Leg(user_pending(ada), "credit", 50),  # earned, not yet released
    )
    await record(payment, "EUR", *fund(ada, 40))
    await views.caught_up()

    assert await queries.balances_of_user(db, ada) == [
        queries.UserBalance(currency="EUR", available_cents=40, pending_cents=0),
        queries.UserBalance(currency="USD", available_cents=700, pending_cents=250),
    ]
    assert await queries.balances_of_user(db, bob) == []


async def test_paging_by_cursor_gives_every_entry_once_and_a_user_only_theirs(
    payment: Store, views: Views, db: asyncpg.Pool
) -> None:
    ada, bob = new_user(), new_user()
    for i in range(1, 12):
        await record(payment, "USD", *fund(ada, i))
        await record(
            payment,
            "USD",
            Leg(STRIPE_CLEARING, "debit", i + 1),
            Leg(user_available(bob), "credit", i),
            Leg(user_available(ada), "credit", 1),
        )
        await record(payment, "USD", *spend(bob, 1))
    await views.caught_up()

    async def every_page(user: str | None, *, newest_first: bool) -> list[list[int]]:
        pages, cursor = [], None
        while True:
            page = await queries.ledger_entries(db, user, 4, cursor, newest_first=newest_first)
            pages.append([e.id for e in page.items])
            if page.next_cursor is None:
                return pages
            cursor = page.next_cursor

    everything = await fetch(db, "SELECT id, user_id FROM ledger_entries.entries ORDER BY id")
    assert len(everything) == 11 * 7
    for user in (ada, bob, None):
        owned = [i for i, owner in everything if user is None or owner == user]
        oldest_first = await every_page(user, newest_first=False)
        newest_first = await every_page(user, newest_first=True)
        assert all(0 < len(p) <= 4 for p in oldest_first)
        # Ids follow the log, and one transaction's legs share their time.
        assert [i for page in oldest_first for i in page] == owned
        assert [i for page in newest_first for i in page] == owned[::-1]

    [ada_entry] = (await queries.ledger_entries(db, ada, 1)).items
    assert ada_entry.user_id == ada and ada_entry.account == user_available(ada)
    assert (ada_entry.type, ada_entry.amount_cents, ada_entry.currency) == ("credit", 1, "USD")

    beyond_any_entry = encode_cursor(Position(T0, UUID(int=2**64)))
    for bad in ("not-a-cursor", beyond_any_entry):
        with pytest.raises(ValidationFailed):
            await queries.ledger_entries(db, ada, 4, bad)


# --- split rules, tiers, subscriptions, orders --------------------------------------------------


async def test_the_split_rules_view_follows_the_owners_changes(
    payment: Store, views: Views, db: asyncpg.Pool
) -> None:
    owner, band = new_user(), new_user()
    app = payment.app
    first = await payment.call(
        app.define_split_rule, owner, "Solo", [[owner, 10_000]], is_default=True, at=T0, by=owner
    )
    later = T0 + timedelta(hours=1)
    second = await payment.call(
        app.define_split_rule,
        owner,
        "Band",
        [[owner, 7_000], [band, 3_000]],
        is_default=True,
        at=later,
        by=owner,
    )
    await views.caught_up()
    rules = await queries.split_rules_of(db, owner)
    assert [(r.id, r.name, r.is_default, r.updated_at) for r in rules] == [
        (first.id, "Solo", False, later),  # the default passed on to the second
        (second.id, "Band", True, later),
    ]
    assert rules[1].recipients == [
        queries.SplitRecipient(recipient_id=owner, basis_points=7_000),
        queries.SplitRecipient(recipient_id=band, basis_points=3_000),
    ]

    revised_at = T0 + timedelta(hours=2)
    await payment.call(
        app.revise_split_rule,
        first.id,
        "Solo 2",
        [[owner, 9_999], [band, 1]],
        is_default=False,
        at=revised_at,
        by=owner,
    )
    await payment.call(app.remove_split_rule, second.id, at=revised_at, by=owner)
    await views.caught_up()
    [left] = await queries.split_rules_of(db, owner)
    assert (left.name, left.is_default, left.created_at, left.updated_at) == (
        "Solo 2",
        False,
        T0,
        revised_at,
    )
    assert [(r.recipient_id, r.basis_points) for r in left.recipients] == [
        (owner, 9_999),
        (band, 1),
    ]
    assert await queries.split_rule(db, second.id) is None
    assert await queries.split_rules_of(db, band) == []


async def test_the_tiers_view_lists_each_artists_tiers_the_archived_ones_marked(
    payment: Store, views: Views, db: asyncpg.Pool
) -> None:
    artist, other = new_user(), new_user()
    app = payment.app
    gold = await payment.call(
        app.define_tier, artist, "Gold", 900, "usd", "month", at=T0, by=artist
    )
    old = await payment.call(
        app.define_tier, artist, "Old", 500, "EUR", "year", at=T0 + timedelta(1), by=artist
    )
    theirs = await payment.call(
        app.define_tier, other, "Fan", 300, "USD", "month", at=T0 + timedelta(2), by=other
    )
    archived_at = T0 + timedelta(3)
    await payment.call(app.archive_tier, old.id, at=archived_at, by=artist)
    await views.caught_up()

    listed = await queries.tiers(db, artist)
    assert listed[0] == queries.TierView(
        id=gold.id,
        artist_id=artist,
        name="Gold",
        price_cents=900,
        currency="USD",
        interval="month",
        archived=False,
        created_at=T0,
        archived_at=None,
    )
    assert [(t.id, t.archived, t.archived_at) for t in listed] == [
        (gold.id, False, None),
        (old.id, True, archived_at),
    ]
    assert [t.id for t in await queries.tiers(db)] == [gold.id, old.id, theirs.id]


def stripe_state(status: str, period_end: datetime, **kw: Any) -> StripeSubscriptionState:
    return StripeSubscriptionState(
        stripe_subscription_id="sub_1",
        stripe_customer_id="cus_1",
        status=status,
        current_period_end=period_end,
        cancel_at_period_end=kw.get("cancel_at_period_end", False),
        latest_invoice_id=kw.get("invoice", "in_1"),
        latest_invoice_paid=kw.get("paid", True),
        canceled_at=kw.get("canceled_at"),
    )


async def test_the_subscriptions_view_follows_stripes_lifecycle(
    payment: Store, views: Views, db: asyncpg.Pool
) -> None:
    artist, fan = new_user(), new_user()
    app = payment.app
    tier = await payment.call(
        app.define_tier, artist, "Gold", 900, "USD", "month", at=T0, by=artist
    )
    opened = await payment.call(app.open_subscription, fan, tier.id, at=T0)
    await views.caught_up()
    [view] = await queries.subscriptions_of(db, fan)
    assert (view.id, view.status, view.stripe_subscription_id, view.price_cents) == (
        opened.id,
        "incomplete",
        None,
        900,
    )

    started, first_end = T0 + timedelta(minutes=5), T0 + timedelta(days=31)
    await payment.call(
        app.sync_subscription, opened.id, stripe_state("active", first_end), at=started
    )
    await views.caught_up()
    view = await queries.subscription(db, opened.id)
    assert view is not None
    assert (view.status, view.started_at, view.current_period_end) == ("active", started, first_end)
    assert (view.stripe_subscription_id, view.stripe_customer_id) == ("sub_1", "cus_1")

    second_end = first_end + timedelta(days=30)
    failed = stripe_state("past_due", second_end, invoice="in_2", paid=False)
    await payment.call(app.sync_subscription, opened.id, failed, at=first_end)
    await views.caught_up()
    view = await queries.subscription(db, opened.id)
    assert view is not None
    assert (view.status, view.current_period_end) == ("past_due", second_end)

    renewed = stripe_state("active", second_end, invoice="in_2")
    await payment.call(app.sync_subscription, opened.id, renewed, at=first_end + timedelta(1))
    await payment.call(app.request_cancel, fan, opened.id, at=first_end + timedelta(2))
    await views.caught_up()
    view = await queries.subscription(db, opened.id)
    assert view is not None
    assert (view.status, view.cancel_at_period_end, view.canceled_at) == ("active", True, None)

    ended = stripe_state("canceled", second_end, cancel_at_period_end=True, canceled_at=second_end)
    await payment.call(app.sync_subscription, opened.id, ended, at=second_end)
    await views.caught_up()
    assert await queries.subscriptions_of(db, fan) == [
        queries.SubscriptionView(
            id=opened.id,
            fan_id=fan,
            artist_id=artist,
            tier_id=tier.id,
            price_cents=900,
            currency="USD",
            interval="month",
            status="canceled",
            current_period_end=second_end,
            cancel_at_period_end=True,
            opened_at=T0,
            started_at=started,
            canceled_at=second_end,
            stripe_subscription_id="sub_1",
            stripe_customer_id="cus_1",
        )
    ]
    assert await queries.subscriptions_of(db, artist) == []
    assert await queries.subscription(db, uuid.uuid4()) is None


async def test_the_orders_view_shows_payment_expiry_failure_and_refunds(
    payment: Store, views: Views, db: asyncpg.Pool
) -> None:
    buyer, seller = new_user(), new_user()
    app = payment.app

    async def open_order(reference: str) -> UUID:
        order_id = uuid.uuid4()
        await payment.call(
            app.open_order,
            order_id,
            Product("nft", "ipo_shares", reference),
            title="3 shares",
            quantity=3,
            unit_amount=1_500,
            currency="usd",
            buyer_id=buyer,
            seller_id=seller,
            expires_at=T0 + timedelta(hours=1),
            at=T0,
        )
        return order_id

    paid, late, failed = [await open_order(r) for r in ("ipo-1", "ipo-2", "ipo-3")]
    paid_at = T0 + timedelta(minutes=10)
    txn = uuid.uuid4()
    await payment.call(app.start_checkout, paid, "cs_1", at=T0)
    await payment.call(
        app.mark_paid, paid, "pi_1", 4_500, "USD", paid_at, ledger_transaction_id=txn
    )
    expired_at = T0 + timedelta(hours=1)
    await payment.call(app.expire_order, late, at=expired_at)
    await payment.call(app.mark_paid, late, "pi_2", 4_500, "USD", expired_at + timedelta(1))
    await payment.call(app.fail_order, failed, "seller withdrew it", at=paid_at)
    await views.caught_up()

    view = await queries.order(db, paid)
    assert view is not None
    assert (view.status, view.total, view.currency, view.quantity, view.unit_amount) == (
        "paid",
        4_500,
        "USD",
        3,
        1_500,
    )
    assert (view.product_service, view.product_kind, view.product_reference) == (
        "nft",
        "ipo_shares",
        "ipo-1",
    )
    assert (view.checkout_session_id, view.payment_intent_id, view.paid_at) == (
        "cs_1",
        "pi_1",
        paid_at,
    )
    assert (view.ledger_transaction_id, view.buyer_id, view.seller_id) == (txn, buyer, seller)
    assert (view.refund_status, view.late_payments) == (None, [])

    view = await queries.order(db, late)
    assert view is not None
    assert (view.status, view.closed_at, view.paid_at, view.refund_status) == (
        "expired",
        expired_at,
        None,
        "refund_due",
    )
    [owed] = view.late_payments
    assert (owed.payment_intent_id, owed.amount, owed.reason, owed.refund_id) == (
        "pi_2",
        4_500,
        "expired",
        None,
    )

    refund_txn = uuid.uuid4()
    refunded_at = expired_at + timedelta(2)
    await payment.call(
        app.record_order_refund,
        late,
        "pi_2",
        "re_1",
        at=refunded_at,
        ledger_transaction_id=refund_txn,
    )
    await views.caught_up()
    view = await queries.order(db, late)
    assert view is not None
    assert view.refund_status == "refunded"
    [done] = view.late_payments
    assert (done.refund_id, done.refunded_at, done.refund_transaction_id) == (
        "re_1",
        refunded_at,
        refund_txn,
    )

    view = await queries.order(db, failed)
    assert view is not None
    assert (view.status, view.failure_reason, view.closed_at) == (
        "failed",
        "seller withdrew it",
        paid_at,
    )
    assert await queries.order(db, uuid.uuid4()) is None
