"""The frames of a session room that carry decisions and votes (JSON text, camelCase).

The seed's, with their fields exactly, and what we add after them (a client reading only the
seed's fields is never broken by ours):

* `{"type": "vote_update", "decisionId", "results": {...}, "votes", "hash"}`: a decision's
  results (summed weights per option), sent to every member at most every 100 ms per decision
  (coalesced: each frame carries the whole results, so one dropped loses nothing); `votes`
  counts the votes cast so far (changes included) and `hash` is the tally's running hash
  after the last of them (see the audit).
* `{"type": "decision_closed", "decisionId", "winner", "tie", "results", "hash"}`.
* ours: `{"type": "decision_opened", "decisionId", "question", "options", "weighting",
  "closesAt"}`; `{"type": "session_locked", "sessionId"}`; `{"type": "snapshot",
  "sessionId", "status", "decisions": [...]}` to a member who joins (every decision with its
  current results); `{"type": "vote_ack", "decisionId", "choice", "weight"}` to a voter whose
  vote counted, else an `error` frame (`code`, `message`, `decisionId`);
  `{"type": "contribution_added", "contributionId", "producerId", "title", "note", "url"}`
  when a producer brings a take.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from audifi_vstudio.domain.session import Decision


class ServerFrame(msgspec.Struct, tag_field="type", rename="camel", frozen=True):
    """A frame the server sends."""


class VoteUpdate(ServerFrame, tag="vote_update"):
    decision_id: UUID
    results: dict[str, int]
    votes: int
    hash: str


class DecisionClosedFrame(ServerFrame, tag="decision_closed"):
    decision_id: UUID
    winner: str
    tie: bool
    results: dict[str, int]
    hash: str


class DecisionOpenedFrame(ServerFrame, tag="decision_opened"):
    decision_id: UUID
    question: str
    options: list[str]
    weighting: str
    closes_at: datetime | None


class SessionLockedFrame(ServerFrame, tag="session_locked"):
    session_id: UUID


class ContributionAddedFrame(ServerFrame, tag="contribution_added"):
    contribution_id: UUID
    producer_id: str
    title: str
    note: str
    url: str  # GET it with your token


class VoteAck(ServerFrame, tag="vote_ack"):
    decision_id: UUID
    choice: str
    weight: int


class DecisionState(msgspec.Struct, rename="camel", frozen=True):
    decision_id: UUID
    sources: dict[str, UUID]  # option -> the contribution it is, for options that are takes
    question: str
    options: list[str]
    weighting: str
    status: str
    closes_at: datetime | None
    results: dict[str, int]
    votes: int
    hash: str
    winner: str | None
    tie: bool


class Snapshot(ServerFrame, tag="snapshot"):
    session_id: UUID
    status: str
    decisions: list[DecisionState]


_encoder = msgspec.json.Encoder()


def encode(frame: Any) -> bytes:
    return _encoder.encode(frame)


def decision_state(d: Decision) -> DecisionState:
    return DecisionState(
        decision_id=d.id,
        sources={o: UUID(c) for o, c in getattr(d, "sources", {}).items()},
        question=d.question,
        options=d.options,
        weighting=d.weighting,
        status=d.status,
        closes_at=d.closes_at,
        results=d.results,
        votes=d.votes,
        hash=d.hash,
        winner=d.winner,
        tie=d.tie,
    )


def vote_update(d: Decision) -> VoteUpdate:
    return VoteUpdate(decision_id=d.id, results=d.results, votes=d.votes, hash=d.hash)


def decision_closed(d: Decision) -> DecisionClosedFrame:
    assert d.winner is not None
    return DecisionClosedFrame(
        decision_id=d.id, winner=d.winner, tie=d.tie, results=d.results, hash=d.hash
    )
