"""Payment's eventsourcing application: one method per command, grouped by sub-domain.

One Application (one event store) over the aggregates in `domain/`; each command group is a
class over `PaymentCore`: the ledger, split rules, billing (tiers, subscriptions) and orders.
`bootstrap` builds it, on PostgreSQL or in memory.
"""

from __future__ import annotations

from audifi_payment.application.billing import BillingCommands
from audifi_payment.application.ledger import LedgerCommands
from audifi_payment.application.orders import OrderCommands
from audifi_payment.application.splits import SplitRuleCommands


class PaymentApplication(LedgerCommands, SplitRuleCommands, BillingCommands, OrderCommands):
    """Stripe checkouts and subscriptions, the double-entry ledger, splits, orders."""


__all__ = ["PaymentApplication"]
