"""How a paid charge is booked: one balanced transaction, every cent accounted for.

For a charge of `gross` of which Stripe kept `fee` (from the charge's balance transaction):

    debit  stripe:clearing          gross   stripe_charge  what the buyer paid, held by Stripe
    credit stripe:fees              fee     stripe_fee     what Stripe kept
    credit platform:fees            p       platform_fee   PLATFORM_FEE_BPS of gross
    credit user:<r>:available       part    split          the rest, by the seller's split rule

p = gross * bps // 10,000, never more than what is left after Stripe's fee; the rest
(gross - fee - p) is allocated by the seller's split rule (largest remainder, the remainder
to the seller: `allocation.allocate`). Stripe's fee is borne by the sellers, not the platform:
the platform's fee is taken before the split, as the treasury asks. The net Stripe pays out
(gross - fee) is clearing's balance once the fee is settled against it at payout time.

A late payment (an order already paid, expired or failed) is booked the same way up to the
split, but what is left goes to `platform:refunds`, and the refund (`refund_legs`) takes the
whole gross back out of clearing: Stripe keeps its fee on a refund, so `platform:refunds` ends
owing that fee — the cost of the late payment, visible in the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence

from audifi_payment.domain.accounts import (
    PLATFORM_FEES,
    PLATFORM_REFUNDS,
    STRIPE_CLEARING,
    STRIPE_FEES,
    user_available,
)
from audifi_payment.domain.allocation import WHOLE, allocate
from audifi_payment.domain.ledger import Direction, Leg

STRIPE_CHARGE = "stripe_charge"
STRIPE_FEE = "stripe_fee"
PLATFORM_FEE = "platform_fee"
SPLIT = "split"
REFUND = "refund"


def platform_fee(gross: int, fee: int, bps: int) -> int:
    """The platform's share of a charge: `bps` of gross, within what Stripe left."""
    if not 0 <= bps <= WHOLE:
        raise ValueError(f"platform fee must be 0..{WHOLE} basis points: {bps}")
    return max(0, min(gross * bps // WHOLE, gross - fee))


def charge_legs(
    *,
    gross: int,
    fee: int,
    platform_fee_bps: int,
    shares: Sequence[tuple[str, int]],
    seller: str,
) -> list[Leg]:
    """The legs of a paid charge whose proceeds the seller's split rule (`shares`) divides."""
    _check(gross, fee)
    taken = platform_fee(gross, fee, platform_fee_bps)
    legs = _head(gross, fee, taken)
    for recipient, part in allocate(gross - fee - taken, shares, seller):
        if part:
            legs.append(Leg(user_available(recipient), Direction.CREDIT, part, SPLIT))
    return legs


def late_payment_legs(*, gross: int, fee: int) -> list[Leg]:
    """A payment that must go back: held for the refund, no platform fee, no split."""
    _check(gross, fee)
    legs = _head(gross, fee, 0)
    if gross - fee:
        legs.append(Leg(PLATFORM_REFUNDS, Direction.CREDIT, gross - fee, REFUND))
    return legs


def refund_legs(*, amount: int) -> list[Leg]:
    """A refund of a late payment: the amount leaves Stripe's balance back to the buyer."""
    return [
        Leg(PLATFORM_REFUNDS, Direction.DEBIT, amount, REFUND),
        Leg(STRIPE_CLEARING, Direction.CREDIT, amount, REFUND),
    ]


def _head(gross: int, fee: int, taken: int) -> list[Leg]:
    legs = [Leg(STRIPE_CLEARING, Direction.DEBIT, gross, STRIPE_CHARGE)]
    if fee:
        legs.append(Leg(STRIPE_FEES, Direction.CREDIT, fee, STRIPE_FEE))
    if taken:
        legs.append(Leg(PLATFORM_FEES, Direction.CREDIT, taken, PLATFORM_FEE))
    return legs


def _check(gross: int, fee: int) -> None:
    if not 0 < gross or not 0 <= fee <= gross:
        raise ValueError(f"a charge needs 0 < gross and 0 <= fee <= gross: {gross}, {fee}")
