"""Whatever the sequence of recordings (balanced or not, posted or held, on users' and hot
accounts, in two currencies), posts, voids, reversals and repeated ids: every recorded
transaction balances, no user balance is ever below zero, and the balances the verifier folds,
the guards the application keeps and the test's own sum of postings are one and the same.

A hypothesis state machine on the in-memory application. The test's model is deliberately
naive: a list of accepted transactions with their status, and balances summed from scratch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from uuid import UUID, uuid4

from audifi_kit.errors import ValidationFailed
from audifi_payment import bootstrap
from audifi_payment.domain.accounts import Balance
from audifi_payment.domain.ledger import (
    InsufficientFunds,
    Leg,
    TransactionAlreadyReversed,
    TransactionIdTaken,
    TransactionNotPending,
    TransactionNotPosted,
    terms,
)
from audifi_payment.ledger_verify import LedgerFold, Recorded, fact_of, verify, verify_application
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

USERS = ["user:ada:available", "user:bob:available", "user:ada:pending"]
HOT = ["platform:fees", "stripe:clearing", "stripe:fees", "order:o-1"]
ACCOUNTS = USERS + HOT
CURRENCIES = ["USD", "EUR"]


@dataclass
class Accepted:
    """What the model knows of a transaction the ledger accepted."""

    currency: str
    legs: list[tuple[str, str, int]]
    status: str  # pending | posted | voided
    reversed: bool = False
    request: dict[str, object] | None = None


leg_values = st.tuples(
    st.sampled_from(ACCOUNTS), st.sampled_from(["debit", "credit"]), st.integers(1, 500)
)


@st.composite
def transactions(draw: st.DrawFn) -> tuple[str, list[tuple[str, str, int]], bool, str | None]:
    """Legs that usually balance (the last leg makes up the difference) and sometimes do not,
    or carry a second currency."""
    currency = draw(st.sampled_from(CURRENCIES))
    legs = draw(st.lists(leg_values, min_size=1, max_size=4))
    if draw(st.booleans()) or draw(st.booleans()):
        net = sum(a if d == "debit" else -a for _, d, a in legs)
        if net:
            direction = "credit" if net > 0 else "debit"
            legs.append((draw(st.sampled_from(ACCOUNTS)), direction, abs(net)))
    pending = draw(st.booleans())
    mixed = draw(st.sampled_from(CURRENCIES)) if draw(st.integers(0, 9)) == 0 else None
    return currency, legs, pending, mixed


def limit_broken(balances: dict[tuple[str, str], Balance], key: tuple[str, str]) -> bool:
    b = balances[key]
    return key[0].startswith("user:") and b.debits_posted + b.debits_pending > b.credits_posted


class LedgerMachine(RuleBasedStateMachine):
    txns = Bundle("txns")
    holds = Bundle("holds")  # pending when recorded: settling them is mostly allowed

    def __init__(self) -> None:
        super().__init__()
        self.app = bootstrap.in_memory()
        self.accepted: dict[UUID, Accepted] = {}
        self.fold = LedgerFold()
        self.position = 0

    # --- the model ------------------------------------------------------------------------

    def model_balances(
        self, extra: tuple[str, list[tuple[str, str, int]], str] | None = None
    ) -> dict[tuple[str, str], Balance]:
        """Every posting summed from scratch; `extra` is a transaction not yet accepted."""
        sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        every = [(t.currency, t.legs, t.status) for t in self.accepted.values()]
        for currency, legs, status in every + ([extra] if extra else []):
            if status == "voided":
                continue
            for account, direction, amount in legs:
                column = (0 if direction == "debit" else 2) + (1 if status == "posted" else 0)
                sums[(account, currency)][column] += amount
        return defaultdict(Balance, {k: Balance(*v) for k, v in sums.items()})

    def would_overdraw(self, currency: str, legs: list[tuple[str, str, int]], status: str) -> bool:
        after = self.model_balances((currency, legs, status))
        return any(limit_broken(after, (account, currency)) for account, _, _ in legs)

    # --- rules ----------------------------------------------------------------------------

    @initialize(target=txns, amount=st.integers(1, 2000))
    def fund_the_users(self, amount: int) -> object:
        """Money in for every user balance, so that spending is sometimes possible."""
        funded = []
        for account in USERS:
            for currency in CURRENCIES:
                legs = [("stripe:clearing", "debit", amount), (account, "credit", amount)]
                txn_id = self.app.record(
                    currency=currency,
                    legs=[Leg(*leg) for leg in legs],
                    event_source="stripe_charge",
                )
                self.accepted[txn_id] = Accepted(currency, legs, "posted")
                funded.append(txn_id)
        return multiple(*funded)

    @rule(target=txns, txn=transactions())
    def record(self, txn: tuple[str, list[tuple[str, str, int]], bool, str | None]) -> object:
        currency, legs, pending, mixed = txn
        request: dict[str, object] = {
            "currency": currency,
            "legs": [
                Leg(a, d, n, currency=mixed if i == 0 else None) for i, (a, d, n) in enumerate(legs)
            ],
            "event_source": "manual_adjustment",
            "pending": pending,
        }
        status = "pending" if pending else "posted"
        debits = sum(n for _, d, n in legs if d == "debit")
        credits = sum(n for _, d, n in legs if d == "credit")
        invalid = len(legs) < 2 or debits != credits or mixed not in (None, currency)
        try:
            txn_id = self.app.record(**request)  # type: ignore[arg-type]
        except ValidationFailed:
            assert invalid, "a valid transaction was refused"
            event("record: refused as invalid")
            return multiple()
        except InsufficientFunds:
            assert not invalid and self.would_overdraw(currency, legs, status)
            event("record: refused, a user would be overdrawn")
            return multiple()
        assert not invalid, "an invalid transaction was recorded"
        assert not self.would_overdraw(currency, legs, status), "a user was overdrawn"
        event(f"record: {status}")
        self.accepted[txn_id] = Accepted(currency, legs, status, request=request)
        return txn_id

    @rule(txn_id=txns)
    def repeat_a_recording_under_its_id(self, txn_id: UUID) -> None:
        request = self.accepted[txn_id].request
        if request is None:  # recorded by the machine itself, not through `record`
            return
        request = self.accepted[txn_id].request
        assert self.app.record(**request, txn_id=txn_id) == txn_id  # type: ignore[arg-type]
        changed = {**request, "event_source": "split"}  # type: ignore[dict-item]
        try:
            self.app.record(**changed, txn_id=txn_id)  # type: ignore[arg-type]
        except TransactionIdTaken:
            return
        raise AssertionError("a different transaction was accepted under a taken id")

    @rule(
        target=holds,
        account=st.sampled_from(USERS),
        currency=st.sampled_from(CURRENCIES),
        amount=st.integers(1, 1000),
    )
    def hold(self, account: str, currency: str, amount: int) -> object:
        """A reservation being paid: a user's money held for an order."""
        legs = [(account, "debit", amount), ("order:o-1", "credit", amount)]
        try:
            txn_id = self.app.record(
                currency=currency,
                legs=[Leg(*leg) for leg in legs],
                event_source="split",
                pending=True,
            )
        except InsufficientFunds:
            assert self.would_overdraw(currency, legs, "pending")
            event("hold: refused, a user would be overdrawn")
            return multiple()
        assert not self.would_overdraw(currency, legs, "pending")
        event("hold: placed")
        self.accepted[txn_id] = Accepted(currency, legs, "pending")
        return txn_id

    @rule(txn_id=holds, posting=st.booleans())
    def settle_a_hold(self, txn_id: UUID, posting: bool) -> None:
        self.settle(txn_id, posting)

    @rule(txn_id=txns, posting=st.booleans())
    def settle(self, txn_id: UUID, posting: bool) -> None:
        model = self.accepted[txn_id]
        try:
            (self.app.post if posting else self.app.void)(txn_id)
        except TransactionNotPending:
            assert model.status != "pending"
            event("settle: refused, not pending")
            return
        assert model.status == "pending"
        event("settle: posted" if posting else "settle: voided")
        model.status = "posted" if posting else "voided"

    @rule(target=txns, txn_id=holds)
    def reverse_a_hold(self, txn_id: UUID) -> object:
        return self.reverse(txn_id)

    @rule(target=txns, txn_id=txns)
    def reverse(self, txn_id: UUID) -> object:
        model = self.accepted[txn_id]
        swapped = [(a, "credit" if d == "debit" else "debit", n) for a, d, n in model.legs]
        try:
            reversal = self.app.reverse(txn_id, reason="correction", actor="admin-1")
        except TransactionAlreadyReversed:
            assert model.reversed
            event("reverse: refused, reversed already")
            return multiple()
        except TransactionNotPosted:
            assert not model.reversed and model.status != "posted"
            event("reverse: refused, not posted")
            return multiple()
        except InsufficientFunds:
            assert model.status == "posted" and not model.reversed
            assert self.would_overdraw(model.currency, swapped, "posted")
            event("reverse: refused, a user would be overdrawn")
            return multiple()
        event("reverse: reversed")
        assert model.status == "posted" and not model.reversed
        assert not self.would_overdraw(model.currency, swapped, "posted")
        model.reversed = True
        self.accepted[reversal] = Accepted(model.currency, swapped, "posted")
        return reversal

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def the_log_verifies_and_every_view_of_a_balance_agrees(self) -> None:
        # The verifier's own fold, fed the log's new events since the last step: the same
        # check as `verify_application` at every step, without replaying the log each time.
        problems = []
        for n in self.app.recorder.select_notifications(start=self.position + 1, limit=10_000):
            fact = fact_of(self.app.mapper.to_domain_event(n), n.id)
            if fact is not None:
                problems += self.fold.apply(fact)
            self.position = n.id
        assert not problems + self.fold.finish(), problems
        assert len(self.fold.transactions) == len(self.accepted)
        model = self.model_balances()
        folded = {k: v for k, v in self.fold.balances.items() if v != Balance()}
        assert folded == {k: v for k, v in model.items() if v != Balance()}
        for account in USERS:
            for currency in CURRENCIES:
                key = (account, currency)
                assert self.app.guarded_balance(account, currency) == model[key]
                assert not limit_broken(model, key)
                assert model[key].available >= 0

    def teardown(self) -> None:
        """The whole log verified once more as `audifi ledger verify` reads it, guards too."""
        report = verify_application(self.app)
        assert report.ok, report.problems
        assert report.balances == self.fold.balances


LedgerMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=25, deadline=None)
test_the_ledger_stays_balanced_and_never_overdraws_a_user = LedgerMachine.TestCase


@settings(max_examples=1500, deadline=None)
@given(st.lists(transactions(), max_size=8))
def test_only_balanced_transactions_are_accepted_and_the_verifier_sees_every_overdraft(
    sequence: list[tuple[str, list[tuple[str, str, int]], bool, str | None]],
) -> None:
    """Pure domain, many cases: `terms` accepts a transaction exactly when it balances in one
    currency; folding what it accepted, the verifier reports a user beyond its limit exactly
    after the transactions where the naive running sum of that user's postings is negative."""
    facts: list[Recorded] = []
    expected: list[tuple[UUID, str]] = []
    running: dict[tuple[str, str], int] = defaultdict(int)
    for currency, legs, pending, mixed in sequence:
        debits = sum(n for _, d, n in legs if d == "debit")
        credits = sum(n for _, d, n in legs if d == "credit")
        valid = len(legs) >= 2 and debits == credits and mixed in (None, currency)
        try:
            given_terms = terms(
                currency=currency,
                legs=[Leg(a, d, n, currency=mixed) for a, d, n in legs],
                event_source="manual_adjustment",
                pending=pending,
            )
        except ValidationFailed:
            assert not valid
            continue
        assert valid
        fact = Recorded(uuid4(), currency, given_terms.legs, pending=pending)
        facts.append(fact)
        for account, direction, amount in legs:
            # A held debit counts at once; a held credit only once posted (never, here).
            if direction == "debit":
                running[(account, currency)] -= amount
            elif not pending:
                running[(account, currency)] += amount
        for account in dict.fromkeys(a for a, _, _ in legs):
            if account.startswith("user:") and running[(account, currency)] < 0:
                expected.append((fact.txn_id, f"{account} beyond its limit in {currency}"))

    report = verify(facts)

    assert [(p.txn_id, p.message) for p in report.problems] == expected
    assert report.transactions == len(facts)
