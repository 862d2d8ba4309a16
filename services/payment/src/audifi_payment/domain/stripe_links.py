"""What payment remembers of a user at Stripe: their customer, their Connect account.

One of each per user, with ids derived from the user's id, so two concurrent first checkouts
cannot create two links (the second save is refused and reads the first).

A Connect (Express) account is `pending` until Stripe reports it onboarded (`completed`:
details submitted and charges enabled) or disabled for good (`rejected`), from `account.updated`
read back from Stripe, never from the event's copy.
"""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from audifi_kit.errors import NotFound
from eventsourcing.domain import Aggregate, event

_NAMESPACE = uuid5(NAMESPACE_URL, "https://audifi.dev/payment/stripe-links")

PENDING = "pending"
COMPLETED = "completed"
REJECTED = "rejected"


class ConnectAccountNotFound(NotFound):
    code = "CONNECT_ACCOUNT_NOT_FOUND"
    default_message = "No Stripe Connect account for this user"


def customer_link_id(user_id: str) -> UUID:
    return uuid5(_NAMESPACE, f"customer|{user_id}")


def connect_account_id(user_id: str) -> UUID:
    return uuid5(_NAMESPACE, f"connect|{user_id}")


class CustomerLink(Aggregate):
    @staticmethod
    def create_id(user_id: str) -> UUID:
        return customer_link_id(user_id)

    @event("Linked")
    def __init__(self, user_id: str, customer_id: str, linked_at: datetime) -> None:
        self.user_id = user_id
        self.customer_id = customer_id
        self.linked_at = linked_at


class ConnectAccount(Aggregate):
    @staticmethod
    def create_id(user_id: str) -> UUID:
        return connect_account_id(user_id)

    @event("Created")
    def __init__(self, user_id: str, stripe_account_id: str, created_at: datetime) -> None:
        self.user_id = user_id
        self.stripe_account_id = stripe_account_id
        self.status = PENDING
        self.created_at = created_at
        self.updated_at = created_at

    def observe(
        self,
        *,
        details_submitted: bool,
        charges_enabled: bool,
        disabled_reason: str | None,
        at: datetime,
    ) -> None:
        """Moves to what Stripe says now; the same state again changes nothing."""
        if disabled_reason and disabled_reason.startswith("rejected"):
            status = REJECTED
        elif details_submitted and charges_enabled:
            status = COMPLETED
        else:
            status = PENDING
        if status != self.status:
            self._status_changed(status=status, reason=disabled_reason, changed_at=at)

    @event("StatusChanged")
    def _status_changed(self, status: str, reason: str | None, changed_at: datetime) -> None:
        self.status = status
        self.updated_at = changed_at
