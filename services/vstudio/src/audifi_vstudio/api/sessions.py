"""V Studio over HTTP (the seed's V1, V2, V4-V6; camelCase), beside the room's WebSocket.

`POST /vstudio/sessions` (the master's artist or an admin: `masterId`, `title`,
`scheduledStart`), `GET /vstudio/sessions?masterId=` (a master's sessions, newest first),
`GET /vstudio/sessions/{id}` (the session, its decisions with their current results, who is
present), `POST /vstudio/sessions/{id}/decisions` (the artist: `question`, 2-10 `options`,
`weighting` shares|equal, `closesAt`), `POST /vstudio/sessions/{id}/vote` (`decisionId`,
`choice`: what a `vote` frame does), `POST .../decisions/{decisionId}/close` (the artist),
`POST /vstudio/sessions/{id}/lock` (the artist or an admin: every open decision closed, the
master's creative state final), `GET .../decisions/{decisionId}/audit` (once closed, to
anyone signed in: the votes in order by pseudonym, the snapshot's weights and the final
hash, enough to recompute the result: `domain.tally.verify`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from audifi_kit.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from audifi_kit.fields import MultiLineText, SingleLineText, check
from audifi_kit.http import Identity
from audifi_kit.http.auth import bearer_token
from audifi_kit.http.idempotency import IDEMPOTENT_OPT
from audifi_kit.http.paging import DEFAULT_LIMIT, PageCursor, PageLimit, PageQuery
from audifi_kit.http.uploads import chunks
from audifi_kit.paging import Position, page_of
from audifi_kit.values import invalid, moment
from litestar import Controller, Request, get, post
from litestar.datastructures import State, UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, JSONBody, QueryParameter
from litestar.response import Stream

from audifi_vstudio.adapters.rooms import Rooms
from audifi_vstudio.api.ws import ROOMS_STATE_KEY, STUDIO_STATE_KEY
from audifi_vstudio.domain.session import CLOSED, SHARES, StudioSession
from audifi_vstudio.domain.tally import GENESIS, CastVote
from audifi_vstudio.frames import DecisionState, decision_state
from audifi_vstudio.projections.sessions import SESSIONS
from audifi_vstudio.studio import Studio, contribution_url

Title = SingleLineText(255, min_length=1, description="The session's title")
Question = SingleLineText(500, min_length=1, description="What the fans decide")
Note = MultiLineText(2_000, description="What the take is")


class DecisionOpen(Conflict):
    code = "DECISION_OPEN"
    default_message = "The decision is still open: its audit comes when it closes"


class SessionRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    master_id: UUID
    title: Title
    scheduled_start: datetime | None = None


class DecisionRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """`options`, or `contributionIds`: the session's takes to vote between (their titles
    become the options)."""

    question: Question
    options: list[str] | None = None
    contribution_ids: list[UUID] | None = None
    weighting: Literal["shares", "equal"] = SHARES
    closes_at: datetime | None = None


class ProducerRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    account_id: UUID


@dataclass
class ContributionUpload:
    """The multipart form of `POST /vstudio/sessions/{id}/contributions`."""

    file: UploadFile
    title: str
    note: str = ""


class ContributionView(msgspec.Struct, rename="camel", kw_only=True):
    id: UUID
    producer_id: str
    title: str
    note: str
    mime: str
    size: int
    sha256: str
    added_at: datetime
    url: str  # GET it with your token


class VoteRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    decision_id: UUID
    choice: str


class PresentUser(msgspec.Struct, rename="camel", frozen=True):
    user_id: str
    display_name: str | None


class SessionView(msgspec.Struct, rename="camel", kw_only=True):
    id: UUID
    master_id: UUID
    artist_id: str
    title: str
    status: str  # open, locked
    scheduled_start: datetime | None
    created_at: datetime
    locked_at: datetime | None
    decisions: list[DecisionState]
    present: list[PresentUser]
    producers: list[str]
    contributions: list[ContributionView]


class SessionSummary(msgspec.Struct, rename="camel", kw_only=True):
    id: UUID
    master_id: UUID
    artist_id: str
    title: str
    status: str
    scheduled_start: datetime | None
    created_at: datetime
    decisions: int
    open_decisions: int


class SessionPage(msgspec.Struct, rename="camel", kw_only=True):
    items: list[SessionSummary]
    next_cursor: str | None = None


class VoteView(msgspec.Struct, rename="camel", kw_only=True):
    decision_id: UUID
    choice: str
    weight: int
    results: dict[str, int]
    votes: int
    hash: str


class AuditVote(msgspec.Struct, rename="camel", kw_only=True):
    seq: int
    voter: str  # pseudonym
    choice: str
    weight: int


class AuditView(msgspec.Struct, rename="camel", kw_only=True):
    decision_id: UUID
    question: str
    options: list[str]
    weighting: str
    weights: dict[str, int] | None  # the snapshot, by pseudonym (null: equal, one vote each)
    votes: list[AuditVote]  # in order; a voter's last vote counts
    results: dict[str, int]
    winner: str
    tie: bool
    final_hash: str
    genesis: str  # the hash before the first vote
    rule: str = (
        "hash(n) = sha256('<hash(n-1)>|<seq>|<voter>|<choice>|<weight>'); "
        "results: each voter's last vote's weight summed per option; "
        "winner: the highest total, the first listed among equals"
    )


def provide_studio(state: State) -> Studio:
    return state[STUDIO_STATE_KEY]


def is_admin(identity: Identity) -> bool:
    return identity.has_any("admin")


def _token(request: Request) -> str:
    token = bearer_token(request.scope)
    assert token is not None  # the kit's auth middleware let the request in
    return token


async def session_view(studio: Studio, rooms: Rooms | None, session: StudioSession) -> SessionView:
    present: dict[str, PresentUser] = {}
    if rooms is not None:
        for member in await rooms.presence(session.id):
            present.setdefault(member.user_id, PresentUser(member.user_id, member.display_name))
    return SessionView(
        id=session.id,
        master_id=session.master_id,
        artist_id=session.artist_id,
        title=session.title,
        status=session.status,
        scheduled_start=session.scheduled_start,
        created_at=session.created_at,
        locked_at=session.locked_at,
        decisions=[decision_state(d) for d in await studio.decisions(session)],
        present=list(present.values()),
        producers=list(session.producers),
        contributions=contribution_views(session),
    )


def contribution_views(session: StudioSession) -> list[ContributionView]:
    return [
        ContributionView(
            id=UUID(cid),
            producer_id=c["producer_id"],
            title=c["title"],
            note=c["note"],
            mime=c["file"]["mime"],
            size=c["file"]["size"],
            sha256=c["file"]["sha256"],
            added_at=c["at"],
            url=contribution_url(session.id, UUID(cid)),
        )
        for cid, c in session.contributions.items()
    ]


def _summary(r: object) -> SessionSummary:
    return SessionSummary(
        id=r["id"],  # type: ignore[index]
        master_id=r["master_id"],  # type: ignore[index]
        artist_id=r["artist_id"],  # type: ignore[index]
        title=r["title"],  # type: ignore[index]
        status=r["status"],  # type: ignore[index]
        scheduled_start=r["scheduled_start"],  # type: ignore[index]
        created_at=r["created_at"],  # type: ignore[index]
        decisions=r["decisions"],  # type: ignore[index]
        open_decisions=r["open_decisions"],  # type: ignore[index]
    )


class SessionsController(Controller):
    path = "/vstudio/sessions"
    tags = ["vstudio"]
    dependencies = {"studio": Provide(provide_studio, sync_to_thread=False)}

    @post("/", status_code=201, opt={IDEMPOTENT_OPT: True}, raises=(NotFound, Forbidden))
    async def create(
        self,
        data: JSONBody[SessionRequest],
        identity: NamedDependency[Identity],
        studio: NamedDependency[Studio],
        request: Request,
    ) -> SessionView:
        """V1: a session on a master, by its artist (or an admin)."""
        session = await studio.create_session(
            master_id=data.master_id,
            actor_id=identity.user_id,
            actor_is_admin=is_admin(identity),
            token=_token(request),
            title=data.title,
            scheduled_start=(
                None
                if data.scheduled_start is None
                else moment(data.scheduled_start, field="scheduledStart")
            ),
        )
        return await session_view(studio, request.app.state.get(ROOMS_STATE_KEY), session)

    @get("/", raises=(ValidationFailed,))
    async def of_master(
        self,
        studio: NamedDependency[Studio],
        master_id: Annotated[
            UUID, QueryParameter(name="masterId", description="The master's sessions")
        ],
        limit: PageLimit = DEFAULT_LIMIT,
        cursor: PageCursor = None,
    ) -> SessionPage:
        """A master's sessions, newest first."""
        query = PageQuery.parse(limit, cursor, newest_first=True)
        condition, order, args = query.sql("created_at", "id", 2)
        assert studio.pool is not None
        rows = await studio.pool.fetch(
            f"SELECT * FROM {SESSIONS} WHERE master_id = $1 AND {condition} {order}",
            master_id,
            *args,
        )
        page = page_of(rows, query, lambda r: Position(r["created_at"], r["id"]))
        return SessionPage(items=[_summary(r) for r in page.items], next_cursor=page.next_cursor)

    @get("/{session_id:uuid}", raises=(NotFound,))
    async def detail(
        self, session_id: FromPath[UUID], studio: NamedDependency[Studio], request: Request
    ) -> SessionView:
        """V2: the session, its decisions with their current results, who is present."""
        session = await studio.session(session_id)
        return await session_view(studio, request.app.state.get(ROOMS_STATE_KEY), session)

    @post(
        "/{session_id:uuid}/decisions",
        status_code=201,
        raises=(NotFound, Forbidden, Conflict),
    )
    async def open_decision(
        self,
        session_id: FromPath[UUID],
        data: JSONBody[DecisionRequest],
        identity: NamedDependency[Identity],
        studio: NamedDependency[Studio],
        request: Request,
    ) -> DecisionState:
        """V4: a decision point; `shares` weighs each vote by the master's shares its voter
        held at this moment (nft's holders), `equal` counts one per account."""
        if (data.options is None) == (data.contribution_ids is None):
            raise invalid("options", "Give either options or contributionIds")
        decision = await studio.open_decision(
            session_id,
            actor_id=identity.user_id,
            actor_is_admin=is_admin(identity),
            token=_token(request),
            question=data.question,
            options=data.options,
            contribution_ids=data.contribution_ids,
            weighting=data.weighting,
            closes_at=None if data.closes_at is None else moment(data.closes_at, field="closesAt"),
        )
        return decision_state(decision)

    @post("/{session_id:uuid}/vote", status_code=200, raises=(NotFound, Forbidden, Conflict))
    async def vote(
        self,
        session_id: FromPath[UUID],
        data: JSONBody[VoteRequest],
        identity: NamedDependency[Identity],
        studio: NamedDependency[Studio],
    ) -> VoteView:
        """V5: the caller's vote (again: it replaces theirs while the decision is open); a
        non-holder of a `shares` decision is 403 NOT_A_SHAREHOLDER, a closed decision (or a
        locked session) 409 DECISION_CLOSED."""
        decision = await studio.vote(
            session_id, data.decision_id, account_id=identity.user_id, choice=data.choice
        )
        voter = studio.voter(decision.id, identity.user_id)
        return VoteView(
            decision_id=decision.id,
            choice=data.choice,
            weight=decision.weight_of(voter),
            results=decision.results,
            votes=decision.votes,
            hash=decision.hash,
        )

    @post(
        "/{session_id:uuid}/decisions/{decision_id:uuid}/close",
        status_code=200,
        raises=(NotFound, Forbidden),
    )
    async def close_decision(
        self,
        session_id: FromPath[UUID],
        decision_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        studio: NamedDependency[Studio],
    ) -> DecisionState:
        """The artist closes a decision: its winner is announced (`decision_closed`)."""
        decision = await studio.close_decision(
            session_id, decision_id, actor_id=identity.user_id, actor_is_admin=is_admin(identity)
        )
        return decision_state(decision)

    @post("/{session_id:uuid}/lock", status_code=200, raises=(NotFound, Forbidden))
    async def lock(
        self,
        session_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        studio: NamedDependency[Studio],
        request: Request,
    ) -> SessionView:
        """V6: every open decision closed, the session locked, the master's creative state
        final (`vstudio.session.locked`)."""
        session = await studio.lock(
            session_id, actor_id=identity.user_id, actor_is_admin=is_admin(identity)
        )
        return await session_view(studio, request.app.state.get(ROOMS_STATE_KEY), session)

    @get(
        "/{session_id:uuid}/decisions/{decision_id:uuid}/audit",
        raises=(NotFound, Conflict),
    )
    async def audit(
        self,
        session_id: FromPath[UUID],
        decision_id: FromPath[UUID],
        studio: NamedDependency[Studio],
    ) -> AuditView:
        """A closed decision's votes in order, its snapshot and final hash: recompute it."""
        decision = await studio.decision(decision_id, session_id)
        if decision.status != CLOSED or decision.winner is None:
            raise DecisionOpen(details={"decisionId": str(decision_id)})
        votes: list[CastVote] = await studio.store.call(studio.app.cast_votes, decision_id)
        final_hash = await studio.store.call(studio.app.final_hash, decision_id)
        return AuditView(
            decision_id=decision.id,
            question=decision.question,
            options=decision.options,
            weighting=decision.weighting,
            weights=decision.weights,
            votes=[
                AuditVote(seq=v.seq, voter=v.voter, choice=v.choice, weight=v.weight) for v in votes
            ],
            results=decision.results,
            winner=decision.winner,
            tie=decision.tie,
            final_hash=final_hash or decision.hash,
            genesis=GENESIS,
        )


class ContributionsController(Controller):
    path = "/vstudio/sessions/{session_id:uuid}"
    tags = ["vstudio"]
    dependencies = {"studio": Provide(provide_studio, sync_to_thread=False)}

    @post("/producers", status_code=200, raises=(NotFound, Forbidden, Conflict))
    async def invite(
        self,
        session_id: FromPath[UUID],
        data: JSONBody[ProducerRequest],
        identity: NamedDependency[Identity],
        studio: NamedDependency[Studio],
    ) -> list[str]:
        """The artist invites a producer (an account): they may contribute takes."""
        session = await studio.invite_producer(
            session_id,
            account_id=str(data.account_id),
            actor_id=identity.user_id,
            actor_is_admin=is_admin(identity),
        )
        return list(session.producers)

    @post(
        "/contributions",
        status_code=201,
        raises=(NotFound, Forbidden, Conflict, PayloadTooLarge, UnsupportedMediaType),
    )
    async def contribute(
        self,
        session_id: FromPath[UUID],
        data: Annotated[ContributionUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
        identity: NamedDependency[Identity],
        studio: NamedDependency[Studio],
    ) -> ContributionView:
        """A producer's (or the artist's) take: `file` (audio, a stem or a mix, at most
        200 MiB), `title` (its option's name if fans vote on it), `note`; announced on the
        socket (`contribution_added`)."""
        try:
            title = check(Title, data.title, field="title")
            note = check(Note, data.note or "", field="note")
            session, contribution_id = await studio.add_contribution(
                session_id,
                actor_id=identity.user_id,
                actor_is_admin=is_admin(identity),
                title=title,
                note=note,
                chunks=chunks(data.file),
            )
        finally:
            await data.file.close()
        [view] = [v for v in contribution_views(session) if v.id == contribution_id]
        return view

    @get("/contributions", raises=(NotFound,))
    async def contributions(
        self, session_id: FromPath[UUID], studio: NamedDependency[Studio]
    ) -> list[ContributionView]:
        """The session's takes, in the order they came."""
        return contribution_views(await studio.session(session_id))

    @get("/contributions/{contribution_id:uuid}/file", raises=(NotFound,))
    async def file(
        self,
        session_id: FromPath[UUID],
        contribution_id: FromPath[UUID],
        studio: NamedDependency[Studio],
    ) -> Stream:
        """A take's bytes, to anyone signed in (fans listen before they vote)."""
        found = (await studio.session(session_id)).contribution(contribution_id)
        return Stream(studio.storage.open(found["file"]["key"]), media_type=found["file"]["mime"])
