"""Paying for IPO shares on chain, in the payment token (DevUSD on the development chain, USDC
in production: a USD stablecoin of 6 decimals).

The buyer reserves with `method: "chain"` and is told what to send: `amount` base units of the
token to the platform's address. Then they name their transaction; it is checked on chain
(`check_payment`: that exact amount of that token to that address, enough confirmations) and
only then recorded, together with a claim on its hash: one transaction pays for one purchase,
ever (`TxHashClaim`, keyed by the hash: a second use fails on its key, 409 TX_HASH_USED).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

from audifi_kit.errors import Conflict
from eventsourcing.domain import Aggregate, event

TOKEN_DECIMALS = 6
CENTS_TO_BASE_UNITS = 10 ** (TOKEN_DECIMALS - 2)  # a cent is 10,000 base units
CHAIN_CURRENCY = "USD"

TX_HASH_NAMESPACE = uuid.UUID("9d3e7b1a-2f4c-4a8e-b6d5-0c1f3e5a7b92")


class ChainPaymentUnavailable(Conflict):
    code = "CHAIN_PAYMENT_UNAVAILABLE"
    default_message = "This IPO is not sold for the payment token: pay by card"


class TxHashUsed(Conflict):
    code = "TX_HASH_USED"
    default_message = "This transaction already paid for a purchase"


class NotAChainPurchase(Conflict):
    code = "NOT_A_CHAIN_PURCHASE"
    default_message = "This purchase is paid by card, not on chain"


def token_amount(amount_cents: int, currency: str) -> int:
    """What a purchase of `amount_cents` costs in the token's base units (USD only)."""
    if currency.upper() != CHAIN_CURRENCY:
        raise ChainPaymentUnavailable(details={"currency": currency})
    return amount_cents * CENTS_TO_BASE_UNITS


def tx_hash_claim_id(tx_hash: str) -> UUID:
    return uuid.uuid5(TX_HASH_NAMESPACE, tx_hash.lower())


class TxHashClaim(Aggregate):
    """A transaction hash spent on one purchase: created once, never changed."""

    @event("Claimed")
    def __init__(self, *, tx_hash: str, ipo_id: UUID, reservation_id: str, at: datetime) -> None:
        self.tx_hash = tx_hash.lower()
        self.ipo_id = ipo_id
        self.reservation_id = reservation_id
        self.at = at

    @classmethod
    def claim(cls, *, tx_hash: str, ipo_id: UUID, reservation_id: str, at: datetime) -> TxHashClaim:
        return cls._create(
            cls.Claimed,
            id=tx_hash_claim_id(tx_hash),
            tx_hash=tx_hash,
            ipo_id=ipo_id,
            reservation_id=reservation_id,
            at=at,
        )
