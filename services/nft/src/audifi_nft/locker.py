"""Bucket's artist locker: the commands (mixed into NftApplication) and who may run them.

An artist (role artist, on their own account; or an admin for anyone) keeps their profile
and uploads and edits the items of their locker. Payment's word on subscriptions and tiers is
recorded here as nft's own facts (`decide_*`, saved by the consumer with its inbox row).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from audifi_kit.values import invalid

from audifi_nft.domain.locker import (
    ArtistNotFound,
    ArtistProfile,
    ContentItem,
    ContentNotFound,
    NotYourLocker,
    SubscriptionSeen,
    TierSeen,
    subscription_seen_id,
    tier_seen_id,
)


class LockerCommands:
    """Mixed into NftApplication (which provides `save` and `_find`)."""

    save: Any
    _find: Any

    # -- profiles --------------------------------------------------------------------------

    def save_profile(
        self,
        account_id: UUID,
        *,
        actor_id: str,
        actor_is_admin: bool,
        name: Any,
        bio: Any,
        avatar_url: Any,
        now: datetime,
    ) -> ArtistProfile:
        """Creates the artist's profile, or edits what is given of it."""
        if str(account_id) != actor_id and not actor_is_admin:
            raise NotYourLocker()
        profile = self._find(ArtistProfile, account_id)
        if profile is None:
            if name is None:
                raise invalid("name", "A new profile needs a name")
            profile = ArtistProfile.create(
                account_id=account_id,
                name=name,
                bio=bio,
                avatar_url=avatar_url,
                by=actor_id,
                at=now,
            )
        else:
            profile.edit(name=name, bio=bio, avatar_url=avatar_url, by=actor_id, at=now)
        self.save(profile)
        return profile

    def profile(self, account_id: UUID) -> ArtistProfile:
        found = self._find(ArtistProfile, account_id)
        if found is None:
            raise ArtistNotFound(details={"artistId": str(account_id)})
        return found

    # -- content ---------------------------------------------------------------------------

    def check_locker_owner(
        self,
        artist_id: UUID,
        *,
        actor_id: str,
        actor_is_admin: bool,
        min_tier_id: str | None = None,
    ) -> None:
        """An existing artist's locker, the caller may fill it (404, then 403), and the tier
        an item would need is one of the artist's (400)."""
        self.profile(artist_id)
        if str(artist_id) != actor_id and not actor_is_admin:
            raise NotYourLocker()
        if min_tier_id is not None:
            self._check_tier(min_tier_id, artist_id)

    def upload_content(
        self,
        item_id: UUID,
        *,
        artist_id: UUID,
        actor_id: str,
        actor_is_admin: bool,
        media_type: str,
        title: Any,
        description: Any,
        file: dict[str, Any],
        unlock_date: Any,
        min_tier_id: str | None,
        metadata: dict[str, Any] | None,
        now: datetime,
    ) -> ContentItem:
        self.check_locker_owner(
            artist_id, actor_id=actor_id, actor_is_admin=actor_is_admin, min_tier_id=min_tier_id
        )
        item = ContentItem.upload(
            item_id=item_id,
            artist_id=str(artist_id),
            media_type=media_type,
            title=title,
            description=description,
            file=file,
            unlock_date=unlock_date,
            min_tier_id=min_tier_id,
            metadata=metadata,
            by=actor_id,
            at=now,
        )
        self.save(item)
        return item

    def content(self, item_id: UUID) -> ContentItem:
        found = self._find(ContentItem, item_id)
        if found is None:
            raise ContentNotFound(details={"contentId": str(item_id)})
        return found

    def edit_content(
        self,
        item_id: UUID,
        *,
        actor_id: str,
        actor_is_admin: bool,
        unlock_date: Any,
        title: Any,
        description: Any,
        metadata: dict[str, Any] | None,
        min_tier_id: str | None,
        clear_tier: bool,
        now: datetime,
    ) -> ContentItem:
        item = self.content(item_id)
        if item.artist_id != actor_id and not actor_is_admin:
            raise NotYourLocker()
        if min_tier_id is not None:
            self._check_tier(min_tier_id, UUID(item.artist_id))
        if unlock_date is not None:
            item.reschedule(unlock_date=unlock_date, by=actor_id, at=now)
        item.describe(
            title=title,
            description=description,
            metadata=metadata,
            min_tier_id=min_tier_id,
            clear_tier=clear_tier,
            by=actor_id,
            at=now,
        )
        self.save(item)
        return item

    def announce_unlocked(self, item_id: UUID, *, subscribers: list[str], now: datetime) -> bool:
        """The item reached its unlock date: its subscribers are told (once)."""
        item = self.content(item_id)
        profile = self._find(ArtistProfile, UUID(item.artist_id))
        name = profile.name if profile is not None else ""
        if not item.announce(subscribers=subscribers, artist_name=name, now=now):
            return False
        self.save(item)
        return True

    def _check_tier(self, tier_id: str, artist_id: UUID) -> None:
        tier = self._find(TierSeen, tier_seen_id(tier_id))
        if tier is None or tier.artist_id != str(artist_id):
            raise invalid("minTierId", "Expected one of this artist's subscription tiers")

    # -- payment's word on subscriptions and tiers -----------------------------------------

    def decide_subscription(
        self,
        *,
        subscription_id: str,
        fan_id: str,
        artist_id: str,
        tier_id: str,
        status: str,
        as_of: datetime,
    ) -> SubscriptionSeen:
        """The subscription as payment told it now (unsaved; nothing pending when it changes
        nothing)."""
        seen = self._find(SubscriptionSeen, subscription_seen_id(subscription_id))
        if seen is None:
            return SubscriptionSeen.first(
                subscription_id=subscription_id,
                fan_id=fan_id,
                artist_id=artist_id,
                tier_id=tier_id,
                status=status,
                as_of=as_of,
            )
        seen.told(status=status, tier_id=tier_id, as_of=as_of)
        return seen

    def decide_tier(
        self,
        *,
        tier_id: str,
        artist_id: str,
        name: str,
        currency: str,
        price_cents: int,
        interval: str,
        at: datetime,
    ) -> TierSeen:
        seen = self._find(TierSeen, tier_seen_id(tier_id))
        if seen is not None:
            return seen  # a tier's price never changes: told again, nothing to record
        return TierSeen.defined(
            tier_id=tier_id,
            artist_id=artist_id,
            name=name,
            currency=currency,
            price_cents=price_cents,
            interval=interval,
            at=at,
        )

    def decide_tier_archived(self, *, tier_id: str, at: datetime) -> TierSeen | None:
        seen = self._find(TierSeen, tier_seen_id(tier_id))
        if seen is not None:
            seen.archive(at)
        return seen
