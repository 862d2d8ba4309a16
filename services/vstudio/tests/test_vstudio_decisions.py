"""Sessions, decisions and votes on the in-memory application: who may do what, how votes
weigh and count, and a tally anyone can check (a property test over random vote streams)."""

from __future__ import annotations

import copy
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from audifi_kit.errors import Forbidden, ValidationFailed
from audifi_vstudio.bootstrap import in_memory
from audifi_vstudio.domain.session import (
    CLOSED,
    LOCKED,
    DecisionClosed,
    NotAHolder,
    NotAProducer,
    SessionLocked,
)
from audifi_vstudio.domain.tally import GENESIS, CastVote, chain, pseudonym, verify
from hypothesis import given, settings
from hypothesis import strategies as st

T0 = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
ARTIST = str(uuid.UUID(int=1))
ADMIN = str(uuid.UUID(int=2))
FAN = str(uuid.UUID(int=3))
KEY = b"k" * 32


def _session(app: Any, **kw: Any) -> Any:
    return app.create_session(
        session_id=kw.pop("session_id", uuid.uuid4()),
        master_id=kw.pop("master_id", uuid.uuid4()),
        artist_id=ARTIST,
        actor_id=kw.pop("actor_id", ARTIST),
        actor_is_admin=kw.pop("actor_is_admin", False),
        title="Finishing 'First Light'",
        scheduled_start=T0,
        now=T0,
    )


def _decision(app: Any, session: Any, weights: dict[str, int] | None, **kw: Any) -> Any:
    decision_id = kw.pop("decision_id", uuid.uuid4())
    return app.open_decision(
        session.id,
        decision_id=decision_id,
        actor_id=kw.pop("actor_id", ARTIST),
        actor_is_admin=False,
        question="Which chorus?",
        options=kw.pop("options", ["A", "B"]),
        weighting=kw.pop("weighting", "shares"),
        closes_at=kw.pop("closes_at", None),
        weights=weights,
        now=T0,
    )


def test_only_the_masters_artist_or_an_admin_opens_a_session_and_its_decisions() -> None:
    app = in_memory()
    with pytest.raises(Forbidden):
        _session(app, actor_id=FAN)
    session = _session(app, actor_id=ADMIN, actor_is_admin=True)
    with pytest.raises(Forbidden):
        _decision(app, session, {}, actor_id=FAN)
    for options, field in (
        (["A"], "options"),
        (["A", "A"], "options[1]"),
        (["A", ""], "options[1]"),
        ([f"o{i}" for i in range(11)], "options"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            _decision(app, session, {}, options=options)
        assert refused.value.details["fields"][0]["field"] == field
    with pytest.raises(ValidationFailed):
        _decision(app, session, {}, closes_at=T0 - timedelta(minutes=1))
    assert app.session(session.id).decisions == []  # nothing refused was recorded


def test_votes_weigh_the_shares_held_at_opening_and_a_changed_vote_moves_its_weight() -> None:
    app = in_memory()
    session = _session(app)
    decision_id = uuid.uuid4()
    fans = {"50": str(uuid.uuid4()), "30": str(uuid.uuid4())}
    weights = {
        pseudonym(KEY, decision_id, fans["50"]): 50,
        pseudonym(KEY, decision_id, fans["30"]): 30,
    }
    decision = _decision(app, session, weights, decision_id=decision_id)

    def vote(fan: str, choice: str) -> Any:
        return app.vote(
            decision.id,
            session_id=session.id,
            voter=pseudonym(KEY, decision_id, fan),
            choice=choice,
            now=T0,
        )

    vote(fans["50"], "A")
    assert vote(fans["30"], "B").results == {"A": 50, "B": 30}  # the seed's example
    assert vote(fans["30"], "A").results == {"A": 80, "B": 0}  # changed: its weight moves
    assert vote(fans["30"], "A").votes == 3  # the same choice again records nothing
    with pytest.raises(NotAHolder):  # not in the snapshot: no vote
        vote(FAN, "A")
    with pytest.raises(ValidationFailed):
        vote(fans["50"], "C")

    closed = app.close_decision(
        decision.id, session_id=session.id, actor_id=ARTIST, actor_is_admin=False, now=T0
    )
    assert (closed.status, closed.winner, closed.tie) == (CLOSED, "A", False)
    with pytest.raises(DecisionClosed):
        vote(fans["30"], "B")
    votes = app.cast_votes(decision.id)
    assert [v.seq for v in votes] == [1, 2, 3]
    verdict = verify(
        closed.options,
        closed.weights,
        votes,
        final_hash=app.final_hash(decision.id),
        results=closed.results,
        winner=closed.winner,
    )
    assert verdict.ok, verdict.problems


def test_equal_weighting_counts_one_per_account_and_a_tie_goes_to_the_first_option() -> None:
    app = in_memory()
    session = _session(app)
    decision = _decision(app, session, None, weighting="equal", options=["Slow", "Fast"])
    for fan, choice in ((FAN, "Fast"), (ARTIST, "Slow")):
        app.vote(decision.id, session_id=session.id, voter=fan, choice=choice, now=T0)
    closed = app.close_decision(
        decision.id, session_id=session.id, actor_id=ARTIST, actor_is_admin=False, now=T0
    )
    assert (closed.results, closed.winner, closed.tie) == ({"Slow": 1, "Fast": 1}, "Slow", True)


def test_a_copy_of_a_decision_votes_without_touching_the_original() -> None:
    """The repository copies a cached decision out for each batch: votes on the copy (its
    ballots changed in place) must leave the cached one as it was."""
    app = in_memory()
    session = _session(app)
    opened = _decision(app, session, None, weighting="equal")
    app.vote(opened.id, session_id=session.id, voter=FAN, choice="A", now=T0)
    original = app.decision(opened.id)
    copied = copy.deepcopy(original)
    copied.vote(voter=FAN, choice="B", now=T0)
    copied.vote(voter=ARTIST, choice="B", now=T0)
    assert (copied.results, copied.ballots[FAN][0], copied.votes) == ({"A": 0, "B": 2}, "B", 3)
    assert (original.results, original.ballots, original.votes) == (
        {"A": 1, "B": 0},
        {FAN: ("A", 1)},
        1,
    )
    assert len(copied.pending_events) == 2 and original.pending_events == []
    app.save(copied)
    assert app.decision(opened.id).results == {"A": 0, "B": 2}


def test_locking_closes_every_open_decision_and_refuses_what_follows() -> None:
    app = in_memory()
    session = _session(app)
    first = _decision(app, session, None, weighting="equal")
    second = _decision(app, session, None, weighting="equal")
    app.vote(first.id, session_id=session.id, voter=FAN, choice="B", now=T0)
    with pytest.raises(Forbidden):
        app.lock_session(session.id, actor_id=FAN, actor_is_admin=False, now=T0)
    locked = app.lock_session(session.id, actor_id=ARTIST, actor_is_admin=False, now=T0)
    assert locked.status == LOCKED
    assert [app.decision(d).status for d in (first.id, second.id)] == [CLOSED, CLOSED]
    assert app.decision(first.id).winner == "B"
    with pytest.raises(SessionLocked):
        _decision(app, session, None, weighting="equal")
    with pytest.raises(DecisionClosed):
        app.vote(second.id, session_id=session.id, voter=FAN, choice="A", now=T0)
    assert app.lock_session(session.id, actor_id=ADMIN, actor_is_admin=True, now=T0) is not None


def test_a_decision_closes_at_its_time() -> None:
    app = in_memory()
    session = _session(app)
    decision = _decision(app, session, None, weighting="equal", closes_at=T0 + timedelta(minutes=5))
    with pytest.raises(DecisionClosed):  # past closesAt, even before the clock closed it
        app.vote(
            decision.id, session_id=session.id, voter=FAN, choice="A", now=T0 + timedelta(minutes=5)
        )
    assert not app.close_if_due(decision.id, now=T0 + timedelta(minutes=4))
    assert app.close_if_due(decision.id, now=T0 + timedelta(minutes=5))
    assert app.decision(decision.id).status == CLOSED


def test_tampering_with_a_vote_fails_the_check() -> None:
    votes = [CastVote(1, "v1", "A", 5), CastVote(2, "v2", "B", 3)]
    final = chain(chain(GENESIS, votes[0]), votes[1])
    honest = verify(
        ["A", "B"],
        {"v1": 5, "v2": 3},
        votes,
        final_hash=final,
        results={"A": 5, "B": 3},
        winner="A",
    )
    assert honest.ok
    forged = [votes[0], CastVote(2, "v2", "A", 3)]
    verdict = verify(
        ["A", "B"],
        {"v1": 5, "v2": 3},
        forged,
        final_hash=final,
        results={"A": 5, "B": 3},
        winner="A",
    )
    assert not verdict.ok
    assert "the votes do not hash to the published final hash" in verdict.problems


@settings(max_examples=int(os.environ.get("AUDIFI_FUZZ_EXAMPLES", "60")), deadline=None)
@given(
    holdings=st.lists(st.integers(0, 1_000), min_size=1, max_size=6),
    stream=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 3)), max_size=40),
    options=st.integers(2, 4),
)
def test_any_vote_stream_tallies_each_voters_last_vote_and_its_audit_recomputes(
    holdings: list[int], stream: list[tuple[int, int]], options: int
) -> None:
    """Whoever votes what, in whatever order: the results are each holder's last vote's
    weight summed per option, outsiders and zero holders change nothing, and the audit of the
    closed decision recomputes exactly what was published."""
    app = in_memory()
    session = _session(app)
    decision_id = uuid.uuid4()
    accounts = [str(uuid.UUID(int=100 + i)) for i in range(8)]  # 0..5 may hold, 6..7 never
    weights = {pseudonym(KEY, decision_id, accounts[i]): n for i, n in enumerate(holdings)}
    labels = [f"opt{i}" for i in range(options)]
    decision = _decision(app, session, weights, decision_id=decision_id, options=labels)
    last: dict[int, str] = {}
    for who, pick in stream:
        choice = labels[pick % options]
        weight = holdings[who] if who < len(holdings) else 0
        try:
            app.vote(
                decision.id,
                session_id=session.id,
                voter=pseudonym(KEY, decision_id, accounts[who]),
                choice=choice,
                now=T0,
            )
        except NotAHolder:
            assert weight == 0
            continue
        assert weight > 0
        last[who] = choice
    expected = dict.fromkeys(labels, 0)
    for who, choice in last.items():
        expected[choice] += holdings[who]
    assert app.decision(decision.id).results == expected
    closed = app.close_decision(
        decision.id, session_id=session.id, actor_id=ARTIST, actor_is_admin=False, now=T0
    )
    verdict = verify(
        closed.options,
        closed.weights,
        app.cast_votes(decision.id),
        final_hash=app.final_hash(decision.id),
        results=closed.results,
        winner=closed.winner,
    )
    assert verdict.ok, verdict.problems
    assert verdict.results == expected


def test_producers_contribute_takes_and_fans_vote_between_them() -> None:
    app = in_memory()
    session = _session(app)
    producer = str(uuid.uuid4())
    take = {"key": "contributions/x.wav", "mime": "audio/wav", "size": 10, "sha256": "ab"}

    def contribute(actor: str, title: str) -> uuid.UUID:
        cid = uuid.uuid4()
        app.add_contribution(
            session.id,
            contribution_id=cid,
            actor_id=actor,
            actor_is_admin=False,
            title=title,
            note="",
            file=take,
            now=T0,
        )
        return cid

    with pytest.raises(NotAProducer):  # not invited yet
        contribute(producer, "Producer's mix")
    with pytest.raises(Forbidden):  # only the artist invites
        app.invite_producer(
            session.id, account_id=producer, actor_id=FAN, actor_is_admin=False, now=T0
        )
    app.invite_producer(
        session.id, account_id=producer, actor_id=ARTIST, actor_is_admin=False, now=T0
    )
    theirs = contribute(producer, "Producer's mix")
    mine = contribute(ARTIST, "Artist's mix")
    assert set(app.session(session.id).contributions) == {str(theirs), str(mine)}

    decision = app.open_decision(
        session.id,
        decision_id=uuid.uuid4(),
        actor_id=ARTIST,
        actor_is_admin=False,
        question="Which mix?",
        options=None,
        weighting="equal",
        closes_at=None,
        weights=None,
        now=T0,
        contribution_ids=[str(theirs), str(mine)],
    )
    assert decision.options == ["Producer's mix", "Artist's mix"]
    assert decision.sources == {"Producer's mix": str(theirs), "Artist's mix": str(mine)}
    with pytest.raises(ValidationFailed) as unknown:
        app.open_decision(
            session.id,
            decision_id=uuid.uuid4(),
            actor_id=ARTIST,
            actor_is_admin=False,
            question="Which?",
            options=None,
            weighting="equal",
            closes_at=None,
            weights=None,
            now=T0,
            contribution_ids=[str(theirs), str(uuid.uuid4())],
        )
    assert unknown.value.details["fields"][0]["field"] == "contributionIds[1]"
