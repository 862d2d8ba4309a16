"""A Coda project's escrow in the ledger: funded by card, held per milestone, posted to the
artist on approval, voided and refunded when the project is cancelled.

nft decides (the project aggregate: all-or-nothing, capped at the goal, milestones in order,
refunds pro rata); payment books what it decided, each step one balanced transaction whose id
comes from the step, so a redelivered notice books nothing twice.

A funding charge (an order of product kind `project_funding`) puts the whole amount the funder
paid in the project's escrow; Stripe's fee is the platform's cost, so a refund can be whole:

    debit  stripe:clearing          gross   stripe_charge
    credit stripe:fees              fee     stripe_fee
    debit  platform:fees            fee     stripe_fee      (the platform bears it)
    credit project:<id>:escrow      gross   escrow

The goal reached, each milestone's payout is held for the artist, pending (a two-phase
transfer: it counts against the escrow at once, reaches the artist's balance only when
posted):

    debit  project:<id>:escrow           payout          milestone
    credit platform:fees                 PLATFORM_FEE_BPS of the payout
    credit user:<artist>:available       the rest

An approval posts the milestone's hold; a cancellation voids the holds not posted, then
refunds each investment its part, and books the rounding remainder to the platform:

    debit  project:<id>:escrow           refund          refund
    credit user:<funder>:available       refund

so the escrow ends at zero. A funder's claim of the project's later revenue is paid from
`platform:project_revenue` (the distributor's payments for released projects, which reach the
platform outside this ledger; its debit balance is what funders were paid of them).

The escrow is a flagged account: its debits (held ones included) never exceed its credits, so
no hold or refund is ever booked that the funders' money does not cover.
"""

from __future__ import annotations

from uuid import UUID

from audifi_payment.domain.accounts import (
    PLATFORM_ADJUSTMENTS,
    PLATFORM_FEES,
    PLATFORM_PROJECT_REVENUE,
    STRIPE_CLEARING,
    STRIPE_FEES,
    project_escrow,
    user_available,
)
from audifi_payment.domain.allocation import WHOLE
from audifi_payment.domain.charges import PLATFORM_FEE, STRIPE_CHARGE, STRIPE_FEE
from audifi_payment.domain.ledger import Direction, Leg, transaction_id_for

FUNDING_KIND = "project_funding"  # the order product kind nft sends for an investment
ESCROW = "escrow"
MILESTONE = "milestone"
PROJECT_REFUND = "project_refund"
PROJECT_REMAINDER = "project_remainder"
PROJECT_PAYOUT = "project_payout"


def funding_legs(*, project_id: str, gross: int, fee: int) -> list[Leg]:
    """A paid investment: all of it into the escrow, Stripe's fee borne by the platform."""
    if not 0 < gross or not 0 <= fee <= gross:
        raise ValueError(f"a charge needs 0 < gross and 0 <= fee <= gross: {gross}, {fee}")
    legs = [
        Leg(STRIPE_CLEARING, Direction.DEBIT, gross, STRIPE_CHARGE),
        Leg(project_escrow(project_id), Direction.CREDIT, gross, ESCROW),
    ]
    if fee:
        legs += [
            Leg(STRIPE_FEES, Direction.CREDIT, fee, STRIPE_FEE),
            Leg(PLATFORM_FEES, Direction.DEBIT, fee, STRIPE_FEE),
        ]
    return legs


def milestone_hold_legs(
    *, project_id: str, artist_id: str, payout: int, platform_fee_bps: int
) -> list[Leg]:
    """A milestone's payout held for the artist, the platform's fee taken from it."""
    if payout <= 0:
        raise ValueError(f"a milestone pays out a positive amount: {payout}")
    if not 0 <= platform_fee_bps <= WHOLE:
        raise ValueError(f"platform fee must be 0..{WHOLE} basis points: {platform_fee_bps}")
    fee = payout * platform_fee_bps // WHOLE
    legs = [Leg(project_escrow(project_id), Direction.DEBIT, payout, MILESTONE)]
    if fee:
        legs.append(Leg(PLATFORM_FEES, Direction.CREDIT, fee, PLATFORM_FEE))
    if payout - fee:
        legs.append(Leg(user_available(artist_id), Direction.CREDIT, payout - fee, MILESTONE))
    return legs


def refund_legs(*, project_id: str, account_id: str, amount: int) -> list[Leg]:
    return [
        Leg(project_escrow(project_id), Direction.DEBIT, amount, PROJECT_REFUND),
        Leg(user_available(account_id), Direction.CREDIT, amount, PROJECT_REFUND),
    ]


def remainder_legs(*, project_id: str, amount: int) -> list[Leg]:
    return [
        Leg(project_escrow(project_id), Direction.DEBIT, amount, PROJECT_REMAINDER),
        Leg(PLATFORM_ADJUSTMENTS, Direction.CREDIT, amount, PROJECT_REMAINDER),
    ]


def payout_legs(*, account_id: str, amount: int) -> list[Leg]:
    return [
        Leg(PLATFORM_PROJECT_REVENUE, Direction.DEBIT, amount, PROJECT_PAYOUT),
        Leg(user_available(account_id), Direction.CREDIT, amount, PROJECT_PAYOUT),
    ]


def milestone_hold_id(project_id: str, sequence: int) -> UUID:
    return transaction_id_for(MILESTONE, f"{project_id}.{sequence}")


def refund_id(project_id: str, investment_id: str) -> UUID:
    return transaction_id_for(PROJECT_REFUND, f"{project_id}.{investment_id}")


def remainder_id(project_id: str) -> UUID:
    return transaction_id_for(PROJECT_REMAINDER, project_id)


def payout_id(investment_id: str, claimed_total: int) -> UUID:
    """A claim is named by its investment and the investment's claims after it."""
    return transaction_id_for(PROJECT_PAYOUT, f"{investment_id}.{claimed_total}")
