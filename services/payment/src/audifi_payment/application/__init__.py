"""Payment's eventsourcing application: one method per command, grouped by sub-domain.

One Application (one event store) over the aggregates in `domain/`; each command group is a
class over `PaymentCore`: the ledger, split rules, billing (tiers, subscriptions), orders and
settlement (charges booked with what they pay for), Coda projects' escrow. `Payments`
(payments.py) drives them from Stripe through the `Stripe` port.
`bootstrap` builds it, on PostgreSQL or in memory.
"""

from __future__ import annotations

from audifi_payment.application.escrow import EscrowCommands
from audifi_payment.application.settlement import Settled, SettlementCommands
from audifi_payment.application.stripe_links import StripeLinkCommands


class PaymentApplication(EscrowCommands, SettlementCommands, StripeLinkCommands):
    """Stripe checkouts and subscriptions, the double-entry ledger, splits, orders; each
    command group (ledger, splits, billing, orders) is a class under `SettlementCommands`,
    which books charges with what they pay for; `EscrowCommands` books Coda projects'
    escrow; `StripeLinkCommands` keeps users' Stripe customers and Connect accounts."""


__all__ = ["PaymentApplication", "Settled"]
