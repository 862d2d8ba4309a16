"""A Subscription: a fan paying an artist's tier every month or year, as Stripe bills it.

Stripe owns the billing; this aggregate follows it. It is driven by Stripe's object state,
never by the order webhooks arrive in: each webhook's handler reads the Stripe subscription as
it is now and hands that snapshot to `sync`, which moves the aggregate to what Stripe says and
records the domain events that describe the change:

- `Started`: the first time it is active (checkout paid);
- `Renewed`: a further period was paid (active with a paid invoice, either for a later period
  than the one known or for the period that had fallen past due);
- `FellPastDue`: a renewal's payment failed (Stripe retries; the fan can fix the card);
- `Canceled`: it ended (at period end after a cancellation, or after the last failed retry);
- `Expired`: its first payment never came (Stripe's `incomplete_expired`, or `abandon` when
  its checkout expired before Stripe created anything).

A snapshot older than what is known changes nothing: a period end before the known one, a
return to `incomplete` after the start, an invoice known as paid reported unpaid, or anything
once canceled or expired (Stripe never reopens those). A snapshot that says canceled is always
believed: Stripe never leaves that state.

`SubscriptionBook` (one per fan, id derived from the fan) lists the fan's subscriptions and
names the current one per artist. A fan holds at most one live (not canceled or expired)
subscription per artist: opening one saves the book in the same transaction, so two
concurrent openings conflict on the book's version instead of both succeeding. (An index
aggregate rather than uuid5 ids per (fan, artist, generation): the book also answers "the
fan's subscriptions" without a scan, which `GET /subscriptions` and a cancel without an id
need.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from audifi_kit.errors import Conflict, Forbidden, NotFound
from eventsourcing.domain import Aggregate, event

from audifi_payment.domain.values import invalid

NAMESPACE = UUID("8d3b6f0a-2e51-4c7a-b9e4-71f2a6c0d845")

INCOMPLETE = "incomplete"
INCOMPLETE_EXPIRED = "incomplete_expired"
ACTIVE = "active"
PAST_DUE = "past_due"
CANCELED = "canceled"
CLOSED = (CANCELED, INCOMPLETE_EXPIRED)

# Stripe's eight statuses, read as the access they grant: a trial is active, and `unpaid` or
# `paused` (no payment is being collected) count as past due.
STRIPE_STATUSES = {
    "incomplete": INCOMPLETE,
    "incomplete_expired": INCOMPLETE_EXPIRED,
    "trialing": ACTIVE,
    "active": ACTIVE,
    "past_due": PAST_DUE,
    "unpaid": PAST_DUE,
    "paused": PAST_DUE,
    "canceled": CANCELED,
}


class SubscriptionNotFound(NotFound):
    code = "SUBSCRIPTION_NOT_FOUND"
    default_message = "No such subscription"


class SubscriptionNotYours(Forbidden):
    default_message = "This subscription belongs to another fan"


class SubscriptionClosed(Conflict):
    default_message = "The subscription has ended"


class SubscriptionNotStarted(Conflict):
    default_message = "The subscription has not started: its first payment is awaited"


class AlreadySubscribed(Conflict):
    code = "ALREADY_SUBSCRIBED"
    default_message = "The fan already holds a subscription to this artist"


class OtherStripeSubscription(Conflict):
    default_message = "The subscription is bound to another Stripe subscription"


@dataclass(frozen=True, slots=True)
class StripeSubscriptionState:
    """A Stripe subscription as read from Stripe (not as a webhook's payload once had it)."""

    stripe_subscription_id: str
    stripe_customer_id: str | None
    status: str  # Stripe's name
    current_period_end: datetime | None
    cancel_at_period_end: bool
    latest_invoice_id: str | None
    latest_invoice_paid: bool
    canceled_at: datetime | None = None


class Subscription(Aggregate):
    @event("Opened")
    def __init__(
        self,
        id: UUID,
        fan_id: str,
        artist_id: str,
        tier_id: UUID,
        price_cents: int,
        currency: str,
        interval: str,
        opened_at: datetime,
        tier_name: str = "",
    ) -> None:
        self.fan_id = fan_id
        self.tier_name = tier_name
        self.artist_id = artist_id
        self.tier_id = tier_id
        self.price_cents = price_cents
        self.currency = currency
        self.interval = interval
        self.opened_at = opened_at
        self.status = INCOMPLETE
        self.stripe_subscription_id: str | None = None
        self.stripe_customer_id: str | None = None
        self.current_period_end: datetime | None = None
        self.cancel_at_period_end = False
        self.latest_invoice_id: str | None = None
        self.latest_invoice_paid = False
        self.started_at: datetime | None = None
        self.canceled_at: datetime | None = None

    @property
    def facts(self) -> dict[str, Any]:
        """What every lifecycle event carries, so the outbox can publish it alone."""
        return {
            "fan_id": self.fan_id,
            "artist_id": self.artist_id,
            "tier_id": str(self.tier_id),
            "price_cents": self.price_cents,
            "currency": self.currency,
            "interval": self.interval,
            "tier_name": self.tier_name,
            "started": self.started_at is not None,
        }

    @property
    def closed(self) -> bool:
        return self.status in CLOSED

    @property
    def live(self) -> bool:
        """Started and not ended: the fan is (or, past due, was until now) paying for it."""
        return self.status in (ACTIVE, PAST_DUE)

    def may_be_seen_by(self, fan_id: str, *, admin: bool) -> None:
        if not admin and fan_id != self.fan_id:
            raise SubscriptionNotYours()

    # --- commands -----------------------------------------------------------------------

    def attach(self, stripe_subscription_id: str, stripe_customer_id: str | None) -> None:
        """Binds the Stripe subscription the checkout created; once bound, never another."""
        if self.stripe_subscription_id is None:
            self._stripe_attached(
                stripe_subscription_id=stripe_subscription_id,
                stripe_customer_id=stripe_customer_id,
            )
        elif self.stripe_subscription_id != stripe_subscription_id:
            raise OtherStripeSubscription(details={"subscriptionId": str(self.id)})

    def sync(self, state: StripeSubscriptionState, at: datetime) -> None:
        """Moves to what Stripe says (see the module's docstring); `at` is when it was read."""
        target = STRIPE_STATUSES.get(state.status)
        if target is None:
            raise invalid("status", f"Not a Stripe subscription status: {state.status!r}")
        self.attach(state.stripe_subscription_id, state.stripe_customer_id)
        if self.closed:
            return
        if target == CANCELED:
            self._canceled(
                facts=self.facts,
                canceled_at=state.canceled_at or at,
                current_period_end=state.current_period_end,
            )
            return
        if target == INCOMPLETE_EXPIRED:
            if self.status == INCOMPLETE:
                self._expired(expired_at=at)
            return
        if self._is_stale(state, target):
            return
        invoice = {
            "current_period_end": state.current_period_end,
            "invoice_id": state.latest_invoice_id,
            "invoice_paid": state.latest_invoice_paid,
        }
        later_period = self._later_period(state.current_period_end)
        if target == ACTIVE:
            if self.status == INCOMPLETE:
                self._started(started_at=at, facts=self.facts, **invoice)
            elif state.latest_invoice_paid and (later_period or self.status == PAST_DUE):
                self._renewed(renewed_at=at, facts=self.facts, **invoice)
        elif target == PAST_DUE:
            if self.status == INCOMPLETE:  # its first period was paid; we missed hearing it
                self._started(started_at=at, facts=self.facts, **invoice)
            if self.status != PAST_DUE or later_period:
                self._fell_past_due(fell_past_due_at=at, facts=self.facts, **invoice)
        if state.cancel_at_period_end != self.cancel_at_period_end and self.status != INCOMPLETE:
            if state.cancel_at_period_end:
                self._cancellation_scheduled(scheduled_at=at)
            else:
                self._cancellation_withdrawn(withdrawn_at=at)

    def abandon(self, at: datetime) -> bool:
        """Its checkout expired unpaid, so no Stripe subscription will come: the fan's slot
        for the artist is free again. False when Stripe has one already (Stripe decides) or
        it is not awaiting its first payment."""
        if self.status != INCOMPLETE or self.stripe_subscription_id is not None:
            return False
        self._expired(expired_at=at)
        return True

    def request_cancel(self, at: datetime) -> None:
        """The fan asks to end it at the end of the paid period (Stripe is told next)."""
        if self.closed:
            raise SubscriptionClosed(details={"subscriptionId": str(self.id)})
        if self.status == INCOMPLETE:
            raise SubscriptionNotStarted(details={"subscriptionId": str(self.id)})
        if not self.cancel_at_period_end:
            self._cancellation_scheduled(scheduled_at=at)

    def _later_period(self, period_end: datetime | None) -> bool:
        known = self.current_period_end
        return period_end is not None and (known is None or period_end > known)

    def _is_stale(self, state: StripeSubscriptionState, target: str) -> bool:
        known = self.current_period_end
        if known is not None and state.current_period_end is not None:
            if state.current_period_end < known:
                return True
        if target == INCOMPLETE and self.status != INCOMPLETE:
            return True
        return (
            state.latest_invoice_id is not None
            and state.latest_invoice_id == self.latest_invoice_id
            and self.latest_invoice_paid
            and not state.latest_invoice_paid
        )

    # --- events -------------------------------------------------------------------------

    @event("StripeAttached")
    def _stripe_attached(self, stripe_subscription_id: str, stripe_customer_id: str | None) -> None:
        self.stripe_subscription_id = stripe_subscription_id
        self.stripe_customer_id = stripe_customer_id

    def _billed(
        self, current_period_end: datetime | None, invoice_id: str | None, invoice_paid: bool
    ) -> None:
        if current_period_end is not None:
            self.current_period_end = current_period_end
        if invoice_id is not None:
            self.latest_invoice_id = invoice_id
            self.latest_invoice_paid = invoice_paid

    @event("Started")
    def _started(
        self,
        facts: dict[str, Any],
        started_at: datetime,
        current_period_end: datetime | None,
        invoice_id: str | None,
        invoice_paid: bool,
    ) -> None:
        self.status = ACTIVE
        self.started_at = started_at
        self._billed(current_period_end, invoice_id, invoice_paid)

    @event("Renewed")
    def _renewed(
        self,
        facts: dict[str, Any],
        renewed_at: datetime,
        current_period_end: datetime | None,
        invoice_id: str | None,
        invoice_paid: bool,
    ) -> None:
        self.status = ACTIVE
        self._billed(current_period_end, invoice_id, invoice_paid)

    @event("FellPastDue")
    def _fell_past_due(
        self,
        facts: dict[str, Any],
        fell_past_due_at: datetime,
        current_period_end: datetime | None,
        invoice_id: str | None,
        invoice_paid: bool,
    ) -> None:
        self.status = PAST_DUE
        self._billed(current_period_end, invoice_id, invoice_paid)

    @event("CancellationScheduled")
    def _cancellation_scheduled(self, scheduled_at: datetime) -> None:
        self.cancel_at_period_end = True

    @event("CancellationWithdrawn")
    def _cancellation_withdrawn(self, withdrawn_at: datetime) -> None:
        self.cancel_at_period_end = False

    @event("Canceled")
    def _canceled(
        self, facts: dict[str, Any], canceled_at: datetime, current_period_end: datetime | None
    ) -> None:
        self.status = CANCELED
        self.canceled_at = canceled_at
        if current_period_end is not None:
            self.current_period_end = current_period_end

    @event("Expired")
    def _expired(self, expired_at: datetime) -> None:
        self.status = INCOMPLETE_EXPIRED


class SubscriptionBook(Aggregate):
    """A fan's subscriptions, oldest first, and the current one per artist."""

    @staticmethod
    def create_id(fan_id: str) -> UUID:
        return subscription_book_id(fan_id)

    @event("Opened")
    def __init__(self, fan_id: str) -> None:
        self.fan_id = fan_id
        self.subscription_ids: list[UUID] = []
        self.current: dict[str, UUID] = {}  # artist id -> the latest subscription to them

    def enter(self, subscription_id: UUID, artist_id: str) -> None:
        self._entered(subscription_id=subscription_id, artist_id=artist_id)

    @event("Entered")
    def _entered(self, subscription_id: UUID, artist_id: str) -> None:
        self.subscription_ids.append(subscription_id)
        self.current[artist_id] = subscription_id


def subscription_book_id(fan_id: str) -> UUID:
    return uuid5(NAMESPACE, f"subscription-book:{fan_id}")
