"""V Studio sessions and their decisions.

A `StudioSession` belongs to one master and its artist: `open` (from creation, whatever its
`scheduledStart` says: the artist goes live when they open a decision) -> `locked` (the artist
or an admin locked the master's creative state; nothing changes after). It lists its
decisions in the order they were opened.

A `Decision` is its own aggregate (votes arrive in bursts: one decision's votes are
group-committed without touching the session): a question, 2 to 10 distinct options, a
weighting and an optional `closesAt`. `shares` weighting (the default): a voter's weight is
the number of the master's shares they held when it opened (`weights`, a snapshot by
pseudonym: shares bought later buy no votes; a voter outside it is refused). `equal`: one
account, one vote. `open` -> `closed` by its artist, at `closesAt` (the clock), or when the
session is locked; the tally (tally.py) is fixed then: results, winner, tie, final hash.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any
from uuid import UUID

from audifi_kit.errors import Conflict, Forbidden, NotFound
from audifi_kit.values import invalid
from eventsourcing.domain import Aggregate, event

from audifi_vstudio.domain.tally import GENESIS, CastVote, chain, winner_of

OPEN = "open"
LOCKED = "locked"
CLOSED = "closed"

SHARES = "shares"
EQUAL = "equal"
WEIGHTINGS = (SHARES, EQUAL)
MIN_OPTIONS, MAX_OPTIONS = 2, 10
MAX_OPTION_LENGTH = 64
MAX_DECISIONS = 200
MAX_PRODUCERS = 50
MAX_CONTRIBUTIONS = 500


class SessionNotFound(NotFound):
    code = "SESSION_NOT_FOUND"
    default_message = "Session not found"


class DecisionNotFound(NotFound):
    code = "DECISION_NOT_FOUND"
    default_message = "Decision not found"


class SessionLocked(Conflict):
    code = "SESSION_LOCKED"
    default_message = "The session is locked: its master's creative state is final"


class DecisionClosed(Conflict):
    code = "DECISION_CLOSED"
    default_message = "The decision is closed"


class ContributionNotFound(NotFound):
    code = "CONTRIBUTION_NOT_FOUND"
    default_message = "Contribution not found"


class NotAProducer(Forbidden):
    code = "NOT_A_PRODUCER"
    default_message = "Only the session's producers (and its artist) contribute"


class NotAHolder(Forbidden):
    code = "NOT_A_SHAREHOLDER"
    default_message = "Only holders of the master's shares when the decision opened may vote"


class StudioSession(Aggregate):
    @event("Created")
    def __init__(
        self,
        *,
        master_id: UUID,
        artist_id: str,
        title: str,
        scheduled_start: datetime | None,
        created_by: str,
        at: datetime,
    ) -> None:
        self.master_id = master_id
        self.artist_id = artist_id
        self.title = title
        self.scheduled_start = scheduled_start
        self.created_by = created_by
        self.created_at = at
        self.status = OPEN
        self.decisions: list[UUID] = []
        self.locked_at: datetime | None = None
        self.locked_by: str | None = None
        self.producers: dict[str, str] = {}  # account -> who invited them
        # contribution id -> {producer_id, title, note, file, at}: never changed in place
        self.contributions: dict[str, dict[str, Any]] = {}

    def facts(self) -> dict[str, Any]:
        return {"master_id": str(self.master_id), "artist_id": self.artist_id}

    def require_open(self) -> None:
        if self.status == LOCKED:
            raise SessionLocked(details={"sessionId": str(self.id)})

    def add_decision(self, decision_id: UUID, *, at: datetime) -> None:
        self.require_open()
        if len(self.decisions) >= MAX_DECISIONS:
            raise Conflict(
                f"A session holds at most {MAX_DECISIONS} decisions",
                details={"sessionId": str(self.id)},
            )
        self._decision_added(decision_id=decision_id, at=at)

    @event("DecisionAdded")
    def _decision_added(self, decision_id: UUID, at: datetime) -> None:
        self.decisions = [*self.decisions, decision_id]

    def invite_producer(self, *, account_id: str, by: str, now: datetime) -> bool:
        """The artist invites a producer (an account) to contribute; False when invited."""
        self.require_open()
        if account_id in self.producers:
            return False
        if len(self.producers) >= MAX_PRODUCERS:
            raise Conflict(
                f"A session has at most {MAX_PRODUCERS} producers",
                details={"sessionId": str(self.id)},
            )
        self._producer_invited(account_id=account_id, by=by, at=now)
        return True

    @event("ProducerInvited")
    def _producer_invited(self, account_id: str, by: str, at: datetime) -> None:
        self.producers = {**self.producers, account_id: by}

    def may_contribute(self, account_id: str, is_admin: bool) -> bool:
        return account_id == self.artist_id or account_id in self.producers or is_admin

    def add_contribution(
        self,
        *,
        contribution_id: UUID,
        producer_id: str,
        title: str,
        note: str,
        file: dict[str, Any],
        now: datetime,
    ) -> bool:
        """A take (a stem or a mix) a producer brings; False when it was added already."""
        self.require_open()
        if str(contribution_id) in self.contributions:
            return False
        if len(self.contributions) >= MAX_CONTRIBUTIONS:
            raise Conflict(
                f"A session holds at most {MAX_CONTRIBUTIONS} contributions",
                details={"sessionId": str(self.id)},
            )
        self._contribution_added(
            contribution_id=str(contribution_id),
            producer_id=producer_id,
            title=title,
            note=note,
            file=file,
            at=now,
            facts=self.facts(),
        )
        return True

    @event("ContributionAdded")
    def _contribution_added(
        self,
        contribution_id: str,
        producer_id: str,
        title: str,
        note: str,
        file: dict[str, Any],
        at: datetime,
        facts: dict[str, Any],
    ) -> None:
        self.contributions = {
            **self.contributions,
            contribution_id: {
                "producer_id": producer_id,
                "title": title,
                "note": note,
                "file": file,
                "at": at,
            },
        }

    def contribution(self, contribution_id: UUID) -> dict[str, Any]:
        found = self.contributions.get(str(contribution_id))
        if found is None:
            raise ContributionNotFound(details={"contributionId": str(contribution_id)})
        return found

    def options_of(self, contribution_ids: Any) -> tuple[list[str], dict[str, str]]:
        """A decision's options from contributions: their titles (which must differ), and
        which contribution each option is."""
        if not isinstance(contribution_ids, list):
            raise invalid("contributionIds", "Expected a list of contribution ids")
        options: list[str] = []
        sources: dict[str, str] = {}
        for i, cid in enumerate(contribution_ids):
            found = self.contributions.get(str(cid))
            if found is None:
                raise invalid(f"contributionIds[{i}]", "Not a contribution of this session")
            if found["title"] in sources:
                raise invalid(f"contributionIds[{i}]", "Two contributions with one title")
            options.append(found["title"])
            sources[found["title"]] = str(cid)
        return options, sources

    def lock(self, *, by: str, now: datetime, closed: list[UUID]) -> bool:
        """Lock the session (its decisions closed by the caller, listed); False when it was."""
        if self.status == LOCKED:
            return False
        self._locked(by=by, at=now, closed=closed, facts=self.facts())
        return True

    @event("Locked")
    def _locked(self, by: str, at: datetime, closed: list[UUID], facts: dict[str, Any]) -> None:
        self.status = LOCKED
        self.locked_at = at
        self.locked_by = by


def check_options(options: Any) -> list[str]:
    if not isinstance(options, list) or not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        raise invalid("options", f"Expected {MIN_OPTIONS} to {MAX_OPTIONS} options")
    checked: list[str] = []
    for i, option in enumerate(options):
        if not isinstance(option, str) or not option.strip():
            raise invalid(f"options[{i}]", "Expected a non-empty text")
        if len(option) > MAX_OPTION_LENGTH or any(c in option for c in "\r\n\t"):
            raise invalid(f"options[{i}]", f"Expected one line of at most {MAX_OPTION_LENGTH}")
        if option in checked:
            raise invalid(f"options[{i}]", "Options must differ")
        checked.append(option)
    return checked


class Decision(Aggregate):
    @event("Opened")
    def __init__(
        self,
        *,
        session_id: UUID,
        master_id: UUID,
        artist_id: str,
        question: str,
        options: list[str],
        weighting: str,
        closes_at: datetime | None,
        weights: dict[str, int] | None,
        holders: int,
        opened_by: str,
        at: datetime,
        sources: dict[str, str] | None = None,
    ) -> None:
        self.sources = sources or {}  # option -> the contribution it is (when it is one)
        self.session_id = session_id
        self.master_id = master_id
        self.artist_id = artist_id
        self.question = question
        self.options = options
        self.weighting = weighting
        self.closes_at = closes_at
        self.weights = weights  # pseudonym -> shares held at opening (None: equal)
        self.holders = holders
        self.opened_by = opened_by
        self.opened_at = at
        self.status = OPEN
        self.ballots: dict[str, tuple[str, int]] = {}  # voter -> (choice, weight), the last
        self.results: dict[str, int] = dict.fromkeys(options, 0)
        self.votes = 0  # cast, changes included: the last one's `seq`
        self.hash = GENESIS
        self.winner: str | None = None
        self.tie = False
        self.closed_at: datetime | None = None
        self.closed_by: str | None = None

    @classmethod
    def open(
        cls,
        *,
        decision_id: UUID,
        session: StudioSession,
        question: str,
        options: Any,
        weighting: str,
        closes_at: datetime | None,
        weights: dict[str, int] | None,
        opened_by: str,
        now: datetime,
        sources: dict[str, str] | None = None,
    ) -> Decision:
        checked = check_options(options)
        if weighting not in WEIGHTINGS:
            raise invalid("weighting", f"Expected one of {', '.join(WEIGHTINGS)}")
        if closes_at is not None and closes_at <= now:
            raise invalid("closesAt", "Expected a time in the future")
        if weighting == SHARES:
            weights = {voter: shares for voter, shares in (weights or {}).items() if shares > 0}
        else:
            weights = None
        return cls._create(
            cls.Opened,
            id=decision_id,
            session_id=session.id,
            master_id=session.master_id,
            artist_id=session.artist_id,
            question=question,
            options=checked,
            weighting=weighting,
            closes_at=closes_at,
            weights=weights,
            holders=len(weights or {}),
            opened_by=opened_by,
            at=now,
            sources=sources or {},
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> Decision:
        """The repository's copy out of its cache, at a dict copy's cost: every attribute is
        replaced whole when it changes (immutable values, fresh dicts), but the ballots,
        changed in place, and the events not yet saved. A generic deepcopy of 2,000 ballots
        was a third of a vote batch's time."""
        clone = copy.copy(self)
        clone.ballots = dict(self.ballots)
        clone._pending_events = list(self._pending_events)
        memo[id(self)] = clone
        return clone

    def is_open(self, now: datetime) -> bool:
        return self.status == OPEN and (self.closes_at is None or now < self.closes_at)

    def weight_of(self, voter: str) -> int:
        return 1 if self.weights is None else self.weights.get(voter, 0)

    def vote(self, *, voter: str, choice: Any, now: datetime) -> bool:
        """The voter's choice (again: it replaces theirs); False when it changes nothing."""
        if not self.is_open(now):
            raise DecisionClosed(details={"decisionId": str(self.id)})
        if not isinstance(choice, str) or choice not in self.options:
            raise invalid("choice", f"Expected one of {', '.join(self.options)}")
        weight = self.weight_of(voter)
        if weight <= 0:
            raise NotAHolder(details={"decisionId": str(self.id)})
        if self.ballots.get(voter, (None, 0))[0] == choice:
            return False
        cast = CastVote(seq=self.votes + 1, voter=voter, choice=choice, weight=weight)
        self._voted(
            seq=cast.seq,
            voter=voter,
            choice=choice,
            weight=weight,
            hash=chain(self.hash, cast),
            at=now,
            facts={"session_id": str(self.session_id), "master_id": str(self.master_id)},
        )
        return True

    @event("VoteCast")
    def _voted(
        self,
        seq: int,
        voter: str,
        choice: str,
        weight: int,
        hash: str,
        at: datetime,
        facts: dict[str, Any],
    ) -> None:
        previous = self.ballots.get(voter)
        results = dict(self.results)
        if previous is not None:
            results[previous[0]] -= previous[1]
        results[choice] += weight
        self.results = results
        # In place: a batch decides on its own copy of the cached decision (the repository
        # copies it out), and copying 2,000 ballots per vote was most of deciding one.
        self.ballots[voter] = (choice, weight)
        self.votes = seq
        self.hash = hash

    def close(self, *, by: str, now: datetime) -> bool:
        """Fix the tally; False when it was closed already."""
        if self.status == CLOSED:
            return False
        winner, tie = winner_of(self.options, self.results)
        self._closed(
            by=by,
            at=now,
            results=dict(self.results),
            winner=winner,
            tie=tie,
            final_hash=self.hash,
            votes=self.votes,
            facts={"session_id": str(self.session_id), "master_id": str(self.master_id)},
        )
        return True

    @event("Closed")
    def _closed(
        self,
        by: str,
        at: datetime,
        results: dict[str, int],
        winner: str,
        tie: bool,
        final_hash: str,
        votes: int,
        facts: dict[str, Any],
    ) -> None:
        self.status = CLOSED
        self.closed_at = at
        self.closed_by = by
        self.winner = winner
        self.tie = tie
