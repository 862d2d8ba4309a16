"""The IPO never oversells and never loses a paid share, whatever the interleaving.

A hypothesis state machine drives the in-memory application: buyers reserve, pay (by card or
on chain, once or again, before or after their reservation ended), reservations expire or
fail, the artist tries to cancel, the window ends. After every step, from the aggregate as
the repository rebuilds it from its events:
- shares allocated plus shares held never exceed the cap (no oversell);
- every payment the IPO was told of is either the one that allocated its reservation or
  recorded as needing a refund (no paid share lost, none allocated twice);
- the allocated count is exactly the paid reservations' shares, the held count the pending
  ones'; no account holds more than the per-account maximum.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from audifi_kit.errors import DomainError
from audifi_nft.bootstrap import in_memory
from audifi_nft.domain.ipo import CANCELLED, PAID, PENDING
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from nft_support import ARTIST, T0, register, terms

BUYERS = [str(uuid.UUID(int=100 + i)) for i in range(4)]


class IpoMachine(RuleBasedStateMachine):
    @initialize(cap=st.integers(1, 12), per_account=st.integers(1, 12))
    def open_ipo(self, cap: int, per_account: int) -> None:
        self.app = in_memory()
        master = register(self.app)
        ipo = self.app.configure_ipo(
            master_id=master.id,
            actor_id=ARTIST,
            actor_is_admin=False,
            **terms(cap=cap, per_account_max=min(per_account, cap)),
        )
        self.app.launch_ipo(ipo.id, T0)
        self.ipo_id = ipo.id
        self.now = T0
        self.count = 0
        self.payments: dict[str, list[str]] = {}  # reservation -> payments told

    @rule(
        buyer=st.sampled_from(BUYERS),
        quantity=st.integers(0, 14),
        method=st.sampled_from(["card", "chain"]),
    )
    def reserve(self, buyer: str, quantity: int, method: str) -> None:
        self.count += 1
        rid = f"r{self.count}"
        try:
            self.app.reserve(
                self.ipo_id,
                reservation_id=rid,
                account_id=buyer,
                quantity=quantity,
                method=method,
                now=self.now,
            )
        except DomainError:
            assert rid not in self.app.ipo(self.ipo_id).reservations
        else:
            self.payments[rid] = []

    @precondition(lambda self: self.payments)
    @rule(data=st.data(), again=st.booleans())
    def pay(self, data: st.DataObject, again: bool) -> None:
        rid = data.draw(st.sampled_from(sorted(self.payments)))
        told = self.payments[rid]
        payment = told[-1] if again and told else f"pay-{rid}-{len(told)}"
        self.app.record_payment(self.ipo_id, reservation_id=rid, payment=payment, paid_at=self.now)
        if payment not in told:
            told.append(payment)

    @precondition(lambda self: self.payments)
    @rule(data=st.data(), reason=st.sampled_from(["expired", "failed"]))
    def release(self, data: st.DataObject, reason: str) -> None:
        rid = data.draw(st.sampled_from(sorted(self.payments)))
        before = self.app.ipo(self.ipo_id).reservations[rid]["state"]
        released = self.app.release_reservation(
            self.ipo_id, reservation_id=rid, reason=reason, now=self.now
        )
        assert released == (before == PENDING)

    @rule(minutes=st.integers(1, 60 * 24 * 3))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        ipo = self.app.ipo(self.ipo_id)
        for rid in ipo.expired_reservations(self.now, method="chain"):
            self.app.release_reservation(
                self.ipo_id, reservation_id=rid, reason="expired", now=self.now
            )
        self.app.close_ipo_if_due(self.ipo_id, self.now)

    @rule()
    def artist_cancels(self) -> None:
        before = self.app.ipo(self.ipo_id)
        try:
            self.app.cancel_ipo(self.ipo_id, actor_id=ARTIST, actor_is_admin=False, now=self.now)
        except DomainError:
            assert before.allocated or before.held or before.status == "closed"
        else:
            assert before.allocated == 0 and before.held == 0
            assert self.app.ipo(self.ipo_id).status == CANCELLED

    @invariant()
    def never_oversold_and_nothing_paid_is_lost(self) -> None:
        ipo = self.app.ipo(self.ipo_id)  # rebuilt from its events
        assert 0 <= ipo.allocated and 0 <= ipo.held
        assert ipo.allocated + ipo.held <= ipo.cap
        paid = sum(r["quantity"] for r in ipo.reservations.values() if r["state"] == PAID)
        pending = sum(r["quantity"] for r in ipo.reservations.values() if r["state"] == PENDING)
        assert (ipo.allocated, ipo.held) == (paid, pending)
        for rid, told in self.payments.items():
            r = ipo.reservations[rid]
            refunds = r.get("refunds_required", [])
            for payment in told:
                allocated_by_it = r["state"] == PAID and r["payment"] == payment
                assert allocated_by_it != (payment in refunds), (rid, payment, r)
        per_account: dict[str, int] = {}
        for r in ipo.reservations.values():
            if r["state"] in (PAID, PENDING):
                per_account[r["account_id"]] = per_account.get(r["account_id"], 0) + r["quantity"]
        assert per_account == {a: n for a, n in ipo.by_account.items() if n}
        assert all(n <= ipo.per_account_max for n in per_account.values())
        if ipo.allocated == ipo.cap:
            assert ipo.status == "closed"


IpoMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_the_ipo_never_oversells_and_never_loses_a_paid_share = IpoMachine.TestCase
