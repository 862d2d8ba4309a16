"""Coda Collective: projects, investments and milestones (the seed's N7-N17), camelCase.

The catalogue (`GET /projects`, `GET /projects/{id}`, `GET /projects/{id}/milestones`) is
public. An artist (or an admin for one) creates a project with its milestones, whose
`payoutAmount`s add up to the `fundingGoal`. A fan funds it with `POST /projects/{id}/fund`
(`amount` in the currency's minor units, at least one unit or what is left): the investment
holds its part of the goal for 15 minutes while its order is paid at
`POST /payments/checkout {"orderId": <investment id>}`. The artist submits a milestone's proof
(`/milestones/{id}/submit-proof`), an admin approves (releasing its payout, in order) or
rejects it with a reason (the artist may submit again). Once every milestone is released the
artist finalizes the project (the release); revenue an admin books for it later is shared
with the funders (`revenueShareBps`), each claiming their part at
`POST /investments/{id}/claim-payout`. An admin may cancel a project not yet released: its
unreleased money is refunded pro rata; a project short of its goal at its `fundingDeadline`
is cancelled by the project clock and refunded in full.

Amounts are integers in the currency's minor units. Every project and milestone has
`onchainReference` (null for a project funded by card).

A project created with `fundingMethod: "chain"` is funded in the payment token through
MilestoneEscrow (currency `USDC`, amounts in its base units, 6 decimals; the artist needs a
linked wallet: milestone payouts go there). Its `escrow` names the escrow project once nft's
operator created it (`onchainReference` too). A fan funds it with `POST /projects/{id}/fund`
`{"amount", "method": "chain", "walletAddress"}` (one of their linked wallets; their current
one when omitted): the answer holds the two transactions their wallet signs (the token's
approve, the escrow's fund); the investment appears once the chain's `ProjectFunded` log is
indexed. Approvals release milestones on chain, a cancellation cancels the escrow project, and
each funder takes their refund from the contract (`refundable`, then `refundTx`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
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
from audifi_kit.fields import MultiLineText, SingleLineText
from audifi_kit.http import Identity
from audifi_kit.http.auth import PUBLIC_OPT
from audifi_kit.http.idempotency import IDEMPOTENT_OPT
from audifi_kit.http.paging import DEFAULT_LIMIT, PageCursor, PageLimit, PageQuery
from audifi_kit.media.kinds import kind_of_key
from audifi_kit.paging import Position, page_of
from audifi_kit.values import invalid, user_id
from litestar import Controller, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, JSONBody, QueryParameter
from litestar.response import Stream

from audifi_nft.api.dependencies import NftContext, is_admin, is_artist, provide_nft
from audifi_nft.api.forms import chunks
from audifi_nft.domain.custody import NoWalletLinked
from audifi_nft.domain.project import (
    CANCELLED,
    CARD,
    CHAIN,
    FUNDING,
    PAID,
    PENDING,
    EscrowNotReady,
    FundingExceedsGoal,
    InvestmentNotFound,
    MilestoneNotFound,
    Project,
    ProjectNotFunding,
    WrongFundingMethod,
    chain_investment_id,
    milestone_id_of,
    parse_milestone_id,
)
from audifi_nft.projections.projects import INVESTMENTS, PROJECTS

ProjectTitle = SingleLineText(255, min_length=1, description="The project's title")
Description = MultiLineText(10_000, description="What the project is")
MilestoneName = SingleLineText(255, min_length=1, description="What the milestone delivers")
Reason = SingleLineText(500, min_length=1, description="Why")
Reference = SingleLineText(128, min_length=1, description="The revenue statement's reference")
ProofUrl = SingleLineText(2048, min_length=1, description="Where the proof is (https)")
ProofFile = SingleLineText(300, min_length=1, description="A proof file uploaded for the project")
PROOFS = "proofs"  # storage keys: proofs/<project id>/<sha256>.<ext>
MAX_PROOF_BYTES = 25 * 1024 * 1024  # a PDF or an image
PROOF_KINDS = ("image", "document")


class NotAnArtist(Forbidden):
    default_message = "Only an artist (or an admin) may create a project"


class MilestoneTerms(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    name: MilestoneName
    payout_amount: int


class ProjectRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """Ranges and sums are checked by the project, naming the field."""

    title: ProjectTitle
    funding_goal: int
    currency: str
    funding_deadline: datetime
    milestones: list[MilestoneTerms]
    description: Description = ""
    release_date: datetime | None = None
    revenue_share_bps: int = 0
    artist_id: str | None = None  # an admin's, creating a project for an artist
    # "chain": funded in the payment token through MilestoneEscrow (currency USDC).
    funding_method: Literal["card", "chain"] = "card"


class FundRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    amount: int
    method: Literal["card", "chain"] = "card"
    # A chain project's: the funder's linked wallet that signs (their current one if unset).
    wallet_address: Annotated[str, msgspec.Meta(pattern="^0x[0-9a-fA-F]{40}$")] | None = None


class EscrowView(msgspec.Struct, rename="camel", kw_only=True):
    """Where a chain project's money is: MilestoneEscrow's project `projectId`."""

    chain_id: int | None
    address: str | None  # MilestoneEscrow
    project_id: int | None  # null until nft's operator created it
    recipient: str  # the artist's wallet: released milestones are paid there
    released_milestones: int  # released on chain so far
    cancelled: bool


class ChainTxView(msgspec.Struct, rename="camel", kw_only=True):
    to: str
    data: str
    value: str  # wei, as text
    description: str


class ChainFundingView(msgspec.Struct, rename="camel", kw_only=True):
    """A chain project's funding, prepared: sign and send `transactions` in order from
    `walletAddress`. The investment (`investmentId`) grows once the chain says it was paid."""

    project_id: UUID
    investment_id: str
    method: str
    wallet_address: str
    amount: int
    currency: str
    escrow: EscrowView
    transactions: list[ChainTxView]


class ProofRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """Exactly one of `proofUrl` (an https link) and `proofFile` (what
    `POST /milestones/{id}/proof-files` answered)."""

    proof_url: ProofUrl | None = None
    proof_file: ProofFile | None = None
    note: Annotated[str, msgspec.Meta(max_length=2000)] = ""


@dataclass
class ProofUpload:
    """The multipart form of `POST /milestones/{id}/proof-files`."""

    file: UploadFile


class ProofFileView(msgspec.Struct, rename="camel", kw_only=True):
    proof_file: str  # name it in submit-proof's `proofFile`
    mime: str
    size: int
    sha256: str


class RejectRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    reason: Reason


class CancelRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    reason: Reason


class RevenueRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """`reference` names the statement: booking it again books nothing."""

    reference: Reference
    amount: int


class RejectionView(msgspec.Struct, rename="camel", kw_only=True):
    reason: str
    rejected_at: datetime
    proof_url: str | None


class MilestoneView(msgspec.Struct, rename="camel", kw_only=True):
    id: str
    project_id: UUID
    sequence: int  # 1-based: milestones are released in this order
    name: str
    payout_amount: int
    currency: str
    status: str  # locked, pending_approval, unlocked
    # The proof's URL (an uploaded file's: GET it with your token), while pending approval or
    # once unlocked.
    proof_submission: str | None
    proof_note: str | None
    submitted_at: datetime | None
    released_at: datetime | None
    rejections: list[RejectionView]
    onchain_reference: str | None  # a chain project's: the release transaction


class ProjectView(msgspec.Struct, rename="camel", kw_only=True):
    id: UUID
    artist_id: str
    title: str
    description: str
    funding_goal: int
    amount_raised: int
    amount_left: int  # what may still be invested (the goal less paid and held investments)
    minimum_investment: int
    currency: str
    status: str  # funding, in_progress, released, cancelled
    funding_deadline: datetime
    release_date: datetime | None
    revenue_share_bps: int
    released: int  # paid out to the artist by approved milestones
    refunded: int
    escrowed: int
    funders: int
    milestones: list[MilestoneView]
    onchain_reference: str | None
    created_at: datetime
    ended_reason: str | None = None  # a cancelled project's: "deadline" or an admin's reason
    finalized_at: datetime | None = None
    funding_method: str = CARD  # card, chain
    escrow: EscrowView | None = None  # a chain project's


class ProjectSummary(msgspec.Struct, rename="camel", kw_only=True):
    id: UUID
    artist_id: str
    title: str
    description: str
    status: str
    funding_goal: int
    amount_raised: int
    currency: str
    funders: int
    milestones: int
    milestones_released: int
    funding_deadline: datetime
    release_date: datetime | None
    created_at: datetime
    onchain_reference: str | None = None
    funding_method: str = CARD


class ProjectPage(msgspec.Struct, rename="camel", kw_only=True):
    items: list[ProjectSummary]
    next_cursor: str | None = None


class InvestmentView(msgspec.Struct, rename="camel", kw_only=True):
    id: str  # by card: the order to pay at POST /payments/checkout
    project_id: UUID
    user_id: str
    amount: int
    currency: str
    status: str  # pending, paid, lapsed
    created_at: datetime
    expires_at: datetime | None  # a card investment's hold; null on chain
    paid_at: datetime | None
    refunded: int
    claimed: int
    claimable: int
    tokenized_shares: None = None  # the seed's field for a future on-chain record
    checkout: dict[str, Any] | None = None  # while pending
    refund_required: bool = False  # a payment arrived after the investment lapsed
    method: str = CARD  # card, chain
    wallet_address: str | None = None  # on chain: the funder's address
    # On chain, after a cancellation: what the contract pays back when the funder calls
    # `refund` (contribution x unreleased / raised, rounded down), until they took it.
    refundable: int = 0
    refund_tx: str | None = None


class InvestmentPage(msgspec.Struct, rename="camel", kw_only=True):
    items: list[InvestmentView]
    next_cursor: str | None = None


class PayoutView(msgspec.Struct, rename="camel", kw_only=True):
    investment_id: str
    amount: int  # moved to your balance now
    currency: str
    claimed: int  # in all, this one included


def milestone_views(project: Project) -> list[MilestoneView]:
    views = []
    for index, m in enumerate(project.milestones):
        proof = m["proof"] or {}
        if proof.get("file"):
            proof = {
                **proof,
                "url": f"/api/v1/milestones/{milestone_id_of(project.id, index)}/proof-file",
            }
        views.append(
            MilestoneView(
                id=milestone_id_of(project.id, index),
                project_id=project.id,
                sequence=index + 1,
                name=m["name"],
                payout_amount=m["payout_amount"],
                currency=project.currency,
                status=m["status"],
                proof_submission=proof.get("url"),
                proof_note=proof.get("note") or None,
                submitted_at=proof.get("submitted_at"),
                released_at=m["released_at"],
                rejections=[
                    RejectionView(
                        reason=r["reason"],
                        rejected_at=r["at"],
                        proof_url=(r["proof"] or {}).get("url"),
                    )
                    for r in m["rejections"]
                ],
                onchain_reference=m.get("release_tx"),
            )
        )
    return views


def escrow_view(project: Project) -> EscrowView | None:
    if project.funding_method != CHAIN:
        return None
    assert project.chain_recipient is not None
    return EscrowView(
        chain_id=project.chain_id,
        address=project.chain_escrow,
        project_id=project.chain_project_id,
        recipient=project.chain_recipient,
        released_milestones=project.chain_released,
        cancelled=project.chain_cancelled,
    )


def project_view(project: Project) -> ProjectView:
    return ProjectView(
        id=project.id,
        artist_id=project.artist_id,
        title=project.title,
        description=project.description,
        funding_goal=project.funding_goal,
        amount_raised=project.raised,
        amount_left=project.left if project.status == FUNDING else 0,
        minimum_investment=project.minimum_investment if project.status == FUNDING else 0,
        currency=project.currency,
        status=project.status,
        funding_deadline=project.funding_deadline,
        release_date=project.release_date,
        revenue_share_bps=project.share_bps,
        released=project.released,
        refunded=project.refunded,
        escrowed=project.escrowed,
        funders=len(project.funders()),
        milestones=milestone_views(project),
        onchain_reference=project.onchain_reference,
        created_at=project.created_at,
        ended_reason=project.ended_reason,
        finalized_at=project.finalized_at,
        funding_method=project.funding_method,
        escrow=escrow_view(project),
    )


def _refundable(project: Project, i: dict[str, Any]) -> int:
    """MilestoneEscrow's refund of a cancelled chain project, not taken yet."""
    if i.get("method") != CHAIN or project.status != CANCELLED or i["refunded"]:
        return 0
    if i["state"] != PAID or not project.raised:
        return 0
    return i["amount"] * (project.raised - project.released) // project.raised


def investment_view(project: Project, investment_id: str) -> InvestmentView:
    i = project.investment(investment_id)
    pending = i["state"] == PENDING
    return InvestmentView(
        id=investment_id,
        project_id=project.id,
        user_id=i["account_id"],
        amount=i["amount"],
        currency=project.currency,
        status=i["state"],
        created_at=i["created_at"],
        expires_at=i["expires_at"],
        paid_at=i["paid_at"],
        refunded=i["refunded"],
        claimed=i["claimed"],
        claimable=project.claimable(investment_id),
        checkout=(
            {
                "method": "POST",
                "path": "/api/v1/payments/checkout",
                "body": {"orderId": investment_id},
            }
            if pending
            else None
        ),
        refund_required=bool(i.get("refunds_required")),
        method=i.get("method", CARD),
        wallet_address=i.get("funder"),
        refundable=_refundable(project, i),
        refund_tx=i.get("refund_tx"),
    )


def _artist_of(identity: Identity, requested: str | None) -> str:
    admin = is_admin(identity)
    if not (admin or is_artist(identity)):
        raise NotAnArtist()
    if requested is None:
        return identity.user_id
    artist = user_id(requested, field="artistId")
    if artist != identity.user_id and not admin:
        raise Forbidden("Only an admin may create a project for another artist")
    return artist


async def _project(nft: NftContext, project_id: UUID) -> Project:
    return await nft.store.call(nft.app.project, project_id)


async def _project_of_investment(nft: NftContext, investment_id: UUID) -> Project:
    project_id = await nft.pool.fetchval(
        f"SELECT project_id FROM {INVESTMENTS} WHERE id = $1", investment_id
    )
    if project_id is None:
        raise InvestmentNotFound(details={"investmentId": str(investment_id)})
    return await _project(nft, project_id)


async def _fund_on_chain(
    nft: NftContext, identity: Identity, project_id: UUID, data: FundRequest
) -> ChainFundingView:
    """The approve and fund transactions for the caller's wallet, the wallet named as theirs
    first (its `ProjectFunded` logs become their investment). Checked as the contract would,
    so a wallet is not asked to sign what would revert."""
    project = await _project(nft, project_id)
    if project.funding_method != CHAIN:
        raise WrongFundingMethod(
            "This project is funded by card", details={"fundingMethod": project.funding_method}
        )
    if project.status != FUNDING or datetime.now(UTC) >= project.funding_deadline:
        raise ProjectNotFunding(details={"status": project.status})
    if project.chain_project_id is None or nft.escrow_chain is None:
        raise EscrowNotReady(details={"projectId": str(project_id)})
    amount = data.amount
    if isinstance(amount, bool) or amount < 1:
        raise invalid("amount", "Expected a positive integer")
    if amount > project.left:
        raise FundingExceedsGoal(
            f"Only {project.left} {project.currency} base units are left to reach the goal",
            details={"left": project.left, "requested": amount, "currency": project.currency},
        )
    if amount < project.minimum_investment:
        raise invalid(
            "amount", f"Expected at least {project.minimum_investment} (one {project.currency})"
        )
    wallets = await nft.store.call(nft.app.wallets_of, identity.user_id)
    if not wallets:
        raise NoWalletLinked("Link a wallet first: it signs the funding")
    wallet = data.wallet_address or await nft.store.call(nft.app.wallet_of, identity.user_id)
    mine = {w.lower(): w for w in wallets}
    if wallet.lower() not in mine:
        raise invalid("walletAddress", "Expected one of your linked wallets")
    wallet = mine[wallet.lower()]
    project = await nft.store.call(
        nft.app.register_chain_funder,
        project_id,
        address=wallet,
        account_id=identity.user_id,
        now=datetime.now(UTC),
    )
    escrow = escrow_view(project)
    assert escrow is not None
    return ChainFundingView(
        project_id=project_id,
        investment_id=chain_investment_id(project_id, wallet),
        method=CHAIN,
        wallet_address=wallet,
        amount=amount,
        currency=project.currency,
        escrow=escrow,
        transactions=[
            ChainTxView(to=t.to, data=t.data, value=str(t.value), description=t.description)
            for t in nft.escrow_chain.funding_transactions(project.chain_project_id, amount)
        ],
    )


def _milestone(milestone_id: str) -> tuple[UUID, int]:
    parsed = parse_milestone_id(milestone_id)
    if parsed is None:
        raise MilestoneNotFound(details={"milestoneId": milestone_id})
    return parsed


def _summary(r: Any) -> ProjectSummary:
    return ProjectSummary(
        id=r["id"],
        artist_id=r["artist_id"],
        title=r["title"],
        description=r["description"],
        status=r["status"],
        funding_goal=r["funding_goal"],
        amount_raised=r["raised"],
        currency=r["currency"],
        funders=r["funders"],
        milestones=r["milestones"],
        milestones_released=r["milestones_released"],
        funding_deadline=r["funding_deadline"],
        release_date=r["release_date"],
        created_at=r["created_at"],
        onchain_reference=r["onchain_reference"],
        funding_method=r["funding_method"],
    )


class ProjectsController(Controller):
    path = "/projects"
    tags = ["projects"]
    dependencies = {"nft": Provide(provide_nft)}

    @get("/", opt={PUBLIC_OPT: True}, raises=(ValidationFailed,))
    async def catalogue(
        self,
        nft: NamedDependency[NftContext],
        status: Annotated[
            Literal["funding", "in_progress", "released", "cancelled"] | None,
            QueryParameter(description="Only the projects in this status"),
        ] = None,
        artist_id: Annotated[
            str | None, QueryParameter(name="artistId", description="Only this artist's")
        ] = None,
        limit: PageLimit = DEFAULT_LIMIT,
        cursor: PageCursor = None,
    ) -> ProjectPage:
        """N7: projects, newest first; `status` and `artistId` narrow the list."""
        query = PageQuery.parse(limit, cursor, newest_first=True)
        condition, order, args = query.sql("created_at", "id", 3)
        rows = await nft.pool.fetch(
            f"SELECT * FROM {PROJECTS} WHERE ($1::text IS NULL OR status = $1) "
            f"AND ($2::text IS NULL OR artist_id = $2) AND {condition} {order}",
            status,
            None if artist_id is None else user_id(artist_id, field="artistId"),
            *args,
        )
        page = page_of(rows, query, lambda r: Position(r["created_at"], r["id"]))
        return ProjectPage(items=[_summary(r) for r in page.items], next_cursor=page.next_cursor)

    @get("/{project_id:uuid}", opt={PUBLIC_OPT: True}, raises=(NotFound,))
    async def detail(
        self, project_id: FromPath[UUID], nft: NamedDependency[NftContext]
    ) -> ProjectView:
        """N8: a project with its milestones and figures."""
        return project_view(await _project(nft, project_id))

    @get("/{project_id:uuid}/milestones", opt={PUBLIC_OPT: True}, raises=(NotFound,))
    async def milestones(
        self, project_id: FromPath[UUID], nft: NamedDependency[NftContext]
    ) -> list[MilestoneView]:
        """N14: the project's milestones, in the order they are released."""
        return milestone_views(await _project(nft, project_id))

    @post("/", status_code=201, opt={IDEMPOTENT_OPT: True}, raises=(Forbidden,))
    async def create(
        self,
        data: JSONBody[ProjectRequest],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> ProjectView:
        """N9: a project taking funding until `fundingDeadline` (within a year), with 1-20
        milestones whose `payoutAmount`s add up to `fundingGoal`; `revenueShareBps` of its
        later revenue is promised to the funders."""
        artist = _artist_of(identity, data.artist_id)
        recipient = None
        if data.funding_method == CHAIN:
            recipient = await nft.store.call(nft.app.wallet_of, artist)
            if recipient is None:
                raise NoWalletLinked(
                    "Link the artist's wallet first: milestone payouts are released there",
                    details={"artistId": artist},
                )
        project = await nft.store.call(
            nft.app.create_project,
            project_id=uuid.uuid4(),
            artist_id=artist,
            actor_id=identity.user_id,
            actor_is_admin=is_admin(identity),
            now=datetime.now(UTC),
            title=data.title,
            description=data.description,
            funding_goal=data.funding_goal,
            currency=data.currency,
            funding_deadline=data.funding_deadline,
            release_date=data.release_date,
            share_bps=data.revenue_share_bps,
            milestones=[
                {"name": m.name, "payout_amount": m.payout_amount} for m in data.milestones
            ],
            funding_method=data.funding_method,
            chain_recipient=recipient,
        )
        return project_view(project)

    @post(
        "/{project_id:uuid}/fund",
        status_code=201,
        opt={IDEMPOTENT_OPT: True},
        raises=(NotFound, Conflict),
    )
    async def fund(
        self,
        project_id: FromPath[UUID],
        data: JSONBody[FundRequest],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> InvestmentView | ChainFundingView:
        """N10: invest `amount`; pay its order before `expiresAt`. More than what is left is
        409 FUNDING_EXCEEDS_GOAL (`details.left`); a project not funding 409
        PROJECT_NOT_FUNDING. A chain project (`method: "chain"`): the transactions your
        wallet signs; a card funding of it (or a chain funding of a card project) is 409
        WRONG_FUNDING_METHOD."""
        if data.method == CHAIN:
            return await _fund_on_chain(nft, identity, project_id, data)
        investment_id = str(uuid.uuid4())
        app = nft.app
        await nft.group.submit(
            lambda: app.decide_invest(
                project_id,
                investment_id=investment_id,
                account_id=identity.user_id,
                amount=data.amount,
                method=data.method,
                now=datetime.now(UTC),
            ),
            loads=[project_id],
        )
        return investment_view(await _project(nft, project_id), investment_id)

    @post("/{project_id:uuid}/finalize", status_code=200, raises=(NotFound, Forbidden, Conflict))
    async def finalize(
        self,
        project_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> ProjectView:
        """N17: the release, by its artist or an admin, once every milestone is released
        (409 PROJECT_STATE_CONFLICT before); again: the released project."""
        project = await nft.store.call(
            nft.app.finalize_project,
            project_id,
            actor_id=identity.user_id,
            actor_is_admin=is_admin(identity),
            now=datetime.now(UTC),
        )
        return project_view(project)

    @post("/{project_id:uuid}/cancel", status_code=200, raises=(NotFound, Forbidden, Conflict))
    async def cancel(
        self,
        project_id: FromPath[UUID],
        data: JSONBody[CancelRequest],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> ProjectView:
        """Admins: cancel a project not yet released; its unreleased money is refunded to
        the funders pro rata."""
        project = await nft.store.call(
            nft.app.cancel_project,
            project_id,
            reason=data.reason,
            actor_id=identity.user_id,
            actor_is_admin=is_admin(identity),
            now=datetime.now(UTC),
        )
        return project_view(project)

    @post("/{project_id:uuid}/revenue", status_code=200, raises=(NotFound, Forbidden, Conflict))
    async def book_revenue(
        self,
        project_id: FromPath[UUID],
        data: JSONBody[RevenueRequest],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> ProjectView:
        """Admins: revenue a released project earned (`amount` minor units, under the
        statement's `reference`); `revenueShareBps` of it becomes the funders'."""
        project = await nft.store.call(
            nft.app.book_project_revenue,
            project_id,
            booking_id=data.reference,
            amount=data.amount,
            actor_id=identity.user_id,
            actor_is_admin=is_admin(identity),
            now=datetime.now(UTC),
        )
        return project_view(project)


class MilestonesController(Controller):
    path = "/milestones"
    tags = ["projects"]
    dependencies = {"nft": Provide(provide_nft)}

    @post(
        "/{milestone_id:str}/submit-proof",
        status_code=200,
        raises=(NotFound, Forbidden, Conflict),
    )
    async def submit_proof(
        self,
        milestone_id: FromPath[str],
        data: JSONBody[ProofRequest],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> MilestoneView:
        """N15: the project's artist submits the milestone's proof for an admin's approval:
        an https `proofUrl`, or a `proofFile` uploaded for this project; a milestone not
        locked is 409 MILESTONE_STATE_CONFLICT."""
        project_id, index = _milestone(milestone_id)
        if (data.proof_url is None) == (data.proof_file is None):
            raise invalid("proofUrl", "Expected exactly one of proofUrl and proofFile")
        if data.proof_url is not None:
            if not data.proof_url.startswith("https://"):
                raise invalid("proofUrl", "Expected an https URL")
            proof = {"url": data.proof_url, "note": data.note}
        else:
            key = data.proof_file
            if not key.startswith(f"{PROOFS}/{project_id}/") or not await nft.storage.exists(key):
                raise invalid("proofFile", "Expected a file uploaded for this project's proofs")
            proof = {"file": key, "note": data.note}
        project = await nft.store.call(
            nft.app.submit_milestone_proof,
            project_id,
            index=index,
            proof=proof,
            actor_id=identity.user_id,
            actor_is_admin=is_admin(identity),
            now=datetime.now(UTC),
        )
        return milestone_views(project)[index]

    @post(
        "/{milestone_id:str}/proof-files",
        status_code=201,
        request_max_body_size=MAX_PROOF_BYTES,
        raises=(NotFound, Forbidden, UnsupportedMediaType, PayloadTooLarge),
    )
    async def upload_proof(
        self,
        milestone_id: FromPath[str],
        data: Annotated[ProofUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> ProofFileView:
        """The project's artist uploads a proof file (`file`: an image or a PDF, at most
        25 MiB); then names it in submit-proof's `proofFile`."""
        try:
            project_id, index = _milestone(milestone_id)
            project = await _project(nft, project_id)
            project.milestone(index)
            if identity.user_id != project.artist_id and not is_admin(identity):
                raise Forbidden("Only the project's artist submits proofs")
            stored = await nft.storage.put(
                f"{PROOFS}/{project_id}", chunks(data.file), expect=PROOF_KINDS
            )
        finally:
            await data.file.close()
        return ProofFileView(
            proof_file=stored.key, mime=stored.mime, size=stored.size, sha256=stored.sha256
        )

    @get("/{milestone_id:str}/proof-file", raises=(NotFound,))
    async def proof_file(
        self,
        milestone_id: FromPath[str],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> Stream:
        """The milestone's proof file, to the project's artist, its funders and admins."""
        project_id, index = _milestone(milestone_id)
        project = await _project(nft, project_id)
        proof = project.milestone(index)["proof"] or {}
        allowed = (
            identity.user_id == project.artist_id
            or is_admin(identity)
            or identity.user_id in project.funders()
        )
        if not proof.get("file") or not allowed:
            raise NotFound(
                "This milestone has no proof file for you", details={"milestoneId": milestone_id}
            )
        kind = kind_of_key(proof["file"])
        mime = kind.mime if kind is not None else "application/octet-stream"
        return Stream(nft.storage.open(proof["file"]), media_type=mime)

    @post("/{milestone_id:str}/approve", status_code=200, raises=(NotFound, Forbidden, Conflict))
    async def approve(
        self,
        milestone_id: FromPath[str],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> MilestoneView:
        """N16 (admins): approve the proof and release the payout to the artist; only the
        next milestone in order (409 MILESTONE_OUT_OF_ORDER), only one pending approval (409
        MILESTONE_STATE_CONFLICT)."""
        project_id, index = _milestone(milestone_id)
        project = await nft.store.call(
            nft.app.approve_milestone,
            project_id,
            index=index,
            actor_id=identity.user_id,
            actor_is_admin=is_admin(identity),
            now=datetime.now(UTC),
        )
        return milestone_views(project)[index]

    @post("/{milestone_id:str}/reject", status_code=200, raises=(NotFound, Forbidden, Conflict))
    async def reject(
        self,
        milestone_id: FromPath[str],
        data: JSONBody[RejectRequest],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> MilestoneView:
        """Admins: reject the proof with a reason; the milestone is locked again and the
        artist may submit another."""
        project_id, index = _milestone(milestone_id)
        project = await nft.store.call(
            nft.app.reject_milestone,
            project_id,
            index=index,
            reason=data.reason,
            actor_id=identity.user_id,
            actor_is_admin=is_admin(identity),
            now=datetime.now(UTC),
        )
        return milestone_views(project)[index]


class InvestmentsController(Controller):
    path = "/investments"
    tags = ["projects"]
    dependencies = {"nft": Provide(provide_nft)}

    @get("/{investment_id:uuid}", raises=(NotFound,))
    async def detail(
        self,
        investment_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> InvestmentView:
        """N12: an investment, to its funder (or an admin)."""
        project = await _project_of_investment(nft, investment_id)
        i = project.investments.get(str(investment_id))
        if i is None or (i["account_id"] != identity.user_id and not is_admin(identity)):
            raise InvestmentNotFound(details={"investmentId": str(investment_id)})
        return investment_view(project, str(investment_id))

    @post("/{investment_id:uuid}/claim-payout", status_code=200, raises=(NotFound, Conflict))
    async def claim_payout(
        self,
        investment_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> PayoutView:
        """N13: move what the investment may claim of the project's shared revenue to your
        balance; nothing to claim is 409 NOTHING_TO_CLAIM."""
        project = await _project_of_investment(nft, investment_id)
        amount = await nft.store.call(
            nft.app.claim_payout,
            project.id,
            investment_id=str(investment_id),
            account_id=identity.user_id,
            now=datetime.now(UTC),
        )
        claimed = (await _project(nft, project.id)).investment(str(investment_id))["claimed"]
        return PayoutView(
            investment_id=str(investment_id),
            amount=amount,
            currency=project.currency,
            claimed=claimed,
        )


class UserInvestmentsController(Controller):
    path = "/user/investments"
    tags = ["projects"]
    dependencies = {"nft": Provide(provide_nft)}

    @get("/", raises=(ValidationFailed,))
    async def mine(
        self,
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
        limit: PageLimit = DEFAULT_LIMIT,
        cursor: PageCursor = None,
    ) -> InvestmentPage:
        """N11: your investments, newest first."""
        query = PageQuery.parse(limit, cursor, newest_first=True)
        condition, order, args = query.sql("created_at", "id", 2)
        rows = await nft.pool.fetch(
            f"SELECT id, project_id, created_at FROM {INVESTMENTS} "
            f"WHERE account_id = $1 AND {condition} {order}",
            identity.user_id,
            *args,
        )
        page = page_of(rows, query, lambda r: Position(r["created_at"], r["id"]))
        projects: dict[UUID, Project] = {}
        items = []
        for r in page.items:
            if r["project_id"] not in projects:
                projects[r["project_id"]] = await _project(nft, r["project_id"])
            items.append(investment_view(projects[r["project_id"]], str(r["id"])))
        return InvestmentPage(items=items, next_cursor=page.next_cursor)
