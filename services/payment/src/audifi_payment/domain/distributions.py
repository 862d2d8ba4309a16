"""A revenue distribution's share owed to a custody holder, paid into their platform balance.

nft funds a distribution on chain for wallet holders (they claim it there) and keeps the
custody holders' shares in the treasury; each custody holder's share is paid here, once, as
one balanced transaction:

    debit  platform:distributions    cents   distribution
    credit user:<account>:available  cents   distribution

The share comes in base units of a USD stablecoin (`decimals` of them to the dollar); a
balance is kept in cents, so the holder gets floor(base units / 10^(decimals - 2)) cents and
the sub-cent rest stays with the platform, in the treasury (never more than 0.99 cent per
holder and distribution). A share worth less than a cent books nothing.

The transaction's id comes from the distribution and the account: a redelivered or
republished notice asks to record the same id with the same terms and is answered with the
first recording; a notice that says otherwise under that id is refused (TRANSACTION_ID_TAKEN).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

from audifi_kit.errors import ValidationFailed

from audifi_payment.domain.accounts import PLATFORM_DISTRIBUTIONS, user_available
from audifi_payment.domain.ledger import Direction, Leg, transaction_id_for

DISTRIBUTION = "distribution"  # the transactions' event source
CURRENCY = "USD"
CENT_DECIMALS = 2

_BASE_UNITS = re.compile(r"[0-9]+")


class DistributionNotPayable(ValidationFailed):
    """A share this ledger cannot pay as it was told: another currency than USD, a token of
    fewer than 2 decimals (no stablecoin nft pays in: a sign of a mix-up) or an amount that
    is not base units. Raised from the consumer: retried, then parked for an operator."""

    code = "DISTRIBUTION_NOT_PAYABLE"
    default_message = "The distribution's share cannot be paid into a balance"


def _refused(field: str, message: str) -> DistributionNotPayable:
    return DistributionNotPayable(
        message, details={"fields": [{"field": field, "message": message}]}
    )


def cents_of(amount: str, decimals: int, currency: str) -> int:
    """The whole cents in `amount` base units of a USD token of `decimals` decimals; the
    sub-cent rest is the platform's (it stays in the treasury)."""
    if currency != CURRENCY:
        raise _refused("currency", f"Only {CURRENCY} distributions are paid, not {currency!r}")
    if type(decimals) is not int or decimals < CENT_DECIMALS:
        raise _refused("decimals", f"A token of {decimals!r} decimals cannot be paid in cents")
    if not isinstance(amount, str) or not _BASE_UNITS.fullmatch(amount):
        raise _refused("amount", f"An amount is a string of base-unit digits, not {amount!r}")
    return int(amount) // 10 ** (decimals - CENT_DECIMALS)


def payout_id(distribution_id: str, account_id: str) -> UUID:
    """The one transaction that can pay this account its share of this distribution."""
    return transaction_id_for(DISTRIBUTION, f"{distribution_id}|{account_id}")


@dataclass(frozen=True, slots=True)
class CustodyPayout:
    """One custody holder's share of one distribution, in cents."""

    distribution_id: str
    account_id: str
    cents: int
    month: str
    master_id: str
    collection: str

    @property
    def txn_id(self) -> UUID:
        return payout_id(self.distribution_id, self.account_id)

    @property
    def legs(self) -> list[Leg]:
        return [
            Leg(PLATFORM_DISTRIBUTIONS, Direction.DEBIT, self.cents),
            Leg(user_available(self.account_id), Direction.CREDIT, self.cents),
        ]

    @property
    def reason(self) -> str:
        """The memo a reader of the ledger sees: which distribution, which month, which
        master (the holder's entries show the distribution's id as their reference)."""
        return (
            f"distribution {self.distribution_id} of {self.month}, "
            f"master {self.master_id} ({self.collection})"
        )
