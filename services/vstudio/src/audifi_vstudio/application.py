"""The vstudio service's eventsourcing application: one method per command.

Commands load their aggregates, call them and save; `decide_vote` returns the changed decision
unsaved, for group commit (a burst of votes: `GroupCommit.submit(lambda:
app.decide_vote(...), loads=[decision_id])`). Voters are pseudonyms here (tally.py): the
service layer (voting.py) turns accounts into them with the service's key, so the store never
holds who voted what.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from audifi_kit.errors import Forbidden
from audifi_kit.eventstore import ServiceApplication

from audifi_vstudio.domain.session import (
    OPEN,
    Decision,
    DecisionNotFound,
    NotAProducer,
    SessionNotFound,
    StudioSession,
)
from audifi_vstudio.domain.tally import CastVote


class VstudioApplication(ServiceApplication):
    """V Studio: live sessions, decisions, votes and the master lock, with their WebSocket rooms."""

    # -- sessions ------------------------------------------------------------------------------

    def create_session(
        self,
        *,
        session_id: UUID,
        master_id: UUID,
        artist_id: str,
        actor_id: str,
        actor_is_admin: bool,
        title: str,
        scheduled_start: datetime | None,
        now: datetime,
    ) -> StudioSession:
        """A session on `master_id` (whose artist is `artist_id`), by that artist or an admin;
        the same id again answers the session it made (a retried request)."""
        if actor_id != artist_id and not actor_is_admin:
            raise Forbidden("Only the master's artist (or an admin) opens a session on it")
        existing = self._find(StudioSession, session_id)
        if existing is not None:
            return existing
        session = StudioSession._create(
            StudioSession.Created,
            id=session_id,
            master_id=master_id,
            artist_id=artist_id,
            title=title,
            scheduled_start=scheduled_start,
            created_by=actor_id,
            at=now,
        )
        self.save(session)
        return session

    def session(self, session_id: UUID) -> StudioSession:
        found = self._find(StudioSession, session_id)
        if found is None:
            raise SessionNotFound(details={"sessionId": str(session_id)})
        return found

    def invite_producer(
        self,
        session_id: UUID,
        *,
        account_id: str,
        actor_id: str,
        actor_is_admin: bool,
        now: datetime,
    ) -> StudioSession:
        session = self.session(session_id)
        self.require_artist(session, actor_id, actor_is_admin, "invites producers")
        if session.invite_producer(account_id=account_id, by=actor_id, now=now):
            self.save(session)
        return session

    def add_contribution(
        self,
        session_id: UUID,
        *,
        contribution_id: UUID,
        actor_id: str,
        actor_is_admin: bool,
        title: str,
        note: str,
        file: dict[str, Any],
        now: datetime,
    ) -> StudioSession:
        session = self.session(session_id)
        if not session.may_contribute(actor_id, actor_is_admin):
            raise NotAProducer(details={"sessionId": str(session_id)})
        if session.add_contribution(
            contribution_id=contribution_id,
            producer_id=actor_id,
            title=title,
            note=note,
            file=file,
            now=now,
        ):
            self.save(session)
        return session

    def lock_session(
        self, session_id: UUID, *, actor_id: str, actor_is_admin: bool, now: datetime
    ) -> StudioSession:
        """Close every open decision and lock the session (the master's creative state is
        final); again: the locked session."""
        session = self.session(session_id)
        self.require_artist(session, actor_id, actor_is_admin, "locks it")
        if session.status != OPEN:
            return session
        closing = [self.decision(d) for d in session.decisions]
        closed = [d for d in closing if d.close(by=actor_id, now=now)]
        session.lock(by=actor_id, now=now, closed=[d.id for d in closed])
        self.save(session, *closed)
        return session

    # -- decisions -----------------------------------------------------------------------------

    def open_decision(
        self,
        session_id: UUID,
        *,
        decision_id: UUID,
        actor_id: str,
        actor_is_admin: bool,
        question: str,
        options: Any,
        weighting: str,
        closes_at: datetime | None,
        weights: dict[str, int] | None,
        now: datetime,
        contribution_ids: list[Any] | None = None,
    ) -> Decision:
        """A decision point in the session, by its artist (or an admin); `weights` is the
        holders' snapshot by pseudonym; its options are `options`, or the titles of the
        session's contributions `contribution_ids` (fans vote between real takes). The same
        id again answers the decision it made."""
        existing = self._find(Decision, decision_id)
        if existing is not None and existing.session_id == session_id:
            return existing
        session = self.session(session_id)
        self.require_artist(session, actor_id, actor_is_admin, "opens decisions")
        sources = None
        if contribution_ids is not None:
            options, sources = session.options_of(contribution_ids)
        decision = Decision.open(
            decision_id=decision_id,
            session=session,
            question=question,
            options=options,
            weighting=weighting,
            closes_at=closes_at,
            weights=weights,
            opened_by=actor_id,
            now=now,
            sources=sources,
        )
        session.add_decision(decision.id, at=now)
        self.save(session, decision)
        return decision

    def decision(self, decision_id: UUID, session_id: UUID | None = None) -> Decision:
        found = self._find(Decision, decision_id)
        if found is None or (session_id is not None and found.session_id != session_id):
            raise DecisionNotFound(details={"decisionId": str(decision_id)})
        return found

    def decisions_of(self, session_id: UUID) -> list[Decision]:
        """The session's decisions in the order they were opened: one call, not one each."""
        return [self.decision(d) for d in self.session(session_id).decisions]

    def decide_vote(
        self,
        decision_id: UUID,
        *,
        session_id: UUID,
        voter: str,
        choice: Any,
        now: datetime,
    ) -> Decision:
        """The voter's choice on the decision, unsaved (no event when it changes nothing)."""
        decision = self.decision(decision_id, session_id)
        decision.vote(voter=voter, choice=choice, now=now)
        return decision

    def vote(self, decision_id: UUID, **kwargs: Any) -> Decision:
        decision = self.decide_vote(decision_id, **kwargs)
        self.save(decision)
        return decision

    def close_decision(
        self,
        decision_id: UUID,
        *,
        session_id: UUID | None,
        actor_id: str,
        actor_is_admin: bool,
        now: datetime,
    ) -> Decision:
        """The artist (or an admin) closes a decision; again: the closed decision."""
        decision = self.decision(decision_id, session_id)
        if actor_id != decision.artist_id and not actor_is_admin:
            raise Forbidden("Only the session's artist closes its decisions")
        decision.close(by=actor_id, now=now)
        self.save(decision)
        return decision

    def close_if_due(self, decision_id: UUID, *, now: datetime) -> bool:
        """The clock: a decision whose `closesAt` came is closed; True when it was now."""
        decision = self.decision(decision_id)
        if decision.status != OPEN or decision.closes_at is None or now < decision.closes_at:
            return False
        decision.close(by="system", now=now)
        self.save(decision)
        return True

    def cast_votes(self, decision_id: UUID) -> list[CastVote]:
        """The decision's votes in the order they were recorded, as its events hold them."""
        self.decision(decision_id)
        return [
            CastVote(seq=e.seq, voter=e.voter, choice=e.choice, weight=e.weight)
            for e in self.repository.event_store.get(decision_id)
            if isinstance(e, Decision.VoteCast)
        ]

    def final_hash(self, decision_id: UUID) -> str | None:
        """The hash its close recorded (None while open): what its votes must hash to."""
        for e in self.repository.event_store.get(decision_id):
            if isinstance(e, Decision.Closed):
                return e.final_hash
        return None

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def require_artist(
        session: StudioSession, actor_id: str, actor_is_admin: bool, what: str
    ) -> None:
        if actor_id != session.artist_id and not actor_is_admin:
            raise Forbidden(f"Only the session's artist {what}")
