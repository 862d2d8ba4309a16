"""Coda Collective projects on the in-memory application: what an artist, a fan and an admin see."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from audifi_kit.errors import Forbidden, ValidationFailed
from audifi_nft.bootstrap import in_memory
from audifi_nft.domain.project import (
    CANCELLED,
    FUNDING,
    IN_PROGRESS,
    LAPSED,
    LOCKED,
    PAID,
    PENDING,
    PENDING_APPROVAL,
    RELEASED,
    UNLOCKED,
    FundingExceedsGoal,
    InvestmentNotFound,
    MilestoneOutOfOrder,
    MilestoneStateConflict,
    NothingToClaim,
    PaymentOutcome,
    ProjectNotFunding,
    ProjectStateConflict,
)
from nft_support import ARTIST, T0

ADMIN = str(uuid.UUID(int=2))
FAN = str(uuid.UUID(int=7))
OTHER = str(uuid.UUID(int=8))
THIRD = str(uuid.UUID(int=9))
DEADLINE = T0 + timedelta(days=30)


def _create(app, *, goal=1_000, payouts=(300, 700), currency="usd", share_bps=2_000, **kw: Any):
    return app.create_project(
        project_id=kw.pop("project_id", uuid.uuid4()),
        artist_id=ARTIST,
        actor_id=kw.pop("actor_id", ARTIST),
        actor_is_admin=kw.pop("actor_is_admin", False),
        now=T0,
        title="Second Light",
        description="An album, funded by its listeners",
        funding_goal=goal,
        currency=currency,
        funding_deadline=kw.pop("funding_deadline", DEADLINE),
        release_date=None,
        share_bps=share_bps,
        milestones=[{"name": f"Step {i + 1}", "payout_amount": p} for i, p in enumerate(payouts)],
    )


def _invest(app, project_id, investment_id, account_id, amount, now=T0):
    return app.invest(
        project_id,
        investment_id=investment_id,
        account_id=account_id,
        amount=amount,
        method="card",
        now=now,
    )


def _fund(app, project_id, investment_id, account_id, amount, now=T0):
    _invest(app, project_id, investment_id, account_id, amount, now)
    outcome = app.record_investment_payment(
        project_id, investment_id=investment_id, payment=f"pi_{investment_id}", paid_at=now
    )
    assert outcome == PaymentOutcome.INVESTED


def _funded(app, **kw: Any):
    """A project of 1000 cents (milestones 300 and 700) funded by three fans: 333, 333, 334."""
    project = _create(app, **kw)
    _fund(app, project.id, "i1", FAN, 333)
    _fund(app, project.id, "i2", OTHER, 333)
    _fund(app, project.id, "i3", THIRD, 334)
    return app.project(project.id)


def _as(actor: str) -> dict[str, Any]:
    return {"actor_id": actor, "actor_is_admin": actor == ADMIN, "now": T0}


def _deliver(app, project_id, index):
    app.submit_milestone_proof(
        project_id, index=index, proof={"url": "https://example.com/mix.wav"}, **_as(ARTIST)
    )
    app.approve_milestone(project_id, index=index, **_as(ADMIN))


# -- funding -------------------------------------------------------------------------------


def test_a_project_funded_by_three_fans_reaches_its_goal_and_starts() -> None:
    app = in_memory()
    project = _create(app)
    assert (project.status, project.left, project.currency) == (FUNDING, 1_000, "USD")
    _fund(app, project.id, "i1", FAN, 333)
    _fund(app, project.id, "i2", OTHER, 333)
    assert app.project(project.id).status == FUNDING
    _fund(app, project.id, "i3", THIRD, 334)
    started = app.project(project.id)
    assert (started.status, started.raised, started.held, started.left) == (
        IN_PROGRESS,
        1_000,
        0,
        0,
    )
    assert started.escrowed == 1_000 and started.released == 0
    assert started.funders() == [FAN, OTHER, THIRD]
    assert all(i["state"] == PAID for i in started.investments.values())


def test_funding_past_what_is_left_is_refused_naming_what_is_left_and_changes_nothing() -> None:
    app = in_memory()
    project = _create(app)
    _fund(app, project.id, "i1", FAN, 600)
    _invest(app, project.id, "i2", OTHER, 300)  # held while it pays: it counts
    before = app.project(project.id)
    with pytest.raises(FundingExceedsGoal) as refused:
        _invest(app, project.id, "i3", THIRD, 101)
    assert refused.value.code == "FUNDING_EXCEEDS_GOAL" and refused.value.status_code == 409
    assert refused.value.details == {"left": 100, "requested": 101, "currency": "USD"}
    after = app.project(project.id)
    assert after.version == before.version and "i3" not in after.investments
    assert (after.raised, after.held, after.left) == (600, 300, 100)


def test_a_cancelled_project_takes_no_funding() -> None:
    app = in_memory()
    project = _create(app)
    app.cancel_project(project.id, reason="withdrawn", **_as(ADMIN))
    with pytest.raises(ProjectNotFunding) as refused:
        _invest(app, project.id, "i1", FAN, 100)
    assert refused.value.code == "PROJECT_NOT_FUNDING"
    assert refused.value.details == {"status": CANCELLED}
    assert app.project(project.id).investments == {}


def test_the_minimum_investment_is_one_unit_of_the_currency_unless_less_is_left() -> None:
    app = in_memory()
    dollars = _create(app, goal=250, payouts=(250,))
    with pytest.raises(ValidationFailed) as refused:
        _invest(app, dollars.id, "i1", FAN, 99)
    assert refused.value.details["fields"][0]["field"] == "amount"
    _invest(app, dollars.id, "i1", FAN, 100)
    _invest(app, dollars.id, "i2", OTHER, 100)
    assert app.project(dollars.id).minimum_investment == 50  # all that is left
    with pytest.raises(ValidationFailed):
        _invest(app, dollars.id, "i3", THIRD, 49)
    assert _invest(app, dollars.id, "i3", THIRD, 50)["amount"] == 50

    yen = _create(app, goal=3, payouts=(3,), currency="jpy")
    assert app.project(yen.id).minimum_investment == 1
    assert _invest(app, yen.id, "y1", FAN, 1)["amount"] == 1
    with pytest.raises(ValidationFailed) as refused:
        _invest(app, yen.id, "y2", FAN, 0)
    assert refused.value.details["fields"][0]["field"] == "amount"


def test_a_retried_investment_id_answers_the_same_investment() -> None:
    app = in_memory()
    project = _create(app)
    first = _invest(app, project.id, "i1", FAN, 500)
    version = app.project(project.id).version
    again = _invest(app, project.id, "i1", FAN, 700)
    assert again == first and (again["amount"], again["state"]) == (500, PENDING)
    after = app.project(project.id)
    assert after.version == version and after.held == 500


def test_a_payment_is_invested_once_and_a_late_one_needs_a_refund() -> None:
    app = in_memory()
    project = _create(app)
    _invest(app, project.id, "i1", FAN, 400)
    pay = app.record_investment_payment
    assert pay(project.id, investment_id="i1", payment="pi_1", paid_at=T0) == "invested"
    assert pay(project.id, investment_id="i1", payment="pi_1", paid_at=T0) == "duplicate"
    _invest(app, project.id, "i2", OTHER, 400)
    assert app.lapse_investment(project.id, investment_id="i2", reason="expired", now=T0)
    assert pay(project.id, investment_id="i2", payment="pi_2", paid_at=T0) == "refund_required"
    after = app.project(project.id)
    assert (after.raised, after.held) == (400, 0)
    assert after.investments["i2"]["state"] == LAPSED
    assert after.investments["i2"]["refunds_required"] == ["pi_2"]


# -- the end of funding --------------------------------------------------------------------


def test_a_project_short_of_its_goal_at_the_deadline_is_cancelled_and_refunded_in_full() -> None:
    app = in_memory()
    project = _create(app)
    _fund(app, project.id, "i1", FAN, 250)
    _fund(app, project.id, "i2", OTHER, 333)
    _invest(app, project.id, "i3", THIRD, 100)  # still paying when the deadline comes
    assert not app.end_project_if_due(project.id, now=DEADLINE - timedelta(seconds=1))
    with pytest.raises(ProjectNotFunding):
        _invest(app, project.id, "i4", THIRD, 100, now=DEADLINE)
    assert app.end_project_if_due(project.id, now=DEADLINE)
    ended = app.project(project.id)
    assert (ended.status, ended.ended_reason) == (CANCELLED, "deadline")
    refunds = {iid: (i["amount"], i["refunded"]) for iid, i in ended.investments.items()}
    assert refunds == {"i1": (250, 250), "i2": (333, 333), "i3": (100, 0)}
    assert ended.investments["i3"]["state"] == LAPSED
    assert (ended.refunded, ended.remainder, ended.escrowed, ended.held) == (583, 0, 0, 0)
    assert not app.end_project_if_due(project.id, now=DEADLINE + timedelta(days=1))


def test_a_funder_paying_when_the_deadline_comes_may_finish_paying_and_reach_the_goal() -> None:
    app = in_memory()
    project = _create(app)
    _fund(app, project.id, "i1", FAN, 600)
    just_before = DEADLINE - timedelta(minutes=5)
    _invest(app, project.id, "i2", OTHER, 400, now=just_before)
    assert not app.end_project_if_due(project.id, now=DEADLINE)  # i2 is still being paid
    paid_after = DEADLINE + timedelta(minutes=5)
    outcome = app.record_investment_payment(
        project.id, investment_id="i2", payment="pi_i2", paid_at=paid_after
    )
    assert outcome == PaymentOutcome.INVESTED
    assert app.project(project.id).status == IN_PROGRESS
    assert not app.end_project_if_due(project.id, now=DEADLINE + timedelta(hours=1))


def test_at_the_deadline_a_hold_that_expired_unpaid_no_longer_keeps_the_project_open() -> None:
    app = in_memory()
    project = _create(app)
    _fund(app, project.id, "i1", FAN, 600)
    _invest(app, project.id, "i2", OTHER, 300, now=DEADLINE - timedelta(minutes=5))
    assert app.end_project_if_due(project.id, now=DEADLINE + timedelta(minutes=10))
    ended = app.project(project.id)
    assert (ended.status, ended.investments["i2"]["state"]) == (CANCELLED, LAPSED)
    late = app.record_investment_payment(
        project.id, investment_id="i2", payment="pi_i2", paid_at=DEADLINE + timedelta(minutes=11)
    )
    assert late == PaymentOutcome.REFUND_REQUIRED


def test_an_admin_cancelling_after_a_release_refunds_the_rest_pro_rata_rounding_down() -> None:
    """1000 raised by 333 + 333 + 334, 300 released: the 700 left is refunded as
    amount * 700 // 1000, 233 each (233.1, 233.1, 233.8); the 1 the rounding leaves is the
    remainder, booked to the platform, fewer than the three investments."""
    app = in_memory()
    project = _funded(app)
    _deliver(app, project.id, 0)
    with pytest.raises(Forbidden):
        app.cancel_project(project.id, reason="dispute", **_as(ARTIST))
    app.cancel_project(project.id, reason="dispute", **_as(ADMIN))
    ended = app.project(project.id)
    assert (ended.status, ended.ended_reason) == (CANCELLED, "dispute")
    assert [i["refunded"] for i in ended.investments.values()] == [233, 233, 233]
    assert (ended.released, ended.refunded, ended.remainder, ended.escrowed) == (300, 699, 1, 0)
    assert ended.raised == ended.released + ended.refunded + ended.remainder
    app.cancel_project(project.id, reason="again", **_as(ADMIN))  # once is enough
    assert app.project(project.id).version == ended.version


# -- milestones ----------------------------------------------------------------------------


def test_approving_a_locked_milestone_is_a_conflict() -> None:
    app = in_memory()
    project = _funded(app)
    with pytest.raises(MilestoneStateConflict) as refused:
        app.approve_milestone(project.id, index=0, **_as(ADMIN))
    assert (refused.value.code, refused.value.status_code) == ("MILESTONE_STATE_CONFLICT", 409)
    assert refused.value.details == {"milestoneId": f"{project.id}.1", "status": LOCKED}


def test_milestones_are_released_in_order() -> None:
    app = in_memory()
    project = _funded(app)
    app.submit_milestone_proof(project.id, index=1, proof={"url": "u2"}, **_as(ARTIST))
    with pytest.raises(MilestoneOutOfOrder) as refused:
        app.approve_milestone(project.id, index=1, **_as(ADMIN))
    assert refused.value.code == "MILESTONE_OUT_OF_ORDER"
    assert refused.value.details == {
        "milestoneId": f"{project.id}.2",
        "next": f"{project.id}.1",
    }
    _deliver(app, project.id, 0)
    app.approve_milestone(project.id, index=1, **_as(ADMIN))
    done = app.project(project.id)
    assert [m["status"] for m in done.milestones] == [UNLOCKED, UNLOCKED]
    assert (done.released, done.escrowed) == (1_000, 0)


def test_a_rejected_proof_locks_the_milestone_until_a_new_one_is_approved() -> None:
    app = in_memory()
    project = _funded(app)
    app.submit_milestone_proof(project.id, index=0, proof={"url": "blurry"}, **_as(ARTIST))
    assert app.project(project.id).milestones[0]["status"] == PENDING_APPROVAL
    app.reject_milestone(project.id, index=0, reason="Unreadable", **_as(ADMIN))
    rejected = app.project(project.id).milestones[0]
    assert (rejected["status"], rejected["proof"]) == (LOCKED, None)
    assert [(r["reason"], r["proof"]["url"]) for r in rejected["rejections"]] == [
        ("Unreadable", "blurry")
    ]
    with pytest.raises(MilestoneStateConflict):
        app.reject_milestone(project.id, index=0, reason="Again", **_as(ADMIN))
    app.submit_milestone_proof(project.id, index=0, proof={"url": "sharp"}, **_as(ARTIST))
    app.approve_milestone(project.id, index=0, **_as(ADMIN))
    approved = app.project(project.id)
    assert approved.milestones[0]["status"] == UNLOCKED
    assert approved.milestones[0]["proof"]["url"] == "sharp"
    assert (approved.released, approved.escrowed, approved.next_milestone) == (300, 700, 1)


def test_milestones_that_do_not_add_up_to_the_goal_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationFailed) as refused:
        _create(in_memory(), goal=1_000, payouts=(300, 600))
    field = refused.value.details["fields"][0]
    assert field["field"] == "milestones" and "900" in field["message"]


def test_only_an_admin_approves_or_rejects_a_milestone() -> None:
    app = in_memory()
    project = _funded(app)
    app.submit_milestone_proof(project.id, index=0, proof={"url": "u"}, **_as(ARTIST))
    with pytest.raises(Forbidden) as refused:
        app.approve_milestone(project.id, index=0, **_as(ARTIST))
    assert refused.value.status_code == 403
    with pytest.raises(Forbidden):
        app.reject_milestone(project.id, index=0, reason="mine", **_as(FAN))
    assert app.project(project.id).milestones[0]["status"] == PENDING_APPROVAL


def test_only_the_artist_or_an_admin_submits_a_proof() -> None:
    app = in_memory()
    project = _funded(app)
    with pytest.raises(Forbidden):
        app.submit_milestone_proof(project.id, index=0, proof={"url": "u"}, **_as(FAN))
    assert app.project(project.id).milestones[0]["status"] == LOCKED
    app.submit_milestone_proof(project.id, index=0, proof={"url": "u"}, **_as(ADMIN))
    assert app.project(project.id).milestones[0]["status"] == PENDING_APPROVAL


def test_a_proof_waits_for_the_project_to_be_funded() -> None:
    app = in_memory()
    project = _create(app)
    with pytest.raises(ProjectStateConflict) as refused:
        app.submit_milestone_proof(project.id, index=0, proof={"url": "u"}, **_as(ARTIST))
    assert refused.value.details == {"status": FUNDING}


# -- release and revenue -------------------------------------------------------------------


def test_a_project_is_finalized_only_once_every_milestone_is_released() -> None:
    app = in_memory()
    project = _funded(app)
    _deliver(app, project.id, 0)
    with pytest.raises(ProjectStateConflict) as refused:
        app.finalize_project(project.id, **_as(ARTIST))
    assert refused.value.code == "PROJECT_STATE_CONFLICT"
    assert refused.value.details == {"status": IN_PROGRESS, "milestonesReleased": 1}
    _deliver(app, project.id, 1)
    with pytest.raises(Forbidden):
        app.finalize_project(project.id, **_as(FAN))
    assert app.finalize_project(project.id, **_as(ARTIST)).status == RELEASED
    with pytest.raises(ProjectStateConflict):
        app.cancel_project(project.id, reason="too late", **_as(ADMIN))


def test_revenue_shared_after_the_release_is_claimed_cumulatively_and_never_twice() -> None:
    """20% of the revenue is the funders'; each investment claims shared * amount // raised
    less what it claimed, so the rounding is caught up by later bookings, never paid twice."""
    app = in_memory()
    project = _funded(app)  # 333 + 333 + 334 of 1000
    with pytest.raises(ProjectStateConflict):
        app.book_project_revenue(project.id, booking_id="b1", amount=1_000, **_as(ADMIN))
    _deliver(app, project.id, 0)
    _deliver(app, project.id, 1)
    app.finalize_project(project.id, **_as(ARTIST))
    with pytest.raises(Forbidden):
        app.book_project_revenue(project.id, booking_id="b1", amount=1_000, **_as(ARTIST))
    app.book_project_revenue(project.id, booking_id="b1", amount=1_000, **_as(ADMIN))
    app.book_project_revenue(project.id, booking_id="b1", amount=1_000, **_as(ADMIN))  # a retry
    assert app.project(project.id).shared == 200

    def claim(iid: str, account: str) -> int:
        return app.claim_payout(project.id, investment_id=iid, account_id=account, now=T0)

    assert claim("i1", FAN) == 66  # 200 * 333 // 1000
    with pytest.raises(NothingToClaim) as refused:
        claim("i1", FAN)
    assert refused.value.code == "NOTHING_TO_CLAIM"
    assert refused.value.details == {"investmentId": "i1", "claimed": 66}
    assert claim("i3", THIRD) == 66  # 200 * 334 // 1000

    app.book_project_revenue(project.id, booking_id="b2", amount=505, **_as(ADMIN))
    assert app.project(project.id).shared == 301  # + 505 * 20% rounded down
    assert claim("i1", FAN) == 34  # 301 * 333 // 1000 = 100, less the 66 claimed
    assert claim("i2", OTHER) == 100
    after = app.project(project.id)
    assert [i["claimed"] for i in after.investments.values()] == [100, 100, 66]
    assert after.claimed == 266 <= after.shared
    assert after.claimable("i3") == 34


def test_a_funder_claims_only_their_own_investment() -> None:
    app = in_memory()
    project = _funded(app)
    _deliver(app, project.id, 0)
    _deliver(app, project.id, 1)
    app.finalize_project(project.id, **_as(ADMIN))
    app.book_project_revenue(project.id, booking_id="b1", amount=10_000, **_as(ADMIN))
    with pytest.raises(InvestmentNotFound) as refused:
        app.claim_payout(project.id, investment_id="i1", account_id=OTHER, now=T0)
    assert refused.value.code == "INVESTMENT_NOT_FOUND"
    assert app.project(project.id).investments["i1"]["claimed"] == 0
