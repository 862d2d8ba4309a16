"""A Coda Collective project: fans fund an artist's project, paid out milestone by milestone.

States (the seed's, and ours for the failure it does not name):
funding -> in_progress (the goal reached before the deadline) -> released (finalized once
its last milestone is paid out) | cancelled (the deadline passed short of the goal, or an
admin cancelled it before it was released).

All-or-nothing and capped at the goal: an investment is a reservation first, held while its
funder pays (payment's order, as an IPO purchase); paid ones plus held ones never exceed the
goal, so every payment can be honoured. The milestones' payouts add up to the goal exactly
(as MilestoneEscrow requires), and are released strictly in order, each on an admin's
approval of the artist's proof. Until then the money stays in escrow.

A cancelled project refunds every paid investment its pro-rata part of what was not
released, by MilestoneEscrow's formula, `amount * unreleased // raised` (rounded down): a
project that never reached its goal released nothing, so each funder gets back exactly what
they paid; after releases, the few minor units the rounding leaves (fewer than the number of
investments) are the `remainder`, booked to the platform rather than kept in escrow forever
as the contract does.

A released project shares the revenue booked for it later with its funders: `shareBps` of
each booking, pro rata to the investments. What an investment may claim is cumulative and
rounded down, `shared * amount // raised - claimed`, so no claim is paid twice and the claims
never add up to more than was shared.

Money is in the project's currency's minor units. Conserved at every step:
raised = released + refunded + remainder + escrowed, with escrowed >= 0.

Funded on chain instead (`fundingMethod: "chain"`, chosen at creation): the project is a
MilestoneEscrow project in the payment token, its currency `USDC` and its amounts the token's
base units (6 decimals). The chain holds the money and the aggregate mirrors it: nft's
operator creates the escrow project (approver: nft's account; recipient: the artist's linked
wallet), fans fund it from their wallets (the API prepares the approve and fund transactions
and names the funder's wallet for their account), each `ProjectFunded` log is an investment
(one per funder address, as the contract counts them), an approval releases the milestone on
chain, a cancellation cancels the escrow project, and each funder takes their refund from the
contract (`Refunded` logs: what was refunded). No money of a chain project touches payment's
ledger; the contract keeps the few base units its rounding leaves (there is no `remainder`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from audifi_kit.errors import Conflict, NotFound
from audifi_kit.values import (
    MAX_SAFE_INTEGER,
    currency_code,
    invalid,
    minor_unit_exponent,
    moment,
    whole_number,
)
from eventsourcing.domain import Aggregate, event

MAX_MILESTONES = 20
MAX_FUNDING_WINDOW = timedelta(days=366)
MAX_SHARE_BPS = 10_000
INVESTMENT_TTL = timedelta(minutes=15)

FUNDING = "funding"
IN_PROGRESS = "in_progress"
RELEASED = "released"
CANCELLED = "cancelled"

LOCKED = "locked"
PENDING_APPROVAL = "pending_approval"
UNLOCKED = "unlocked"

PENDING = "pending"
PAID = "paid"
LAPSED = "lapsed"  # its order expired or failed, or the project ended while it was held

CARD = "card"
CHAIN = "chain"
FUNDING_METHODS = (CARD, CHAIN)
METHODS = (CARD,)  # how a reservation is paid; a chain project is funded on chain instead
CHAIN_CURRENCY = "USDC"  # the payment token (DevUSD when embedded): 6 decimals
CHAIN_DECIMALS = 6
CHAIN_INVESTMENT_NAMESPACE = uuid.UUID("5b0c8a4e-7d21-4f3a-9e6b-2c8d1f4a7e93")

# What the chain still has to do for a chain project (`Project.escrow_work`).
CREATE = "create"
RELEASE = "release"
CANCEL = "cancel"


class ProjectNotFound(NotFound):
    code = "PROJECT_NOT_FOUND"
    default_message = "Project not found"


class MilestoneNotFound(NotFound):
    code = "MILESTONE_NOT_FOUND"
    default_message = "Milestone not found"


class InvestmentNotFound(NotFound):
    code = "INVESTMENT_NOT_FOUND"
    default_message = "Investment not found"


class ProjectExists(Conflict):
    code = "PROJECT_EXISTS"
    default_message = "Another artist's project has this id"


class ProjectNotFunding(Conflict):
    code = "PROJECT_NOT_FUNDING"
    default_message = "The project is not taking funding"


class FundingExceedsGoal(Conflict):
    code = "FUNDING_EXCEEDS_GOAL"
    default_message = "The amount is more than what is left to reach the goal"


class ProjectStateConflict(Conflict):
    code = "PROJECT_STATE_CONFLICT"
    default_message = "The project cannot do that in its state"


class MilestoneStateConflict(Conflict):
    code = "MILESTONE_STATE_CONFLICT"
    default_message = "The milestone cannot do that in its state"


class MilestoneOutOfOrder(Conflict):
    code = "MILESTONE_OUT_OF_ORDER"
    default_message = "Milestones are released in order"


class NothingToClaim(Conflict):
    code = "NOTHING_TO_CLAIM"
    default_message = "This investment has no payout to claim"


class WrongFundingMethod(Conflict):
    code = "WRONG_FUNDING_METHOD"
    default_message = "This project is funded another way"


class EscrowNotReady(Conflict):
    code = "ESCROW_NOT_READY"
    default_message = "The project's escrow is not on chain yet: try again shortly"


class ChainOutOfStep(RuntimeError):
    """A chain log the project cannot take (or take back): the indexer stops on it."""


def chain_investment_id(project_id: UUID, funder: str) -> str:
    """A chain project's investment: one per funder address, as MilestoneEscrow counts."""
    return str(uuid.uuid5(CHAIN_INVESTMENT_NAMESPACE, f"{project_id}:{funder.lower()}"))


class PaymentOutcome:
    INVESTED = "invested"
    DUPLICATE = "duplicate"
    REFUND_REQUIRED = "refund_required"


def currency_exponent(currency: str) -> int:
    """Decimals of a project's currency: the token's for a chain project, ISO 4217's else."""
    return CHAIN_DECIMALS if currency == CHAIN_CURRENCY else minor_unit_exponent(currency)


def milestone_id_of(project_id: UUID, index: int) -> str:
    """A milestone's public id: its project and its place, `<project>.<index>` (1-based)."""
    return f"{project_id}.{index + 1}"


def parse_milestone_id(value: str) -> tuple[UUID, int] | None:
    """`<project>.<n>` -> (project id, 0-based index); None when it is not one."""
    head, _, tail = value.rpartition(".")
    if not tail.isdigit() or not 1 <= int(tail) <= MAX_MILESTONES:
        return None
    try:
        return UUID(head), int(tail) - 1
    except ValueError:
        return None


class Project(Aggregate):
    @event("Created")
    def __init__(
        self,
        *,
        artist_id: str,
        created_by: str,
        title: str,
        description: str,
        funding_goal: int,
        currency: str,
        funding_deadline: datetime,
        release_date: datetime | None,
        share_bps: int,
        milestones: list[dict[str, Any]],
        at: datetime,
        funding_method: str = CARD,
        chain_recipient: str | None = None,
    ) -> None:
        self.artist_id = artist_id
        self.created_by = created_by
        self.title = title
        self.description = description
        self.funding_goal = funding_goal
        self.currency = currency
        self.funding_deadline = funding_deadline
        self.release_date = release_date
        self.share_bps = share_bps
        self.milestones = [
            {
                "name": m["name"],
                "payout_amount": m["payout_amount"],
                "status": LOCKED,
                "proof": None,
                "rejections": [],
                "released_at": None,
            }
            for m in milestones
        ]
        self.created_at = at
        self.status = FUNDING
        self.raised = 0  # paid investments
        self.held = 0  # investments waiting for their payment
        self.released = 0  # milestone payouts
        self.refunded = 0
        self.remainder = 0  # a cancellation's rounding, booked to the platform
        self.next_milestone = 0
        self.revenue = 0  # booked after the release
        self.shared = 0  # the funders' part of it
        self.claimed = 0
        self.revenue_bookings: set[str] = set()
        self.investments: dict[str, dict[str, Any]] = {}
        self.onchain_reference: str | None = None
        self.ended_reason: str | None = None
        self.finalized_at: datetime | None = None
        self.funding_method = funding_method
        # A chain project's escrow: the artist's wallet it pays, then where it is on chain and
        # how far the chain followed (every one a plain value: see __deepcopy__).
        self.chain_recipient = chain_recipient
        self.chain_project_id: int | None = None
        self.chain_escrow: str | None = None
        self.chain_id: int | None = None
        self.chain_created_tx: str | None = None
        self.chain_released = 0  # milestones released on chain
        self.chain_cancelled = False
        self.chain_cancel_tx: str | None = None
        self.chain_logs: set[str] = set()  # the logs applied (their keys): each once
        self.chain_funders: dict[str, str] = {}  # funder address (lower) -> account id

    @classmethod
    def create(
        cls,
        *,
        project_id: UUID,
        artist_id: str,
        created_by: str,
        title: str,
        description: str,
        funding_goal: Any,
        currency: Any,
        funding_deadline: Any,
        release_date: Any,
        share_bps: Any,
        milestones: list[dict[str, Any]],
        now: datetime,
        funding_method: str = CARD,
        chain_recipient: str | None = None,
    ) -> Project:
        """A new project taking funding. `milestones`: [{name, payout_amount}] whose payouts
        add up to the goal exactly; title and names are checked by the caller's types. Funded
        on chain: in USDC base units, paying `chain_recipient` (the artist's wallet)."""
        goal = whole_number(funding_goal, field="fundingGoal", minimum=1, maximum=MAX_SAFE_INTEGER)
        if funding_method not in FUNDING_METHODS:
            raise invalid("fundingMethod", f"Expected one of {', '.join(FUNDING_METHODS)}")
        if funding_method == CHAIN:
            if str(currency).upper() != CHAIN_CURRENCY:
                raise invalid(
                    "currency", f"A project funded on chain is in {CHAIN_CURRENCY} (base units)"
                )
            if chain_recipient is None:
                raise invalid("fundingMethod", "The artist has no wallet for the escrow to pay")
            code = CHAIN_CURRENCY
        else:
            code = currency_code(currency)
        if goal < 10 ** currency_exponent(code):
            raise invalid("fundingGoal", "Expected at least one unit of the currency")
        deadline = moment(funding_deadline, field="fundingDeadline")
        if deadline <= now:
            raise invalid("fundingDeadline", "Expected a time in the future")
        if deadline > now + MAX_FUNDING_WINDOW:
            raise invalid("fundingDeadline", "Expected a time within a year")
        release = None if release_date is None else moment(release_date, field="releaseDate")
        bps = whole_number(share_bps, field="revenueShareBps", minimum=0, maximum=MAX_SHARE_BPS)
        if not 1 <= len(milestones) <= MAX_MILESTONES:
            raise invalid("milestones", f"Expected 1 to {MAX_MILESTONES} milestones")
        payouts = [
            whole_number(
                m["payout_amount"],
                field=f"milestones[{i}].payoutAmount",
                minimum=1,
                maximum=MAX_SAFE_INTEGER,
            )
            for i, m in enumerate(milestones)
        ]
        if sum(payouts) != goal:
            raise invalid(
                "milestones",
                f"The milestones' payoutAmount must add up to the fundingGoal ({goal}); "
                f"they add up to {sum(payouts)}",
            )
        return cls._create(
            cls.Created,
            id=project_id,
            artist_id=artist_id,
            created_by=created_by,
            title=title,
            description=description,
            funding_goal=goal,
            currency=code,
            funding_deadline=deadline,
            release_date=release,
            share_bps=bps,
            milestones=[
                {"name": m["name"], "payout_amount": p}
                for m, p in zip(milestones, payouts, strict=True)
            ],
            at=now,
            funding_method=funding_method,
            chain_recipient=chain_recipient,
        )

    # -- reading ---------------------------------------------------------------------------

    @property
    def left(self) -> int:
        """What may still be invested: the goal less what is paid and what is held."""
        return self.funding_goal - self.raised - self.held

    @property
    def escrowed(self) -> int:
        """Paid in, and neither released to the artist nor refunded."""
        return self.raised - self.released - self.refunded - self.remainder

    @property
    def minimum_investment(self) -> int:
        """One unit of the currency, or what is left when that is less."""
        return min(10 ** currency_exponent(self.currency), self.left)

    def investment(self, investment_id: str) -> dict[str, Any]:
        found = self.investments.get(investment_id)
        if found is None:
            raise InvestmentNotFound(details={"investmentId": investment_id})
        return found

    def milestone(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.milestones):
            raise MilestoneNotFound(details={"milestoneId": milestone_id_of(self.id, index)})
        return self.milestones[index]

    def claimable(self, investment_id: str) -> int:
        """What the investment may claim now of the revenue shared so far."""
        i = self.investment(investment_id)
        if i["state"] != PAID or not self.raised:
            return 0
        return self.shared * i["amount"] // self.raised - i["claimed"]

    def funders(self) -> list[str]:
        """The accounts of the paid investments, each once, in the order they invested."""
        return list(
            dict.fromkeys(i["account_id"] for i in self.investments.values() if i["state"] == PAID)
        )

    def facts(self) -> dict[str, Any]:
        """What the published events of this project carry, so nothing is loaded to publish."""
        return {
            "artist_id": self.artist_id,
            "title": self.title,
            "currency": self.currency,
            "funding_goal": self.funding_goal,
            "funding_method": self.funding_method,
        }

    def _replace(self, investment_id: str, **changes: Any) -> dict[str, Any]:
        """An investment's entry is never changed in place, only replaced (see __deepcopy__)."""
        entry = {**self.investments[investment_id], **changes}
        self.investments[investment_id] = entry
        return entry

    def _replace_milestone(self, index: int, **changes: Any) -> None:
        self.milestones = [
            {**m, **changes} if i == index else m for i, m in enumerate(self.milestones)
        ]

    def __deepcopy__(self, memo: dict[int, Any]) -> Project:
        """A popular project holds thousands of investments whose entries are never changed
        in place: a copy shares them and copies only the containers."""
        copied = object.__new__(type(self))
        copied.__dict__.update(
            {
                k: v.copy() if isinstance(v, dict | list | set) else v
                for k, v in self.__dict__.items()
            }
        )
        return copied

    # -- funding ---------------------------------------------------------------------------

    def reserve(
        self, *, investment_id: str, account_id: str, amount: Any, method: str, now: datetime
    ) -> dict[str, Any]:
        """Hold `amount` of what is left for the account while it pays; the same investment
        id again is the same investment (a retried request)."""
        if investment_id in self.investments:
            existing = self.investments[investment_id]
            if existing["account_id"] != account_id:  # not theirs to retry
                raise InvestmentNotFound(details={"investmentId": investment_id})
            return existing
        amount = whole_number(amount, field="amount", minimum=1, maximum=MAX_SAFE_INTEGER)
        if self.funding_method == CHAIN:
            raise WrongFundingMethod(
                "This project is funded on chain: fund it with method chain and your wallet",
                details={"fundingMethod": CHAIN},
            )
        if method not in METHODS:
            raise invalid("method", f"Expected one of {', '.join(METHODS)}")
        if self.status != FUNDING or now >= self.funding_deadline:
            raise ProjectNotFunding(details={"status": self.status})
        if amount > self.left:
            raise FundingExceedsGoal(
                f"Only {self.left} {self.currency} minor units are left to reach the goal",
                details={"left": self.left, "requested": amount, "currency": self.currency},
            )
        if amount < self.minimum_investment:
            raise invalid(
                "amount",
                f"Expected at least {self.minimum_investment} (one unit of {self.currency})",
            )
        self._reserved(
            investment_id=investment_id,
            account_id=account_id,
            amount=amount,
            method=method,
            expires_at=now + INVESTMENT_TTL,
            at=now,
            facts=self.facts(),
        )
        return self.investments[investment_id]

    @event("InvestmentReserved")
    def _reserved(
        self,
        investment_id: str,
        account_id: str,
        amount: int,
        method: str,
        expires_at: datetime,
        at: datetime,
        facts: dict[str, Any],
    ) -> None:
        self.investments[investment_id] = {
            "account_id": account_id,
            "amount": amount,
            "method": method,
            "state": PENDING,
            "expires_at": expires_at,
            "created_at": at,
            "payment": None,
            "paid_at": None,
            "claimed": 0,
            "refunded": 0,
        }
        self.held += amount

    def record_payment(self, *, investment_id: str, payment: str, paid_at: datetime) -> str:
        """A payment of a held investment: it is invested (and the project starts when the
        goal is reached). Paid by this same payment: a duplicate. Otherwise (it lapsed, or
        the project ended meanwhile) nothing is invested and the payment needs a refund."""
        i = self.investment(investment_id)
        if i["state"] == PAID and i["payment"] == payment:
            return PaymentOutcome.DUPLICATE
        if i["state"] != PENDING:
            if payment not in i.get("refunds_required", ()):
                self._late_payment(investment_id=investment_id, payment=payment, at=paid_at)
            return PaymentOutcome.REFUND_REQUIRED
        self._invested(
            investment_id=investment_id,
            payment=payment,
            at=paid_at,
            facts={**self.facts(), "account_id": i["account_id"], "amount": i["amount"]},
        )
        if self.raised == self.funding_goal:
            self._goal_reached(
                at=paid_at,
                raised=self.raised,
                facts={
                    **self.facts(),
                    "funders": self.funders(),
                    "milestone_payouts": [m["payout_amount"] for m in self.milestones],
                },
            )
        return PaymentOutcome.INVESTED

    @event("Invested")
    def _invested(
        self, investment_id: str, payment: str, at: datetime, facts: dict[str, Any]
    ) -> None:
        i = self._replace(investment_id, state=PAID, payment=payment, paid_at=at)
        self.held -= i["amount"]
        self.raised += i["amount"]

    @event("LatePaymentRecorded")
    def _late_payment(self, investment_id: str, payment: str, at: datetime) -> None:
        i = self.investments[investment_id]
        self._replace(investment_id, refunds_required=[*i.get("refunds_required", ()), payment])

    @event("GoalReached")
    def _goal_reached(self, at: datetime, raised: int, facts: dict[str, Any]) -> None:
        self.status = IN_PROGRESS
        self.goal_reached_at = at

    def lapse(self, *, investment_id: str, reason: str, now: datetime) -> bool:
        """A held investment whose payment will not come (its order expired or failed)
        gives back what it held; False when it was not held."""
        i = self.investment(investment_id)
        if i["state"] != PENDING:
            return False
        self._lapsed(investment_id=investment_id, reason=reason, at=now)
        return True

    @event("InvestmentLapsed")
    def _lapsed(self, investment_id: str, reason: str, at: datetime) -> None:
        i = self._replace(investment_id, state=LAPSED, lapsed_reason=reason)
        self.held -= i["amount"]

    # -- the end of funding ----------------------------------------------------------------

    def end_if_due(self, now: datetime) -> bool:
        """At the deadline, a project short of its goal is cancelled and refunded in full;
        True when it was. An investment held before the deadline may still be paid until its
        hold expires (its funder was already paying): the project waits for it, and starts
        if that payment reaches the goal."""
        if self.status != FUNDING or now < self.funding_deadline:
            return False
        if any(i["state"] == PENDING and i["expires_at"] > now for i in self.investments.values()):
            return False
        self._cancel(reason="deadline", by="system", now=now)
        return True

    def cancel(self, *, reason: str, by: str, now: datetime) -> None:
        """An admin cancels a project not yet released: its unreleased rest is refunded."""
        if self.status == CANCELLED:
            return
        if self.status == RELEASED:
            raise ProjectStateConflict(
                "A released project cannot be cancelled", details={"status": self.status}
            )
        self._cancel(reason=reason, by=by, now=now)

    def _cancel(self, *, reason: str, by: str, now: datetime) -> None:
        unreleased = self.raised - self.released
        refunds = {
            iid: i["amount"] * unreleased // self.raised
            for iid, i in self.investments.items()
            if i["state"] == PAID
        }
        chain_refunds: dict[str, dict[str, Any]] = {}
        if self.funding_method == CHAIN:  # each funder takes theirs from the contract:
            chain_refunds = {  # published (funders are told), recorded as the chain pays
                iid: {"account_id": self.investments[iid]["account_id"], "amount": a}
                for iid, a in refunds.items()
                if a
            }
            refunds, unreleased = {}, 0
        self._cancelled(
            reason=reason,
            by=by,
            at=now,
            refunds={
                iid: {"account_id": self.investments[iid]["account_id"], "amount": a}
                for iid, a in refunds.items()
                if a
            },
            remainder=unreleased - sum(refunds.values()),
            lapsed=[iid for iid, i in self.investments.items() if i["state"] == PENDING],
            facts=self.facts(),
            chain_refunds=chain_refunds,
        )

    @event("Cancelled")
    def _cancelled(
        self,
        reason: str,
        by: str,
        at: datetime,
        refunds: dict[str, dict[str, Any]],
        remainder: int,
        lapsed: list[str],
        facts: dict[str, Any],
        chain_refunds: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        for iid, refund in refunds.items():
            self._replace(iid, refunded=refund["amount"])
            self.refunded += refund["amount"]
        for iid in lapsed:
            i = self._replace(iid, state=LAPSED, lapsed_reason="project_cancelled")
            self.held -= i["amount"]
        self.remainder = remainder
        self.status = CANCELLED
        self.ended_reason = reason
        self.cancelled_at = at

    # -- milestones ------------------------------------------------------------------------

    def submit_proof(self, *, index: int, proof: dict[str, Any], now: datetime) -> None:
        """The artist's proof that a milestone is done: it waits for an admin's approval."""
        m = self.milestone(index)
        if self.status != IN_PROGRESS:
            raise ProjectStateConflict(
                "Proofs are submitted once the project is funded", details={"status": self.status}
            )
        if m["status"] != LOCKED:
            raise MilestoneStateConflict(
                f"The milestone is {m['status']}",
                details={"milestoneId": milestone_id_of(self.id, index), "status": m["status"]},
            )
        self._proof_submitted(
            index=index, proof=proof, at=now, facts={**self.facts(), "milestone_name": m["name"]}
        )

    @event("MilestoneProofSubmitted")
    def _proof_submitted(
        self, index: int, proof: dict[str, Any], at: datetime, facts: dict[str, Any]
    ) -> None:
        self._replace_milestone(index, status=PENDING_APPROVAL, proof={**proof, "submitted_at": at})

    def approve(self, *, index: int, by: str, now: datetime) -> None:
        """An admin approves the next milestone's proof: its payout is released."""
        m = self.milestone(index)
        if self.status != IN_PROGRESS:
            raise ProjectStateConflict(details={"status": self.status})
        if m["status"] != PENDING_APPROVAL:
            raise MilestoneStateConflict(
                f"Only a milestone pending approval can be approved; this one is {m['status']}",
                details={"milestoneId": milestone_id_of(self.id, index), "status": m["status"]},
            )
        if index != self.next_milestone:
            raise MilestoneOutOfOrder(
                details={
                    "milestoneId": milestone_id_of(self.id, index),
                    "next": milestone_id_of(self.id, self.next_milestone),
                }
            )
        self._approved(
            index=index,
            amount=m["payout_amount"],
            by=by,
            at=now,
            facts={**self.facts(), "milestone_name": m["name"], "funders": self.funders()},
        )

    @event("MilestoneApproved")
    def _approved(
        self, index: int, amount: int, by: str, at: datetime, facts: dict[str, Any]
    ) -> None:
        self._replace_milestone(index, status=UNLOCKED, released_at=at, approved_by=by)
        self.released += amount
        self.next_milestone = index + 1

    def reject(self, *, index: int, reason: str, by: str, now: datetime) -> None:
        """An admin rejects a proof: the milestone is locked again; the artist may resubmit."""
        m = self.milestone(index)
        if self.status != IN_PROGRESS:
            raise ProjectStateConflict(details={"status": self.status})
        if m["status"] != PENDING_APPROVAL:
            raise MilestoneStateConflict(
                f"Only a milestone pending approval can be rejected; this one is {m['status']}",
                details={"milestoneId": milestone_id_of(self.id, index), "status": m["status"]},
            )
        self._rejected(
            index=index,
            reason=reason,
            by=by,
            at=now,
            facts={**self.facts(), "milestone_name": m["name"]},
        )

    @event("MilestoneRejected")
    def _rejected(
        self, index: int, reason: str, by: str, at: datetime, facts: dict[str, Any]
    ) -> None:
        m = self.milestones[index]
        rejection = {"reason": reason, "by": by, "at": at, "proof": m["proof"]}
        self._replace_milestone(
            index, status=LOCKED, proof=None, rejections=[*m["rejections"], rejection]
        )

    # -- on chain (MilestoneEscrow) ----------------------------------------------------------

    def escrow_work(self) -> tuple[str, int | None] | None:
        """What the chain still has to do for this project, in order: create its escrow
        project, release the next approved milestone, cancel it; None when it is in step."""
        if self.funding_method != CHAIN:
            return None
        if self.chain_project_id is None:
            return (CREATE, None) if self.status == FUNDING else None
        if self.chain_cancelled:
            return None
        if self.chain_released < self.next_milestone:
            return (RELEASE, self.chain_released)
        if self.status == CANCELLED:
            return (CANCEL, None)
        return None

    def record_escrow(
        self,
        *,
        chain_id: int,
        escrow: str,
        chain_project_id: int,
        tx_hash: str | None,
        now: datetime,
    ) -> bool:
        """The escrow project made on chain for this one (whatever happened to it since: a
        cancelled project's escrow is then cancelled too); False when recorded already."""
        if self.funding_method != CHAIN:
            raise ChainOutOfStep(f"project {self.id} is not funded on chain")
        if self.chain_project_id is not None:
            if self.chain_project_id == chain_project_id:
                return False
            raise ChainOutOfStep(
                f"project {self.id} is escrow project {self.chain_project_id}, "
                f"not {chain_project_id}"
            )
        self._escrow_created(
            chain_id=chain_id,
            escrow=escrow,
            chain_project_id=chain_project_id,
            tx_hash=tx_hash,
            at=now,
        )
        return True

    @event("EscrowCreated")
    def _escrow_created(
        self, chain_id: int, escrow: str, chain_project_id: int, tx_hash: str | None, at: datetime
    ) -> None:
        self.chain_id = chain_id
        self.chain_escrow = escrow
        self.chain_project_id = chain_project_id
        self.chain_created_tx = tx_hash
        # CAIP-10's account form, and the escrow's own project number after it.
        self.onchain_reference = f"eip155:{chain_id}:{escrow}/{chain_project_id}"

    def record_chain_release(self, *, index: int, tx_hash: str | None, now: datetime) -> bool:
        """Milestone `index` released on chain (after its approval); False when recorded."""
        if index < self.chain_released:
            return False
        if index != self.chain_released or index >= self.next_milestone:
            raise ChainOutOfStep(
                f"project {self.id}: milestone {index} released on chain out of step "
                f"({self.chain_released} released, {self.next_milestone} approved)"
            )
        self._released_on_chain(index=index, tx_hash=tx_hash, at=now)
        return True

    @event("MilestoneReleasedOnChain")
    def _released_on_chain(self, index: int, tx_hash: str | None, at: datetime) -> None:
        self._replace_milestone(index, release_tx=tx_hash, released_on_chain_at=at)
        self.chain_released = index + 1

    def record_chain_cancel(self, *, tx_hash: str | None, now: datetime) -> bool:
        if self.chain_cancelled:
            return False
        if self.status != CANCELLED:
            raise ChainOutOfStep(f"project {self.id} is {self.status}, cancelled on chain")
        self._cancelled_on_chain(tx_hash=tx_hash, at=now)
        return True

    @event("EscrowCancelled")
    def _cancelled_on_chain(self, tx_hash: str | None, at: datetime) -> None:
        self.chain_cancelled = True
        self.chain_cancel_tx = tx_hash

    def register_chain_funder(self, *, address: str, account_id: str, now: datetime) -> bool:
        """`address` funds this project for `account_id` (the wallet is theirs): its
        `ProjectFunded` logs become that account's investment. False when known already."""
        if self.funding_method != CHAIN:
            raise WrongFundingMethod(details={"fundingMethod": self.funding_method})
        key = address.lower()
        if self.chain_funders.get(key) == account_id:
            return False
        self._funder_registered(address=key, account_id=account_id, at=now)
        return True

    @event("ChainFunderRegistered")
    def _funder_registered(self, address: str, account_id: str, at: datetime) -> None:
        self.chain_funders = {**self.chain_funders, address: account_id}

    def _chain_account(self, funder: str) -> str:
        return self.chain_funders.get(funder.lower()) or f"wallet:{funder.lower()}"

    def record_chain_funding(
        self, *, log_key: str, funder: str, amount: int, tx_hash: str, now: datetime
    ) -> bool:
        """A `ProjectFunded` log: the funder's investment grows by `amount` (the contract
        took it, so it counts whatever the project's state); the goal reached starts the
        project. False for a log applied already."""
        if log_key in self.chain_logs:
            return False
        if self.funding_method != CHAIN or amount <= 0:
            raise ChainOutOfStep(f"project {self.id} cannot take funding log {log_key}")
        if self.raised + amount > self.funding_goal:
            raise ChainOutOfStep(f"project {self.id}: funding log {log_key} passes the goal")
        investment_id = chain_investment_id(self.id, funder)
        existing = self.investments.get(investment_id)
        account_id = existing["account_id"] if existing else self._chain_account(funder)
        self._chain_invested(
            investment_id=investment_id,
            log_key=log_key,
            account_id=account_id,
            funder=funder,
            amount=amount,
            tx_hash=tx_hash,
            at=now,
            facts={**self.facts(), "account_id": account_id, "amount": amount},
        )
        if self.status == FUNDING and self.raised == self.funding_goal:
            self._goal_reached(
                at=now,
                raised=self.raised,
                facts={
                    **self.facts(),
                    "funders": self.funders(),
                    "milestone_payouts": [m["payout_amount"] for m in self.milestones],
                },
            )
        return True

    @event("ChainInvested")
    def _chain_invested(
        self,
        investment_id: str,
        log_key: str,
        account_id: str,
        funder: str,
        amount: int,
        tx_hash: str,
        at: datetime,
        facts: dict[str, Any],
    ) -> None:
        existing = self.investments.get(investment_id)
        if existing is None:
            self.investments[investment_id] = {
                "account_id": account_id,
                "amount": amount,
                "method": CHAIN,
                "state": PAID,
                "expires_at": None,
                "created_at": at,
                "payment": tx_hash,
                "paid_at": at,
                "claimed": 0,
                "refunded": 0,
                "funder": funder,
                "logs": (log_key,),
            }
        else:
            self._replace(
                investment_id,
                amount=existing["amount"] + amount,
                state=PAID,
                payment=tx_hash,
                paid_at=at,
                logs=(*existing["logs"], log_key),
            )
        self.raised += amount
        self.chain_logs = self.chain_logs | {log_key}

    def revert_chain_funding(
        self, *, log_key: str, funder: str, amount: int, now: datetime
    ) -> bool:
        """A `ProjectFunded` log whose block left the chain: its funding taken back (and the
        goal with it, while nothing was approved on it). False for a log never applied."""
        if log_key not in self.chain_logs:
            return False
        if self.next_milestone or self.status == RELEASED or self.refunded:
            raise ChainOutOfStep(f"project {self.id} moved on since funding log {log_key}")
        self._chain_investment_reverted(
            investment_id=chain_investment_id(self.id, funder),
            log_key=log_key,
            amount=amount,
            at=now,
        )
        return True

    @event("ChainInvestmentReverted")
    def _chain_investment_reverted(
        self, investment_id: str, log_key: str, amount: int, at: datetime
    ) -> None:
        i = self.investments[investment_id]
        left = i["amount"] - amount
        self._replace(
            investment_id,
            amount=left,
            state=PAID if left else LAPSED,
            lapsed_reason=None if left else "chain_reorganised",
            logs=tuple(k for k in i["logs"] if k != log_key),
        )
        self.raised -= amount
        self.chain_logs = self.chain_logs - {log_key}
        if self.status == IN_PROGRESS and self.raised < self.funding_goal:
            self.status = FUNDING

    def record_chain_refund(
        self, *, log_key: str, funder: str, amount: int, tx_hash: str, now: datetime
    ) -> bool:
        """A `Refunded` log: a funder took their part back from the cancelled escrow."""
        if log_key in self.chain_logs:
            return False
        investment_id = chain_investment_id(self.id, funder)
        if (
            self.funding_method != CHAIN
            or self.status != CANCELLED
            or investment_id not in self.investments
            or amount > self.escrowed
        ):
            raise ChainOutOfStep(f"project {self.id} cannot take refund log {log_key}")
        self._chain_refunded(
            investment_id=investment_id,
            log_key=log_key,
            amount=amount,
            tx_hash=tx_hash,
            at=now,
            facts={**self.facts(), "account_id": self.investments[investment_id]["account_id"]},
        )
        return True

    @event("ChainRefunded")
    def _chain_refunded(
        self,
        investment_id: str,
        log_key: str,
        amount: int,
        tx_hash: str,
        at: datetime,
        facts: dict[str, Any],
    ) -> None:
        i = self.investments[investment_id]
        self._replace(investment_id, refunded=i["refunded"] + amount, refund_tx=tx_hash)
        self.refunded += amount
        self.chain_logs = self.chain_logs | {log_key}

    def revert_chain_refund(self, *, log_key: str, funder: str, amount: int, now: datetime) -> bool:
        if log_key not in self.chain_logs:
            return False
        self._chain_refund_reverted(
            investment_id=chain_investment_id(self.id, funder),
            log_key=log_key,
            amount=amount,
            at=now,
        )
        return True

    @event("ChainRefundReverted")
    def _chain_refund_reverted(
        self, investment_id: str, log_key: str, amount: int, at: datetime
    ) -> None:
        i = self.investments[investment_id]
        self._replace(investment_id, refunded=i["refunded"] - amount, refund_tx=None)
        self.refunded -= amount
        self.chain_logs = self.chain_logs - {log_key}

    # -- release and revenue ---------------------------------------------------------------

    def finalize(self, *, by: str, now: datetime) -> bool:
        """The release, once every milestone is paid out (the distributor's hand-off is an
        event); False when it was finalized already."""
        if self.status == RELEASED:
            return False
        if self.status != IN_PROGRESS or self.next_milestone < len(self.milestones):
            raise ProjectStateConflict(
                "A project is finalized once every milestone is released",
                details={"status": self.status, "milestonesReleased": self.next_milestone},
            )
        if self.funding_method == CHAIN and self.chain_released < len(self.milestones):
            raise ProjectStateConflict(
                "The last milestones are still being released on chain: try again shortly",
                details={"status": self.status, "releasedOnChain": self.chain_released},
            )
        self._finalized(by=by, at=now, facts={**self.facts(), "release_date": self.release_date})
        return True

    @event("Finalized")
    def _finalized(self, by: str, at: datetime, facts: dict[str, Any]) -> None:
        self.status = RELEASED
        self.finalized_at = at

    def book_revenue(self, *, booking_id: str, amount: Any, by: str, now: datetime) -> bool:
        """Revenue earned by the released project: `shareBps` of it becomes claimable by the
        funders. The same booking id again books nothing (False)."""
        if booking_id in self.revenue_bookings:
            return False
        amount = whole_number(amount, field="amount", minimum=1, maximum=MAX_SAFE_INTEGER)
        if self.funding_method == CHAIN:  # payment's ledger keeps ISO currencies, not tokens
            raise WrongFundingMethod(
                "Revenue of a project funded on chain is not shared through the platform's "
                "balances",
                details={"fundingMethod": CHAIN},
            )
        if self.status != RELEASED:
            raise ProjectStateConflict(
                "Revenue is booked for a released project", details={"status": self.status}
            )
        if self.revenue + amount > MAX_SAFE_INTEGER:
            raise invalid("amount", "The project's revenue would be too large")
        self._revenue_booked(
            booking_id=booking_id,
            amount=amount,
            funders_share=amount * self.share_bps // MAX_SHARE_BPS,
            by=by,
            at=now,
            facts=self.facts(),
        )
        return True

    @event("RevenueBooked")
    def _revenue_booked(
        self,
        booking_id: str,
        amount: int,
        funders_share: int,
        by: str,
        at: datetime,
        facts: dict[str, Any],
    ) -> None:
        self.revenue_bookings.add(booking_id)
        self.revenue += amount
        self.shared += funders_share

    def claim_payout(self, *, investment_id: str, account_id: str, now: datetime) -> int:
        """Moves what the investment may claim to its funder; the amount claimed."""
        i = self.investment(investment_id)
        if i["account_id"] != account_id:
            raise InvestmentNotFound(details={"investmentId": investment_id})
        amount = self.claimable(investment_id)
        if amount <= 0:
            raise NothingToClaim(details={"investmentId": investment_id, "claimed": i["claimed"]})
        self._payout_claimed(
            investment_id=investment_id,
            account_id=account_id,
            amount=amount,
            claimed_total=i["claimed"] + amount,
            at=now,
            facts=self.facts(),
        )
        return amount

    @event("PayoutClaimed")
    def _payout_claimed(
        self,
        investment_id: str,
        account_id: str,
        amount: int,
        claimed_total: int,
        at: datetime,
        facts: dict[str, Any],
    ) -> None:
        self._replace(investment_id, claimed=claimed_total)
        self.claimed += amount


def chain_project_ref_id(chain_project_id: int) -> UUID:
    return uuid.uuid5(CHAIN_INVESTMENT_NAMESPACE, f"escrow-project:{chain_project_id}")


class ChainProjectRef(Aggregate):
    """Which project MilestoneEscrow's project `n` is: how its logs find their project, and
    why one escrow project is never recorded for two of ours."""

    @event("Recorded")
    def __init__(self, *, chain_project_id: int, project_id: UUID) -> None:
        self.chain_project_id = chain_project_id
        self.project_id = project_id

    @classmethod
    def record(cls, chain_project_id: int, project_id: UUID) -> ChainProjectRef:
        return cls._create(
            cls.Recorded,
            id=chain_project_ref_id(chain_project_id),
            chain_project_id=chain_project_id,
            project_id=project_id,
        )
