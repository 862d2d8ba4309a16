"""The ledger's chart of accounts, their flags and their balances (TigerBeetle's model).

An account is a colon path; its flags follow from its kind, never from stored state, so every
writer agrees on which accounts are checked at write time. Only a user's balances have a limit
(they must never be spent below zero); the platform's and Stripe's accounts are hot (touched by
nearly every transaction) and unflagged, so no writer ever waits for another on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from audifi_kit.errors import ValidationFailed

PLATFORM_FEES = "platform:fees"
PLATFORM_ADJUSTMENTS = "platform:adjustments"
PLATFORM_REFUNDS = "platform:refunds"
PLATFORM_DISPUTES = "platform:disputes"
PLATFORM_DISTRIBUTIONS = "platform:distributions"
"""Distributions paid off chain to holders whose shares the platform holds in custody: one
debit per holder and distribution, against the credit to their balance. The stablecoins stay
in the on-chain treasury, which this ledger does not hold; this account is the platform's
liability side for what it paid those holders here, so its debit balance is the part of the
treasury's funds that now belongs to users' balances."""
PLATFORM_PROJECT_REVENUE = "platform:project_revenue"
"""Coda projects' revenue paid to their funders: the distributor pays the platform for a
released project outside this ledger; each funder's claim is a debit here against the credit
to their balance (`escrow.py`)."""
STRIPE_CLEARING = "stripe:clearing"
STRIPE_FEES = "stripe:fees"

HOT_ACCOUNTS = frozenset(
    {
        PLATFORM_FEES,
        PLATFORM_ADJUSTMENTS,
        PLATFORM_REFUNDS,
        PLATFORM_DISPUTES,
        PLATFORM_DISTRIBUTIONS,
        PLATFORM_PROJECT_REVENUE,
        STRIPE_CLEARING,
        STRIPE_FEES,
    }
)
# An id inside a path: one segment, printable, no blank (it is shown and matched as typed).
_ID = r"[^\s:\x00-\x1f\x7f-\x9f]{1,128}"
_USER = re.compile(rf"user:({_ID}):(available|pending)")
_ORDER = re.compile(rf"order:({_ID})")
_ESCROW = re.compile(rf"project:({_ID}):escrow")
MAX_ACCOUNT_LENGTH = 160


def invalid(field: str, message: str) -> ValidationFailed:
    """The refusal a client sees for one bad field, shaped as the kit's decoder shapes it."""
    return ValidationFailed(message, details={"fields": [{"field": field, "message": message}]})


@dataclass(frozen=True, slots=True)
class AccountFlags:
    """The balance limits checked whenever a posting or a hold touches the account."""

    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False

    @property
    def flagged(self) -> bool:
        return self.debits_must_not_exceed_credits or self.credits_must_not_exceed_debits


UNFLAGGED = AccountFlags()
USER_BALANCE = AccountFlags(debits_must_not_exceed_credits=True)
ESCROW = AccountFlags(debits_must_not_exceed_credits=True)  # never pays out what it holds not


def flags_for(account: object, *, field: str = "account") -> AccountFlags:
    """The flags of a known account; an account outside the chart is refused."""
    if not isinstance(account, str) or len(account) > MAX_ACCOUNT_LENGTH:
        raise invalid(field, "An account is a text of at most 160 characters")
    if _USER.fullmatch(account):
        return USER_BALANCE
    if _ESCROW.fullmatch(account):
        return ESCROW
    if account in HOT_ACCOUNTS or _ORDER.fullmatch(account):
        return UNFLAGGED
    raise invalid(field, f"Unknown account {account!r}")


def user_available(user_id: str) -> str:
    return f"user:{user_id}:available"


def user_pending(user_id: str) -> str:
    return f"user:{user_id}:pending"


def project_escrow(project_id: str) -> str:
    """A Coda project's escrow: its funders' money until milestones release or refunds
    return it."""
    return f"project:{project_id}:escrow"


def order_receivable(order_id: str) -> str:
    return f"order:{order_id}"


def user_of(account: str) -> str | None:
    """The user whose balance `account` is, if it is one (what a user may see of the ledger)."""
    found = _USER.fullmatch(account)
    return found.group(1) if found else None


@dataclass(frozen=True, slots=True)
class Balance:
    """One account's figures in one currency, as TigerBeetle keeps them.

    Pending amounts are holds: a pending debit already counts against a limit, a pending
    credit does not count until it is posted.
    """

    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    @property
    def available(self) -> int:
        """What the holder may still spend: posted credits less posted and held debits."""
        return self.credits_posted - self.debits_posted - self.debits_pending

    def booked(self, debits: int, credits: int, *, pending: bool) -> Balance:
        if pending:
            return Balance(
                self.debits_pending + debits,
                self.debits_posted,
                self.credits_pending + credits,
                self.credits_posted,
            )
        return Balance(
            self.debits_pending,
            self.debits_posted + debits,
            self.credits_pending,
            self.credits_posted + credits,
        )

    def hold_posted(self, debits: int, credits: int) -> Balance:
        return Balance(
            self.debits_pending - debits,
            self.debits_posted + debits,
            self.credits_pending - credits,
            self.credits_posted + credits,
        )

    def hold_voided(self, debits: int, credits: int) -> Balance:
        return Balance(
            self.debits_pending - debits,
            self.debits_posted,
            self.credits_pending - credits,
            self.credits_posted,
        )

    def breaks(self, flags: AccountFlags) -> bool:
        """Whether these figures are beyond what the flags allow."""
        if flags.debits_must_not_exceed_credits:
            if self.debits_posted + self.debits_pending > self.credits_posted:
                return True
        if flags.credits_must_not_exceed_debits:
            if self.credits_posted + self.credits_pending > self.debits_posted:
                return True
        return False


ZERO = Balance()
