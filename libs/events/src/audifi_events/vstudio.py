"""Events the vstudio service publishes: live sessions on a master, their decisions, the votes
cast in them and the lock of the master's creative state.

Voters are pseudonyms (a keyed hash of the decision and the account, never the account id):
a vote is public, who cast it is not. `hash` is the decision's running tally hash after the
vote (see `GET /vstudio/sessions/{id}/decisions/{decisionId}/audit`).
"""

from __future__ import annotations

from datetime import datetime

from audifi_events.registry import IntegrationEvent, integration_event


@integration_event("vstudio.session.created")
class SessionCreated(IntegrationEvent, kw_only=True):
    session_id: str
    master_id: str
    artist_id: str
    title: str
    scheduled_start: datetime | None
    created_at: datetime


@integration_event("vstudio.decision.opened")
class DecisionOpened(IntegrationEvent, kw_only=True):
    session_id: str
    decision_id: str
    master_id: str
    question: str
    options: list[str]
    weighting: str  # shares, equal
    holders: int  # voters the snapshot holds (shares), 0 for equal
    closes_at: datetime | None
    opened_at: datetime


@integration_event("vstudio.vote.cast")
class VoteCast(IntegrationEvent, kw_only=True):
    """A vote (or a changed one: the same `voter`, a later `seq`) in a decision."""

    session_id: str
    decision_id: str
    master_id: str
    seq: int
    voter: str  # pseudonym
    choice: str
    weight: int
    hash: str
    cast_at: datetime


@integration_event("vstudio.decision.closed")
class DecisionClosed(IntegrationEvent, kw_only=True):
    session_id: str
    decision_id: str
    master_id: str
    results: dict[str, int]
    winner: str
    tie: bool
    votes: int
    final_hash: str
    closed_at: datetime


@integration_event("vstudio.session.locked")
class SessionLocked(IntegrationEvent, kw_only=True):
    """The session is locked: its master's creative state is final (nft records it)."""

    session_id: str
    master_id: str
    artist_id: str
    locked_by: str
    locked_at: datetime


@integration_event("vstudio.contribution.added")
class ContributionAdded(IntegrationEvent, kw_only=True):
    """A producer (or the artist) brought a take to the session: a stem or a mix, stored
    through the storage port (its content address: `sha256`)."""

    session_id: str
    contribution_id: str
    master_id: str
    producer_id: str
    title: str
    note: str
    mime: str
    size: int
    sha256: str
    added_at: datetime
