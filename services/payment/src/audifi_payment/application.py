"""The payment service's eventsourcing application: one method per command."""

from audifi_kit.eventstore import ServiceApplication


class PaymentApplication(ServiceApplication):
    """Stripe checkouts and subscriptions, the double-entry ledger, splits, payouts, refunds,
    disputes.
    """
