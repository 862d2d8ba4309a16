"""Orders on the in-memory application: how sellers sell through payment. An order is paid at
most once; a payment it cannot take is marked for a refund, never dropped, never fulfilled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from audifi_kit.errors import DomainError
from audifi_payment.bootstrap import in_memory
from audifi_payment.domain.order import Order, PaymentOutcome, Product
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(minutes=30)
BUYER, SELLER = str(uuid4()), str(uuid4())
SHARES = Product("nft", "ipo_shares", "master-42")


@pytest.fixture
def app() -> Any:
    return in_memory()


def three_shares(app: Any, order_id: UUID | None = None, **overrides: Any) -> Order:
    values: dict[str, Any] = {
        "title": "3 shares of Blue",
        "quantity": 3,
        "unit_amount": 1250,
        "currency": "usd",
        "buyer_id": BUYER,
        "seller_id": SELLER,
        "expires_at": EXPIRES,
        "at": NOW,
    }
    return app.open_order(order_id or uuid4(), SHARES, **(values | overrides))


def refusal(call: Any, *args: Any, **kwargs: Any) -> DomainError:
    with pytest.raises(DomainError) as info:
        call(*args, **kwargs)
    return info.value


def history(app: Any, order_id: UUID) -> list[str]:
    return [type(e).__name__ for e in app.events.get(order_id)]


def test_a_seller_opens_an_order_whose_total_is_quantity_times_unit_amount(app: Any) -> None:
    order = three_shares(app)

    stored = app.order(order.id)
    assert (stored.product, stored.quantity, stored.unit_amount) == (SHARES, 3, 1250)
    assert (stored.total, stored.currency, stored.status) == (3750, "USD", "open")
    assert (stored.buyer_id, stored.seller_id, stored.expires_at) == (BUYER, SELLER, EXPIRES)


def test_a_redelivered_request_opens_one_order_and_another_request_under_its_id_is_refused(
    app: Any,
) -> None:
    order_id = uuid4()
    three_shares(app, order_id)

    again = three_shares(app, order_id, at=EXPIRES + timedelta(hours=1))  # redelivered late
    error = refusal(three_shares, app, order_id, quantity=4)

    assert again.id == order_id
    assert history(app, order_id) == ["Opened"]
    assert error.status_code == 409
    assert app.order(order_id).quantity == 3


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("quantity", {"quantity": 0}),
        ("quantity", {"quantity": 1.0}),
        ("unitAmount", {"unit_amount": -1250}),
        ("unitAmount", {"unit_amount": 12.5}),
        ("unitAmount", {"unit_amount": False}),
        ("quantity", {"quantity": 2**30, "unit_amount": 2**30}),  # total beyond 2**53
        ("currency", {"currency": "dollars"}),
        ("buyerId", {"buyer_id": "someone"}),
        ("sellerId", {"seller_id": ""}),
        ("expiresAt", {"expires_at": NOW}),
        ("expiresAt", {"expires_at": datetime(2026, 5, 2)}),  # no timezone
        ("title", {"title": ""}),
    ],
)
def test_an_order_that_cannot_be_charged_exactly_is_a_400_naming_the_field(
    app: Any, field: str, overrides: dict[str, Any]
) -> None:
    order_id = uuid4()
    error = refusal(three_shares, app, order_id, **overrides)

    assert (error.status_code, error.details["fields"][0]["field"]) == (400, field)
    assert refusal(app.order, order_id).code == "ORDER_NOT_FOUND"


@pytest.mark.parametrize(
    ("product", "field"),
    [
        (Product("vstudio", "votes", "x"), "product.service"),
        (Product("nft", "IPO Shares", "x"), "product.kind"),
        (Product("coin", "lottery_tickets", ""), "product.reference"),
    ],
)
def test_only_known_sellers_with_a_product_kind_and_reference_may_sell(
    app: Any, product: Product, field: str
) -> None:
    error = refusal(
        app.open_order,
        uuid4(),
        product,
        title="x",
        quantity=1,
        unit_amount=100,
        currency="USD",
        buyer_id=BUYER,
        seller_id=SELLER,
        expires_at=EXPIRES,
        at=NOW,
    )

    assert error.details["fields"][0]["field"] == field


def test_an_order_is_paid_once_and_the_same_notice_again_is_a_duplicate(app: Any) -> None:
    order = three_shares(app)
    app.start_checkout(order.id, "cs_test_1", at=NOW)
    txn = uuid4()

    first = app.mark_paid(order.id, "pi_1", 3750, "USD", NOW, ledger_transaction_id=txn)
    again = app.mark_paid(order.id, "pi_1", 3750, "USD", NOW)

    assert (first, again) == (PaymentOutcome.PAID, PaymentOutcome.DUPLICATE)
    stored = app.order(order.id)
    assert (stored.status, stored.payment_intent_id, stored.paid_at) == ("paid", "pi_1", NOW)
    assert history(app, order.id) == ["Opened", "CheckoutStarted", "Paid"]
    paid = list(app.events.get(order.id))[-1]
    assert (paid.amount, paid.currency, paid.ledger_transaction_id) == (3750, "USD", txn)


def test_a_second_payment_of_a_paid_order_is_to_be_refunded_not_fulfilled(app: Any) -> None:
    order = three_shares(app)
    app.mark_paid(order.id, "pi_1", 3750, "USD", NOW)

    outcome = app.mark_paid(order.id, "pi_2", 3750, "USD", NOW)
    repeat = app.mark_paid(order.id, "pi_2", 3750, "USD", NOW)

    assert (outcome, repeat) == (PaymentOutcome.REFUND_REQUIRED, PaymentOutcome.DUPLICATE)
    stored = app.order(order.id)
    assert (stored.status, stored.payment_intent_id) == ("paid", "pi_1")
    assert stored.refunds_due == ["pi_2"]
    assert stored.late_payments["pi_2"].reason == "paid_already"
    assert history(app, order.id).count("Paid") == 1


def test_a_payment_after_the_order_expired_is_to_be_refunded_and_then_recorded_refunded(
    app: Any,
) -> None:
    order = three_shares(app)
    app.start_checkout(order.id, "cs_test_1", at=NOW)
    app.expire_order(order.id, at=EXPIRES)

    outcome = app.mark_paid(order.id, "pi_late", 3750, "USD", EXPIRES + timedelta(seconds=5))
    app.record_order_refund(order.id, "pi_late", "re_1", at=EXPIRES + timedelta(minutes=1))
    app.record_order_refund(order.id, "pi_late", "re_1", at=EXPIRES + timedelta(minutes=2))

    assert outcome == PaymentOutcome.REFUND_REQUIRED
    stored = app.order(order.id)
    assert (stored.status, stored.payment_intent_id, stored.refunds_due) == ("expired", None, [])
    assert stored.late_payments["pi_late"].reason == "expired"
    assert history(app, order.id) == [
        "Opened",
        "CheckoutStarted",
        "Expired",
        "LatePaymentReceived",
        "Refunded",
    ]


def test_a_payment_made_after_the_expiry_finds_the_order_expired_though_not_yet_marked(
    app: Any,
) -> None:
    order = three_shares(app)

    outcome = app.mark_paid(order.id, "pi_1", 3750, "USD", EXPIRES + timedelta(seconds=1))

    assert outcome == PaymentOutcome.REFUND_REQUIRED
    assert app.order(order.id).status == "expired"
    assert history(app, order.id) == ["Opened", "Expired", "LatePaymentReceived"]


def test_a_payment_of_another_amount_or_currency_does_not_pay_the_order(app: Any) -> None:
    order = three_shares(app)

    short = app.mark_paid(order.id, "pi_short", 3749, "USD", NOW)
    euros = app.mark_paid(order.id, "pi_eur", 3750, "EUR", NOW)
    right = app.mark_paid(order.id, "pi_right", 3750, "usd", NOW)

    assert (short, euros, right) == (
        PaymentOutcome.REFUND_REQUIRED,
        PaymentOutcome.REFUND_REQUIRED,
        PaymentOutcome.PAID,
    )
    assert sorted(app.order(order.id).refunds_due) == ["pi_eur", "pi_short"]


def test_a_payment_notice_with_a_float_or_negative_amount_is_a_400(app: Any) -> None:
    order = three_shares(app)

    for amount in (37.5, -3750, 0, True):
        error = refusal(app.mark_paid, order.id, "pi_1", amount, "USD", NOW)
        assert (error.status_code, error.details["fields"][0]["field"]) == (400, "amount")
    assert app.order(order.id).status == "open"


def test_expiry_and_failure_close_an_unpaid_order_and_leave_a_paid_one_paid(app: Any) -> None:
    expired, failed, paid = three_shares(app), three_shares(app), three_shares(app)
    app.mark_paid(paid.id, "pi_1", 3750, "USD", NOW)

    app.expire_order(expired.id, at=EXPIRES)
    app.fail_order(failed.id, "The checkout could not be opened", at=NOW)
    app.expire_order(paid.id, at=EXPIRES)
    app.fail_order(paid.id, "too late", at=EXPIRES)

    assert [app.order(o.id).status for o in (expired, failed, paid)] == [
        "expired",
        "failed",
        "paid",
    ]
    checkout = refusal(app.start_checkout, expired.id, "cs_test_2", at=EXPIRES)
    assert checkout.status_code == 409


def test_an_unknown_order_is_a_404(app: Any) -> None:
    error = refusal(app.mark_paid, uuid4(), "pi_1", 100, "USD", NOW)

    assert (error.status_code, error.code) == (404, "ORDER_NOT_FOUND")


def test_only_a_payment_awaiting_its_refund_can_be_recorded_refunded(app: Any) -> None:
    order = three_shares(app)
    app.mark_paid(order.id, "pi_1", 3750, "USD", NOW)

    error = refusal(app.record_order_refund, order.id, "pi_1", "re_1", at=NOW)

    assert error.status_code == 409


# --- whatever the sequence of notices -----------------------------------------------------

INTENTS = ["pi_a", "pi_b", "pi_c"]


class OrderNotices(RuleBasedStateMachine):
    """Payment notices (new, repeated, late, of wrong amounts), checkouts, expiries, failures
    and refunds in any order: an order is never paid twice, and every payment it did not take
    is refunded exactly once."""

    @initialize()
    def open(self) -> None:
        self.app = in_memory()
        self.order_id = three_shares(self.app).id
        self.outcomes: dict[str, PaymentOutcome] = {}

    @rule(
        intent=st.sampled_from(INTENTS),
        amount=st.sampled_from([3750, 3750, 100]),
        late=st.booleans(),
    )
    def payment_notice(self, intent: str, amount: int, late: bool) -> None:
        paid_at = EXPIRES + timedelta(seconds=1) if late else NOW
        outcome = self.app.mark_paid(self.order_id, intent, amount, "USD", paid_at)
        first = self.outcomes.setdefault(intent, outcome)
        if first is not outcome:
            assert outcome == PaymentOutcome.DUPLICATE  # a known intent never changes its fate

    @rule(session=st.sampled_from(["cs_1", "cs_2"]))
    def checkout(self, session: str) -> None:
        try:
            self.app.start_checkout(self.order_id, session, at=NOW)
        except DomainError as error:
            assert error.status_code == 409
            assert self.app.order(self.order_id).status in ("paid", "expired", "failed")

    @rule()
    def expire(self) -> None:
        self.app.expire_order(self.order_id, at=EXPIRES)

    @rule()
    def fail(self) -> None:
        self.app.fail_order(self.order_id, "withdrawn", at=NOW)

    @rule(intent=st.sampled_from(INTENTS))
    def refund(self, intent: str) -> None:
        order = self.app.order(self.order_id)
        if intent in order.refunds_due:
            self.app.record_order_refund(self.order_id, intent, f"re_{intent}", at=EXPIRES)

    @invariant()
    def never_paid_twice_and_every_other_payment_refunded_once(self) -> None:
        events = list(self.app.events.get(self.order_id))
        paid = [e.payment_intent_id for e in events if type(e).__name__ == "Paid"]
        late = [e.payment_intent_id for e in events if type(e).__name__ == "LatePaymentReceived"]
        refunded = [e.payment_intent_id for e in events if type(e).__name__ == "Refunded"]
        assert len(paid) <= 1
        assert len(set(late)) == len(late) and len(set(refunded)) == len(refunded)
        assert not set(paid) & set(late)
        assert set(refunded) <= set(late)
        # Every intent heard of is either the one that paid or one owed a refund.
        assert set(paid) | set(late) == set(self.outcomes)
        order = self.app.order(self.order_id)
        assert (order.status == "paid") == bool(paid)
        assert [i for i, o in self.outcomes.items() if o == PaymentOutcome.PAID] == paid


OrderNotices.TestCase.settings = settings(max_examples=200, stateful_step_count=15, deadline=None)
test_an_order_is_never_paid_twice_whatever_the_sequence_of_notices = OrderNotices.TestCase
