"""Bucket's artist locker: artist profiles, the content items artists upload, and who may open
them.

An **artist profile** (name, bio, avatar) is one per artist account; its id is the account's
id, so `/artists/{id}` names the artist everywhere. A **content item** is a file (audio, video
or image, its kind sniffed from its bytes) with a title, a description, free metadata, an
`unlockDate` and, optionally, the subscription tier it needs at least.

**Unlocked for a fan** = its unlock date has passed AND (it needs no tier OR the fan has an
active subscription to its artist at that tier or above). A tier's rank is its price per year
(a monthly price times 12), compared within one currency: "above" is a dearer tier of the
same artist. Before its unlock date an item is hidden from every fan; after it, an item the
fan's subscription does not reach is listed as locked (what it is, never its file). The
artist and admins see and open everything.

nft learns subscriptions and tiers from payment's events and keeps them as its own facts
(`SubscriptionSeen`, `TierSeen`): a subscription's state changes only with a newer fact, so a
late redelivery of an older one never reopens access; a canceled subscription stays canceled.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from audifi_kit.errors import Forbidden, NotFound
from audifi_kit.fields import MultiLineText, SingleLineText, check
from audifi_kit.values import invalid, moment
from eventsourcing.domain import Aggregate, event

MEDIA_TYPES = ("audio", "video", "image")
ACTIVE = "active"
PAST_DUE = "past_due"
CANCELED = "canceled"

ArtistName = SingleLineText(120, min_length=1, description="The artist's name")
Bio = MultiLineText(5000, description="About the artist")
AvatarUrl = SingleLineText(2048, min_length=1, description="An https link to the avatar")
ItemTitle = SingleLineText(200, min_length=1, description="The item's title")
ItemDescription = MultiLineText(5000, description="What the item is")


class ArtistNotFound(NotFound):
    code = "ARTIST_NOT_FOUND"
    default_message = "No artist profile under this id"


class ContentNotFound(NotFound):
    code = "CONTENT_NOT_FOUND"
    default_message = "Content not found"


class NotYourLocker(Forbidden):
    default_message = "Only the artist owning this profile (or an admin) may do this"


def https_url(value: Any, *, field: str) -> str:
    text = str(check(AvatarUrl, value, field=field))
    if not text.startswith("https://"):
        raise invalid(field, "Expected an https URL")
    return text


class ArtistProfile(Aggregate):
    """One per artist account: its id is the account's."""

    @event("Created")
    def __init__(
        self, *, name: str, bio: str, avatar_url: str | None, by: str, at: datetime
    ) -> None:
        self.name = name
        self.bio = bio
        self.avatar_url = avatar_url
        self.created_at = at
        self.updated_at = at

    @classmethod
    def create(
        cls, *, account_id: UUID, name: Any, bio: Any, avatar_url: Any, by: str, at: datetime
    ) -> ArtistProfile:
        return cls._create(
            cls.Created,
            id=account_id,
            name=str(check(ArtistName, name, field="name")),
            bio=str(check(Bio, bio or "", field="bio")),
            avatar_url=None if avatar_url is None else https_url(avatar_url, field="avatarUrl"),
            by=by,
            at=at,
        )

    def edit(self, *, name: Any, bio: Any, avatar_url: Any, by: str, at: datetime) -> None:
        """Changes what is given (None: unchanged; an empty avatarUrl removes it)."""
        changes = {
            "name": self.name if name is None else str(check(ArtistName, name, field="name")),
            "bio": self.bio if bio is None else str(check(Bio, bio, field="bio")),
            "avatar_url": (
                self.avatar_url
                if avatar_url is None
                else (https_url(avatar_url, field="avatarUrl") if avatar_url else None)
            ),
        }
        if changes != {"name": self.name, "bio": self.bio, "avatar_url": self.avatar_url}:
            self._edited(**changes, by=by, at=at)

    @event("Edited")
    def _edited(self, name: str, bio: str, avatar_url: str | None, by: str, at: datetime) -> None:
        self.name = name
        self.bio = bio
        self.avatar_url = avatar_url
        self.updated_at = at


class ContentItem(Aggregate):
    @event("Uploaded")
    def __init__(
        self,
        *,
        artist_id: str,
        media_type: str,
        title: str,
        description: str,
        file: dict[str, Any],
        unlock_date: datetime,
        min_tier_id: str | None,
        metadata: dict[str, Any],
        by: str,
        at: datetime,
    ) -> None:
        self.artist_id = artist_id
        self.media_type = media_type
        self.title = title
        self.description = description
        self.file = file
        self.unlock_date = unlock_date
        self.min_tier_id = min_tier_id
        self.metadata = metadata
        self.uploaded_at = at
        self.updated_at = at
        self.announced = False

    @classmethod
    def upload(
        cls,
        *,
        item_id: UUID,
        artist_id: str,
        media_type: str,
        title: Any,
        description: Any,
        file: dict[str, Any],
        unlock_date: Any,
        min_tier_id: str | None,
        metadata: dict[str, Any] | None,
        by: str,
        at: datetime,
    ) -> ContentItem:
        if media_type not in MEDIA_TYPES:
            raise invalid("type", f"Expected one of {', '.join(MEDIA_TYPES)}")
        return cls._create(
            cls.Uploaded,
            id=item_id,
            artist_id=artist_id,
            media_type=media_type,
            title=str(check(ItemTitle, title, field="title")),
            description=str(check(ItemDescription, description or "", field="description")),
            file=file,
            unlock_date=moment(unlock_date, field="unlockDate"),
            min_tier_id=min_tier_id,
            metadata=metadata or {},
            by=by,
            at=at,
        )

    def announce(self, *, subscribers: list[str], artist_name: str, now: datetime) -> bool:
        """Its unlock date reached: the subscribers it opens to are told, once (False when
        it is not due or was told already)."""
        if self.announced or now < self.unlock_date:
            return False
        self._unlocked(
            subscribers=subscribers,
            at=now,
            facts={
                "artist_id": self.artist_id,
                "artist_name": artist_name,
                "title": self.title,
                "media_type": self.media_type,
            },
        )
        return True

    @event("Unlocked")
    def _unlocked(self, subscribers: list[str], at: datetime, facts: dict[str, Any]) -> None:
        self.announced = True

    def reschedule(self, *, unlock_date: Any, by: str, at: datetime) -> None:
        when = moment(unlock_date, field="unlockDate")
        if when != self.unlock_date:
            self._rescheduled(unlock_date=when, by=by, at=at)

    @event("Rescheduled")
    def _rescheduled(self, unlock_date: datetime, by: str, at: datetime) -> None:
        self.unlock_date = unlock_date
        self.updated_at = at

    def describe(
        self,
        *,
        title: Any,
        description: Any,
        metadata: dict[str, Any] | None,
        min_tier_id: str | None,
        clear_tier: bool,
        by: str,
        at: datetime,
    ) -> None:
        """Changes what is given (None: unchanged; `clear_tier`: no tier needed any more)."""
        changes = {
            "title": self.title if title is None else str(check(ItemTitle, title, field="title")),
            "description": (
                self.description
                if description is None
                else str(check(ItemDescription, description, field="description"))
            ),
            "metadata": self.metadata if metadata is None else metadata,
            "min_tier_id": None if clear_tier else (min_tier_id or self.min_tier_id),
        }
        current = {
            "title": self.title,
            "description": self.description,
            "metadata": self.metadata,
            "min_tier_id": self.min_tier_id,
        }
        if changes != current:
            self._described(**changes, by=by, at=at)

    @event("Described")
    def _described(
        self,
        title: str,
        description: str,
        metadata: dict[str, Any],
        min_tier_id: str | None,
        by: str,
        at: datetime,
    ) -> None:
        self.title = title
        self.description = description
        self.metadata = metadata
        self.min_tier_id = min_tier_id
        self.updated_at = at


# -- the rule, in Python -------------------------------------------------------------------
# The same rule as projections/locker.py's `VISIBLE` and `OPENS` in SQL, over the same facts
# (tested against them): a locker read from a cache of those facts decides here, at read time,
# with the current clock.


class TierRank(NamedTuple):
    """What ranks a tier: its currency and price per year."""

    currency: str
    annual_price: int


def shown(unlock_date: datetime, now: datetime) -> bool:
    """Whether fans see the item at all: its unlock date passed."""
    return unlock_date <= now


def opens(
    unlock_date: datetime,
    min_tier_id: str | None,
    needed: TierRank | None,
    fan_tiers: Iterable[TierRank],
    now: datetime,
) -> bool:
    """Whether the item opens to a fan: its unlock date passed, and it needs no tier or one of
    the fan's active subscriptions to its artist (`fan_tiers`: their tiers' ranks) is of the
    needed tier's currency and as dear a year or dearer. `needed`: the rank of the tier it
    needs, None when nft does not know that tier (then nothing opens it)."""
    if unlock_date > now:
        return False
    if min_tier_id is None:
        return True
    if needed is None:
        return False
    return any(
        mine.currency == needed.currency and mine.annual_price >= needed.annual_price
        for mine in fan_tiers
    )


# -- what nft knows of payment's subscriptions and tiers ------------------------------------

_SEEN = uuid.UUID("c1d5b6f2-8a47-4e0b-9d3a-2f6e1a7b5c90")


def subscription_seen_id(subscription_id: str) -> UUID:
    return uuid.uuid5(_SEEN, f"subscription/{subscription_id}")


def tier_seen_id(tier_id: str) -> UUID:
    return uuid.uuid5(_SEEN, f"tier/{tier_id}")


def annual_price(price_cents: int, interval: str) -> int:
    """A tier's rank: its price per year."""
    return price_cents * 12 if interval == "month" else price_cents


class SubscriptionSeen(Aggregate):
    """A fan's subscription to an artist's tier, as payment last told it."""

    @event("Seen")
    def __init__(
        self,
        *,
        subscription_id: str,
        fan_id: str,
        artist_id: str,
        tier_id: str,
        status: str,
        as_of: datetime,
    ) -> None:
        self.subscription_id = subscription_id
        self.fan_id = fan_id
        self.artist_id = artist_id
        self.tier_id = tier_id
        self.status = status
        self.as_of = as_of

    @classmethod
    def first(
        cls,
        *,
        subscription_id: str,
        fan_id: str,
        artist_id: str,
        tier_id: str,
        status: str,
        as_of: datetime,
    ) -> SubscriptionSeen:
        return cls._create(
            cls.Seen,
            id=subscription_seen_id(subscription_id),
            subscription_id=subscription_id,
            fan_id=fan_id,
            artist_id=artist_id,
            tier_id=tier_id,
            status=status,
            as_of=as_of,
        )

    def told(self, *, status: str, tier_id: str, as_of: datetime) -> bool:
        """A newer fact changes the state; an older one, or anything after the end, does
        not. True when it changed."""
        if self.status == CANCELED or as_of <= self.as_of:
            return False
        if status == self.status and tier_id == self.tier_id:
            return False
        self._changed(status=status, tier_id=tier_id, as_of=as_of)
        return True

    @event("Changed")
    def _changed(self, status: str, tier_id: str, as_of: datetime) -> None:
        self.status = status
        self.tier_id = tier_id
        self.as_of = as_of


class TierSeen(Aggregate):
    """An artist's subscription tier, as payment defined it: its rank and currency."""

    @event("Seen")
    def __init__(
        self,
        *,
        tier_id: str,
        artist_id: str,
        name: str,
        currency: str,
        annual_price: int,
        at: datetime,
    ) -> None:
        self.tier_id = tier_id
        self.artist_id = artist_id
        self.name = name
        self.currency = currency
        self.annual_price = annual_price
        self.archived = False

    @classmethod
    def defined(
        cls,
        *,
        tier_id: str,
        artist_id: str,
        name: str,
        currency: str,
        price_cents: int,
        interval: str,
        at: datetime,
    ) -> TierSeen:
        return cls._create(
            cls.Seen,
            id=tier_seen_id(tier_id),
            tier_id=tier_id,
            artist_id=artist_id,
            name=name,
            currency=currency,
            annual_price=annual_price(price_cents, interval),
            at=at,
        )

    def archive(self, at: datetime) -> None:
        if not self.archived:
            self._archived(at=at)

    @event("Archived")
    def _archived(self, at: datetime) -> None:
        self.archived = True
