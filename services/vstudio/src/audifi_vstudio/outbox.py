"""Integration events out: the mapping of this service's public domain events to `vstudio.*`
events in the published language (audifi_events.vstudio). The domain events carry what the
published ones need (`facts`), so nothing is loaded to publish them."""

from __future__ import annotations

from typing import Any

from audifi_events import vstudio as published
from audifi_kit.outbox import OutboxMapping

from audifi_vstudio.domain.session import Decision, StudioSession

outbox = OutboxMapping("vstudio")


@outbox.maps(StudioSession.Created)
def _created(e: Any) -> published.SessionCreated:
    return published.SessionCreated(
        session_id=str(e.originator_id),
        master_id=str(e.master_id),
        artist_id=e.artist_id,
        title=e.title,
        scheduled_start=e.scheduled_start,
        created_at=e.at,
    )


@outbox.maps(StudioSession.Locked)
def _locked(e: Any) -> published.SessionLocked:
    return published.SessionLocked(
        session_id=str(e.originator_id),
        master_id=e.facts["master_id"],
        artist_id=e.facts["artist_id"],
        locked_by=e.by,
        locked_at=e.at,
    )


@outbox.maps(Decision.Opened)
def _opened(e: Any) -> published.DecisionOpened:
    return published.DecisionOpened(
        session_id=str(e.session_id),
        decision_id=str(e.originator_id),
        master_id=str(e.master_id),
        question=e.question,
        options=e.options,
        weighting=e.weighting,
        holders=e.holders,
        closes_at=e.closes_at,
        opened_at=e.at,
    )


@outbox.maps(Decision.VoteCast)
def _vote(e: Any) -> published.VoteCast:
    return published.VoteCast(
        session_id=e.facts["session_id"],
        decision_id=str(e.originator_id),
        master_id=e.facts["master_id"],
        seq=e.seq,
        voter=e.voter,
        choice=e.choice,
        weight=e.weight,
        hash=e.hash,
        cast_at=e.at,
    )


@outbox.maps(Decision.Closed)
def _closed(e: Any) -> published.DecisionClosed:
    return published.DecisionClosed(
        session_id=e.facts["session_id"],
        decision_id=str(e.originator_id),
        master_id=e.facts["master_id"],
        results=e.results,
        winner=e.winner,
        tie=e.tie,
        votes=e.votes,
        final_hash=e.final_hash,
        closed_at=e.at,
    )


@outbox.maps(StudioSession.ContributionAdded)
def _contribution(e: Any) -> published.ContributionAdded:
    return published.ContributionAdded(
        session_id=str(e.originator_id),
        contribution_id=e.contribution_id,
        master_id=e.facts["master_id"],
        producer_id=e.producer_id,
        title=e.title,
        note=e.note,
        mime=e.file["mime"],
        size=e.file["size"],
        sha256=e.file["sha256"],
        added_at=e.at,
    )
