"""A Tier: what an artist's fans can subscribe to — a name, a price per month or per year.

A tier is archived, never deleted: subscriptions keep referring to it (and keep the price the
fan agreed to, copied when they subscribed), while nobody new may subscribe to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from audifi_kit.errors import Conflict, Forbidden, NotFound
from audifi_kit.fields import SingleLineText, check
from eventsourcing.domain import Aggregate, event

from audifi_payment.domain.values import currency_code, invalid, whole_number

TierName = SingleLineText(60, min_length=1, description="The tier's name")
MAX_PRICE_CENTS = 10**8  # one million in a two-decimal currency, per period
INTERVALS = ("month", "year")  # Stripe's recurring intervals the seeds need


class TierNotFound(NotFound):
    code = "TIER_NOT_FOUND"
    default_message = "No such tier"


class TierArchived(Conflict):
    code = "TIER_ARCHIVED"
    default_message = "The tier is archived: nobody new may subscribe to it"


class TierNotYours(Forbidden):
    default_message = "Only the tier's artist or an admin may do this"


class Tier(Aggregate):
    @classmethod
    def define(
        cls,
        *,
        tier_id: UUID,
        artist_id: str,
        name: Any,
        price_cents: Any,
        currency: Any,
        interval: Any,
        at: datetime,
        by: str,
    ) -> Tier:
        if interval not in INTERVALS:
            raise invalid("interval", "Expected month or year")
        return cls(
            id=tier_id,
            artist_id=artist_id,
            name=str(check(TierName, name, field="name")),
            price_cents=whole_number(
                price_cents, field="priceCents", minimum=1, maximum=MAX_PRICE_CENTS
            ),
            currency=currency_code(currency),
            interval=str(interval),
            defined_at=at,
            defined_by=by,
        )

    @event("Defined")
    def __init__(
        self,
        id: UUID,
        artist_id: str,
        name: str,
        price_cents: int,
        currency: str,
        interval: str,
        defined_at: datetime,
        defined_by: str,
    ) -> None:
        self.artist_id = artist_id
        self.name = name
        self.price_cents = price_cents
        self.currency = currency
        self.interval = interval
        self.defined_at = defined_at
        self.archived = False
        self.archived_at: datetime | None = None

    def may_be_changed_by(self, by: str, *, admin: bool) -> None:
        if not admin and by != self.artist_id:
            raise TierNotYours()

    def require_open(self) -> None:
        """Refuses new subscribers once archived."""
        if self.archived:
            raise TierArchived(details={"tierId": str(self.id)})

    def archive(self, *, at: datetime, by: str) -> None:
        if not self.archived:
            self._archived(archived_at=at, by=by, artist_id=self.artist_id)

    @event("Archived")
    def _archived(self, archived_at: datetime, by: str, artist_id: str | None = None) -> None:
        # `artist_id` is carried so `payment.tier.archived` is published from the event alone;
        # Archived events stored before it was added lack it (None).
        self.archived = True
        self.archived_at = archived_at
