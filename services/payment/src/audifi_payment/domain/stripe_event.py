"""A Stripe event once handled: webhooks are deduplicated on Stripe's event id.

Stripe delivers at least once (and anyone holding an old signed payload may replay it within
the tolerance): the receipt, saved after the event's effects, makes a second delivery a 200
that changes nothing. The effects themselves are idempotent too (deterministic ledger ids, an
order paid once), so a crash between the effects and the receipt costs a second, empty pass.
"""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

_NAMESPACE = uuid5(NAMESPACE_URL, "https://audifi.dev/payment/stripe-events")


def receipt_id(event_id: str) -> UUID:
    return uuid5(_NAMESPACE, event_id)


class StripeEventReceipt(Aggregate):
    @staticmethod
    def create_id(event_id: str) -> UUID:
        return receipt_id(event_id)

    @event("Handled")
    def __init__(self, event_id: str, event_type: str, outcome: str, handled_at: datetime) -> None:
        self.event_id = event_id
        self.event_type = event_type
        self.outcome = outcome
        self.handled_at = handled_at
