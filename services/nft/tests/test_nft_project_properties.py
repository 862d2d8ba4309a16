"""A Coda Collective project never loses, invents or pays twice a minor unit, whatever happens.

A hypothesis state machine drives the in-memory application through its project commands: a
project is created with a random goal split into 1 to 4 milestones; fans invest (nothing, too
much, too little, what is left), payments arrive (once, twice, for lapsed investments),
investments lapse or expire, the clock runs past the deadline, the artist submits proofs and an
admin approves or rejects them (in order or not, locked ones too), an admin cancels, the artist
finalizes, revenue is booked and funders claim. The machine keeps its own model from what each
command answered, predicts every refusal's code, and checks that a refusal records nothing.

After every step, from the project as the repository rebuilds it from its events:
- raised = released + refunded + remainder + escrowed, escrowed >= 0 (0 once cancelled);
- paid plus held never exceed the goal; raised is the paid investments' amounts and held the
  pending ones', both as the aggregate lists them and as the machine saw them happen;
- the unlocked milestones are a prefix and released is their payouts' sum;
- a cancellation refunds each paid investment `amount * unreleased // raised`, all of it when
  the deadline cancelled it, and leaves a remainder smaller than the number of paid investments;
- claims never exceed the funders' share, in total or per investment;
- every payment told is the one that made its investment paid or is recorded for a refund.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from itertools import pairwise
from typing import Any

from audifi_kit.errors import DomainError
from audifi_nft.bootstrap import in_memory
from audifi_nft.domain.project import (
    CANCELLED,
    FUNDING,
    IN_PROGRESS,
    INVESTMENT_TTL,
    LAPSED,
    LOCKED,
    PAID,
    PENDING,
    PENDING_APPROVAL,
    RELEASED,
    UNLOCKED,
    PaymentOutcome,
    Project,
)
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from nft_support import ARTIST, T0

ADMIN = str(uuid.UUID(int=2))
STRANGER = str(uuid.UUID(int=3))
FUNDERS = [str(uuid.UUID(int=100 + i)) for i in range(4)]
# For the rules that end a project (which ends the story): how often they do.
RARELY = [False] * 7 + [True]
SOMETIMES = [False] * 3 + [True]
ACTORS = {"artist": (ARTIST, False), "admin": (ADMIN, True), "stranger": (STRANGER, False)}


class ProjectMachine(RuleBasedStateMachine):
    @initialize(
        data=st.data(),
        currency=st.sampled_from(["usd", "jpy"]),
        goal=st.integers(1, 5_000),
        milestones=st.integers(1, 4),
        share_bps=st.integers(0, 10_000),
        deadline_hours=st.integers(1, 24 * 14),
        head_start=st.sampled_from(["none", "none", "funded", "delivering", "released"]),
    )
    def create(
        self,
        data: st.DataObject,
        currency: str,
        goal: int,
        milestones: int,
        share_bps: int,
        deadline_hours: int,
        head_start: str,
    ) -> None:
        """A new project; a story may start further on (funded by up to four fans, some of
        its milestones delivered, released), told by the same commands as the rules'."""
        self.unit = 100 if currency == "usd" else 1
        goal = max(goal, self.unit)
        n = min(milestones, goal)
        cuts = sorted(
            data.draw(st.sets(st.integers(1, goal - 1), min_size=n - 1, max_size=n - 1))
            if n > 1
            else []
        )
        bounds = [0, *cuts, goal]
        self.payouts = [b - a for a, b in pairwise(bounds)]
        self.goal = goal
        self.bps = share_bps
        self.now = T0
        self.deadline = T0 + timedelta(hours=deadline_hours)
        self.app = in_memory()
        project = self.app.create_project(
            project_id=uuid.UUID(int=50),
            artist_id=ARTIST,
            actor_id=ARTIST,
            actor_is_admin=False,
            now=T0,
            title="Second Light",
            description="An album, funded by its listeners",
            funding_goal=goal,
            currency=currency,
            funding_deadline=self.deadline,
            release_date=None,
            share_bps=share_bps,
            milestones=[
                {"name": f"Step {i + 1}", "payout_amount": p} for i, p in enumerate(self.payouts)
            ],
        )
        self.id = project.id
        # The machine's own model, kept from what each command answered.
        self.status = FUNDING
        self.investments: dict[str, dict[str, Any]] = {}
        self.milestones = [LOCKED] * n
        self.next = 0
        self.released = 0
        self.shared = 0
        self.bookings: set[str] = set()
        self.cancellation: dict[str, Any] | None = None
        self.count = 0
        if head_start == "none":
            return
        for funder in FUNDERS[: data.draw(st.integers(1, 4))]:
            self.a_fan_funds(funder, data.draw(st.integers(1, 3)), again=False)
        self.a_fan_funds(FUNDERS[0], 1, again=False)
        assert self.status == IN_PROGRESS
        if head_start == "funded":
            return
        for _ in range(n if head_start == "released" else data.draw(st.integers(0, n))):
            self.the_next_milestone_is_delivered()
        if head_start == "released":
            self.finalize("artist")
            assert self.status == RELEASED

    # -- helpers ---------------------------------------------------------------------------

    def _raised(self) -> int:
        return sum(i["amount"] for i in self.investments.values() if i["state"] == PAID)

    def _held(self) -> int:
        return sum(i["amount"] for i in self.investments.values() if i["state"] == PENDING)

    def _attempt(self, expected: str | None, command: Any) -> Any:
        """Runs `command`; refused with `expected`'s code (recording nothing) when it is one."""
        recorded = self.app.recorder.max_notification_id()
        try:
            answer = command()
        except DomainError as refused:
            assert refused.code == expected, (refused.code, expected, refused.details)
            assert self.app.recorder.max_notification_id() == recorded
            return refused
        assert expected is None, f"expected {expected}, got {answer!r}"
        return answer

    def _cancel_in_model(self, reason: str) -> None:
        raised, unreleased = self._raised(), self._raised() - self.released
        refunds = {
            iid: i["amount"] * unreleased // raised
            for iid, i in self.investments.items()
            if i["state"] == PAID
        }
        for i in self.investments.values():
            if i["state"] == PENDING:
                i["state"] = LAPSED
        self.status = CANCELLED
        self.cancellation = {
            "reason": reason,
            "released": self.released,
            "refunds": refunds,
            "remainder": unreleased - sum(refunds.values()),
        }

    def _pick(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(sorted(self.investments)))

    # -- funding ---------------------------------------------------------------------------

    @rule(
        funder=st.sampled_from(FUNDERS),
        pick=st.sampled_from(["left", "unit", "below_unit", "zero", "too_big", "part", "any"]),
        n=st.integers(1, 6_000),
    )
    def invest(self, funder: str, pick: str, n: int) -> None:
        left = self.goal - self._raised() - self._held()
        amount = {
            "left": left,
            "unit": self.unit,
            "below_unit": self.unit - 1,
            "zero": 0,
            "too_big": left + n,
            "part": max(1, left // (n % 4 + 1)),
            "any": n,
        }[pick]
        self._invest(funder, amount)

    def _invest(self, funder: str, amount: int) -> str:
        self.count += 1
        iid = f"inv{self.count}"
        left = self.goal - self._raised() - self._held()
        if amount < 1:
            expected = "VALIDATION_ERROR"
        elif self.status != FUNDING or self.now >= self.deadline:
            expected = "PROJECT_NOT_FUNDING"
        elif amount > left:
            expected = "FUNDING_EXCEEDS_GOAL"
        elif amount < min(self.unit, left):
            expected = "VALIDATION_ERROR"
        else:
            expected = None
        answer = self._attempt(
            expected,
            lambda: self.app.invest(
                self.id,
                investment_id=iid,
                account_id=funder,
                amount=amount,
                method="card",
                now=self.now,
            ),
        )
        if expected == "FUNDING_EXCEEDS_GOAL":
            assert answer.details["left"] == left
        if expected is None:
            assert (answer["state"], answer["amount"], answer["account_id"]) == (
                PENDING,
                amount,
                funder,
            )
            self.investments[iid] = {
                "account": funder,
                "amount": amount,
                "state": PENDING,
                "expires_at": self.now + INVESTMENT_TTL,
                "payment": None,
                "told": [],
                "refunds_required": [],
                "claimed": 0,
            }
        else:
            assert iid not in self.app.project(self.id).investments
        return iid

    @rule(funder=st.sampled_from(FUNDERS), part=st.integers(1, 4), again=st.booleans())
    def a_fan_funds(self, funder: str, part: int, again: bool) -> None:
        """Invests what is left, or a part of it, and pays for it (the way to the goal)."""
        left = self.goal - self._raised() - self._held()
        iid = self._invest(funder, max(left // part, min(self.unit, left)))
        if iid in self.investments:
            self._pay(iid, again=False)
            if again:
                self._pay(iid, again=True)

    @precondition(lambda self: self.investments)
    @rule(data=st.data(), funder=st.sampled_from(FUNDERS), amount=st.integers(0, 6_000))
    def retry_investment(self, data: st.DataObject, funder: str, amount: int) -> None:
        iid = self._pick(data)
        recorded = self.app.recorder.max_notification_id()
        mine = self.investments[iid]
        if funder != mine["account"]:  # another's investment id: not theirs to retry
            self._attempt(
                "INVESTMENT_NOT_FOUND",
                lambda: self.app.invest(
                    self.id,
                    investment_id=iid,
                    account_id=funder,
                    amount=amount,
                    method="card",
                    now=self.now,
                ),
            )
            return
        answer = self.app.invest(
            self.id,
            investment_id=iid,
            account_id=funder,
            amount=amount,
            method="card",
            now=self.now,
        )
        assert (answer["amount"], answer["account_id"]) == (mine["amount"], mine["account"])
        assert self.app.recorder.max_notification_id() == recorded

    @precondition(lambda self: self.investments)
    @rule(data=st.data(), again=st.booleans())
    def payment_arrives(self, data: st.DataObject, again: bool) -> None:
        pending = sorted(i for i, mine in self.investments.items() if mine["state"] == PENDING)
        if pending and data.draw(st.booleans()):
            self._pay(data.draw(st.sampled_from(pending)), again=again)
        else:
            self._pay(self._pick(data), again=again)

    def _pay(self, iid: str, *, again: bool) -> None:
        mine = self.investments[iid]
        told = mine["told"]
        payment = told[-1] if again and told else f"pay-{iid}-{len(told)}"
        if mine["state"] == PAID and mine["payment"] == payment:
            expected = PaymentOutcome.DUPLICATE
        elif mine["state"] != PENDING:
            expected = PaymentOutcome.REFUND_REQUIRED
        else:
            expected = PaymentOutcome.INVESTED
        outcome = self.app.record_investment_payment(
            self.id, investment_id=iid, payment=payment, paid_at=self.now
        )
        assert outcome == expected
        if payment not in told:
            told.append(payment)
        if outcome == PaymentOutcome.INVESTED:
            mine.update(state=PAID, payment=payment)
            if self._raised() == self.goal:
                self.status = IN_PROGRESS
        elif outcome == PaymentOutcome.REFUND_REQUIRED and payment not in mine["refunds_required"]:
            mine["refunds_required"].append(payment)

    @rule()
    def payment_of_an_unknown_investment(self) -> None:
        self._attempt(
            "INVESTMENT_NOT_FOUND",
            lambda: self.app.record_investment_payment(
                self.id, investment_id="nobody", payment="pay-x", paid_at=self.now
            ),
        )

    @precondition(lambda self: self.investments)
    @rule(data=st.data(), reason=st.sampled_from(["expired", "failed"]))
    def investment_lapses(self, data: st.DataObject, reason: str) -> None:
        iid = self._pick(data)
        mine = self.investments[iid]
        lapsed = self.app.lapse_investment(self.id, investment_id=iid, reason=reason, now=self.now)
        assert lapsed == (mine["state"] == PENDING)
        if lapsed:
            mine["state"] = LAPSED

    @rule(minutes=st.integers(1, 90), sweep=st.booleans())
    def time_passes(self, minutes: int, sweep: bool) -> None:
        self.now += timedelta(minutes=minutes)
        if sweep:  # the orders of the held investments past their expiry expire
            for iid, mine in sorted(self.investments.items()):
                if mine["state"] == PENDING and mine["expires_at"] <= self.now:
                    assert self.app.lapse_investment(
                        self.id, investment_id=iid, reason="expired", now=self.now
                    )
                    mine["state"] = LAPSED

    @rule(minutes=st.integers(-30, 60), now=st.sampled_from(RARELY))
    def the_deadline_comes(self, minutes: int, now: bool) -> None:
        """Rarely (it ends the funding), the clock reaches the deadline, or just about."""
        if now:
            self.now = max(self.now, self.deadline + timedelta(minutes=minutes))
            self.end_if_due()

    @rule()
    def end_if_due(self) -> None:
        held = any(
            i["state"] == PENDING and i["expires_at"] > self.now for i in self.investments.values()
        )  # a funder already paying may still pay until their hold expires
        due = self.status == FUNDING and self.now >= self.deadline and not held
        assert self.app.end_project_if_due(self.id, now=self.now) == due
        if due:
            self._cancel_in_model("deadline")

    @rule(who=st.sampled_from(["stranger", "admin"]), now=st.sampled_from(SOMETIMES))
    def cancel(self, who: str, now: bool) -> None:
        """Rarely (it ends the project), an admin cancels it; others are refused."""
        if who == "admin" and not now:
            return
        actor, admin = ACTORS[who]
        if not admin:
            expected = "FORBIDDEN"
        elif self.status == RELEASED:
            expected = "PROJECT_STATE_CONFLICT"
        else:
            expected = None
        was = self.status
        self._attempt(
            expected,
            lambda: self.app.cancel_project(
                self.id, reason="admin", actor_id=actor, actor_is_admin=admin, now=self.now
            ),
        )
        if expected is None and was != CANCELLED:
            self._cancel_in_model("admin")

    # -- milestones ------------------------------------------------------------------------

    @rule(index=st.integers(-1, 4), who=st.sampled_from(["artist", "admin", "stranger"]))
    def proof_submitted(self, index: int, who: str) -> None:
        actor, admin = ACTORS[who]
        if who == "stranger":
            expected = "FORBIDDEN"
        elif not 0 <= index < len(self.milestones):
            expected = "MILESTONE_NOT_FOUND"
        elif self.status != IN_PROGRESS:
            expected = "PROJECT_STATE_CONFLICT"
        elif self.milestones[index] != LOCKED:
            expected = "MILESTONE_STATE_CONFLICT"
        else:
            expected = None
        self._attempt(
            expected,
            lambda: self.app.submit_milestone_proof(
                self.id,
                index=index,
                proof={"url": "https://example.com/proof"},
                actor_id=actor,
                actor_is_admin=admin,
                now=self.now,
            ),
        )
        if expected is None:
            self.milestones[index] = PENDING_APPROVAL

    @rule(ahead=st.sampled_from([0, 0, 1, 2]))
    def the_next_milestone_is_delivered(self, ahead: int = 0) -> None:
        """The artist proves the next milestone done (or one after it) and an admin approves
        it (out of order when it is not the next)."""
        self.proof_submitted(self.next + ahead, "artist")
        self.proof_approved(self.next + ahead, "admin")

    @rule(index=st.integers(-1, 4), who=st.sampled_from(["admin", "admin", "artist"]))
    def proof_approved(self, index: int, who: str) -> None:
        actor, admin = ACTORS[who]
        if not admin:
            expected = "FORBIDDEN"
        elif not 0 <= index < len(self.milestones):
            expected = "MILESTONE_NOT_FOUND"
        elif self.status != IN_PROGRESS:
            expected = "PROJECT_STATE_CONFLICT"
        elif self.milestones[index] != PENDING_APPROVAL:
            expected = "MILESTONE_STATE_CONFLICT"
        elif index != self.next:
            expected = "MILESTONE_OUT_OF_ORDER"
        else:
            expected = None
        self._attempt(
            expected,
            lambda: self.app.approve_milestone(
                self.id, index=index, actor_id=actor, actor_is_admin=admin, now=self.now
            ),
        )
        if expected is None:
            self.milestones[index] = UNLOCKED
            self.released += self.payouts[index]
            self.next += 1

    @rule(index=st.integers(-1, 4), who=st.sampled_from(["admin", "admin", "artist"]))
    def proof_rejected(self, index: int, who: str) -> None:
        actor, admin = ACTORS[who]
        if not admin:
            expected = "FORBIDDEN"
        elif not 0 <= index < len(self.milestones):
            expected = "MILESTONE_NOT_FOUND"
        elif self.status != IN_PROGRESS:
            expected = "PROJECT_STATE_CONFLICT"
        elif self.milestones[index] != PENDING_APPROVAL:
            expected = "MILESTONE_STATE_CONFLICT"
        else:
            expected = None
        self._attempt(
            expected,
            lambda: self.app.reject_milestone(
                self.id,
                index=index,
                reason="blurry",
                actor_id=actor,
                actor_is_admin=admin,
                now=self.now,
            ),
        )
        if expected is None:
            self.milestones[index] = LOCKED

    # -- release and revenue ---------------------------------------------------------------

    @rule(who=st.sampled_from(["artist", "admin", "stranger"]))
    def finalize(self, who: str) -> None:
        actor, admin = ACTORS[who]
        if who == "stranger":
            expected = "FORBIDDEN"
        elif self.status == RELEASED:
            expected = None
        elif self.status != IN_PROGRESS or self.next < len(self.milestones):
            expected = "PROJECT_STATE_CONFLICT"
        else:
            expected = None
        self._attempt(
            expected,
            lambda: self.app.finalize_project(
                self.id, actor_id=actor, actor_is_admin=admin, now=self.now
            ),
        )
        if expected is None:
            self.status = RELEASED

    @rule(
        booking=st.sampled_from(["b1", "b2", "b3", "b4"]),
        amount=st.integers(0, 100_000),
        who=st.sampled_from(["admin", "admin", "artist"]),
    )
    def revenue_booked(self, booking: str, amount: int, who: str) -> None:
        actor, admin = ACTORS[who]
        if not admin:
            expected = "FORBIDDEN"
        elif booking in self.bookings:
            expected = None
        elif amount < 1:
            expected = "VALIDATION_ERROR"
        elif self.status != RELEASED:
            expected = "PROJECT_STATE_CONFLICT"
        else:
            expected = None
        self._attempt(
            expected,
            lambda: self.app.book_project_revenue(
                self.id,
                booking_id=booking,
                amount=amount,
                actor_id=actor,
                actor_is_admin=admin,
                now=self.now,
            ),
        )
        if expected is None and booking not in self.bookings:
            self.bookings.add(booking)
            self.shared += amount * self.bps // 10_000

    @precondition(lambda self: self.investments)
    @rule(data=st.data(), own=st.booleans())
    def payout_claimed(self, data: st.DataObject, own: bool) -> None:
        iid = self._pick(data)
        mine = self.investments[iid]
        account = mine["account"] if own else data.draw(st.sampled_from(FUNDERS))
        raised = self._raised()
        due = (
            self.shared * mine["amount"] // raised - mine["claimed"]
            if mine["state"] == PAID and raised
            else 0
        )
        if account != mine["account"]:
            expected = "INVESTMENT_NOT_FOUND"
        elif due <= 0:
            expected = "NOTHING_TO_CLAIM"
        else:
            expected = None
        answer = self._attempt(
            expected,
            lambda: self.app.claim_payout(
                self.id, investment_id=iid, account_id=account, now=self.now
            ),
        )
        if expected is None:
            assert answer == due
            mine["claimed"] += due

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def the_project_as_rebuilt_from_its_events_holds(self) -> None:
        p = self.app.project(self.id)
        self.the_money_is_conserved(p)
        self.funding_never_passes_the_goal_and_matches_what_was_seen(p)
        self.milestones_are_released_in_order(p)
        self.a_cancellation_refunds_the_unreleased_rest_pro_rata(p)
        self.claims_never_exceed_the_funders_share(p)
        self.every_payment_told_is_invested_or_to_be_refunded(p)

    def the_money_is_conserved(self, p: Project) -> None:
        entries = p.investments
        refunded = sum(i["refunded"] for i in entries.values())
        assert p.refunded == refunded
        assert p.escrowed >= 0
        assert p.raised == p.released + refunded + p.remainder + p.escrowed
        if p.status == CANCELLED:
            assert p.escrowed == 0
        else:
            assert refunded == 0 and p.remainder == 0

    def funding_never_passes_the_goal_and_matches_what_was_seen(self, p: Project) -> None:
        entries = p.investments
        paid = sum(i["amount"] for i in entries.values() if i["state"] == PAID)
        pending = sum(i["amount"] for i in entries.values() if i["state"] == PENDING)
        assert 0 <= p.raised and 0 <= p.held
        assert p.raised + p.held <= p.funding_goal == self.goal
        assert (p.raised, p.held) == (paid, pending) == (self._raised(), self._held())
        assert p.status == self.status
        assert sorted(entries) == sorted(self.investments)
        for iid, mine in self.investments.items():
            i = entries[iid]
            assert (i["state"], i["amount"], i["account_id"]) == (
                mine["state"],
                mine["amount"],
                mine["account"],
            )
        if p.status in (IN_PROGRESS, RELEASED):
            assert p.raised == p.funding_goal and p.held == 0
        if p.status == FUNDING:
            assert p.raised < p.funding_goal
        if pending:
            assert p.status == FUNDING

    def milestones_are_released_in_order(self, p: Project) -> None:
        statuses = [m["status"] for m in p.milestones]
        assert statuses == self.milestones
        k = p.next_milestone
        assert k == self.next
        assert [s == UNLOCKED for s in statuses] == [True] * k + [False] * (len(statuses) - k)
        assert p.released == sum(m["payout_amount"] for m in p.milestones[:k]) == self.released
        assert sum(m["payout_amount"] for m in p.milestones) == p.funding_goal

    def a_cancellation_refunds_the_unreleased_rest_pro_rata(self, p: Project) -> None:
        if p.status != CANCELLED:
            assert self.cancellation is None
            return
        c = self.cancellation
        assert c is not None and p.ended_reason == c["reason"]
        paid = {iid: i for iid, i in p.investments.items() if i["state"] == PAID}
        assert p.remainder == c["remainder"]
        assert p.remainder >= 0
        assert p.remainder == 0 or p.remainder < len(paid)
        unreleased = p.raised - c["released"]
        for iid, i in paid.items():
            assert i["refunded"] == i["amount"] * unreleased // p.raised == c["refunds"][iid]
        if c["reason"] == "deadline":
            assert c["released"] == 0 and p.remainder == 0
            assert all(i["refunded"] == i["amount"] for i in paid.values())
        for i in p.investments.values():
            if i["state"] != PAID:
                assert i["refunded"] == 0

    def claims_never_exceed_the_funders_share(self, p: Project) -> None:
        assert p.shared == self.shared
        assert 0 <= p.claimed <= p.shared
        assert p.claimed == sum(i["claimed"] for i in p.investments.values())
        for iid, i in p.investments.items():
            assert i["claimed"] == self.investments[iid]["claimed"]
            if i["claimed"]:
                assert i["claimed"] <= p.shared * i["amount"] // p.raised

    def every_payment_told_is_invested_or_to_be_refunded(self, p: Project) -> None:
        for iid, mine in self.investments.items():
            i = p.investments[iid]
            refunds = i.get("refunds_required", [])
            assert refunds == mine["refunds_required"]
            for payment in mine["told"]:
                invested_by_it = i["state"] == PAID and i["payment"] == payment
                assert invested_by_it != (payment in refunds), (iid, payment, i)


ProjectMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("AUDIFI_MODEL_EXAMPLES", "60")),
    stateful_step_count=80,
    deadline=None,
)
test_a_project_conserves_its_money_whatever_happens = ProjectMachine.TestCase
