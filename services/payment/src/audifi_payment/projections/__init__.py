"""The payment service's read models, fed from its own notification log: the ledger's entries
and balances (set-based: the busiest log), split rules, tiers, subscriptions and orders.
Queries over them are in `audifi_payment.queries`.
"""

from __future__ import annotations

from audifi_kit.projections import Projection

from audifi_payment.projections.billing import Subscriptions, Tiers
from audifi_payment.projections.ledger import AccountBalances, LedgerEntries
from audifi_payment.projections.orders import Orders
from audifi_payment.projections.split_rules import SplitRules

PROJECTIONS: tuple[type[Projection], ...] = (
    LedgerEntries,
    AccountBalances,
    SplitRules,
    Tiers,
    Subscriptions,
    Orders,
)

__all__ = [
    "PROJECTIONS",
    "AccountBalances",
    "LedgerEntries",
    "Orders",
    "SplitRules",
    "Subscriptions",
    "Tiers",
]
