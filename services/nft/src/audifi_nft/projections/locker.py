"""`locker`: Bucket's content items as lockers list them, and what nft knows of payment's
subscriptions and tiers, so that one query answers what a fan may open.

Tables (schema `locker`): `items` (one per content item: its artist, type, title,
description, metadata, unlock date, the tier it needs, its file), `tiers` (rank: the price per
year, and currency) and `subscriptions` (fan, artist, tier, status). `VISIBLE` and `OPENS`
are the access rule in SQL (domain/locker.py says it in words); every read of the locker uses
them, so a list and a download can never disagree.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
from audifi_kit.projections import Projection, handles

from audifi_nft.domain.locker import ContentItem, SubscriptionSeen, TierSeen

ITEMS = "locker.items"
TIERS = "locker.tiers"
SUBSCRIPTIONS = "locker.subscriptions"

# For a viewer $viewer at $now, over items aliased `i`: whether the item is shown at all (its
# unlock date passed), and whether it opens (it needs no tier, or the viewer has an active
# subscription to its artist at that tier or above: as dear a year, in the same currency).
VISIBLE = "i.unlock_date <= $now"
OPENS = (
    "(i.unlock_date <= $now AND (i.min_tier_id IS NULL OR EXISTS ("
    f" SELECT 1 FROM {SUBSCRIPTIONS} s"
    f" JOIN {TIERS} mine ON mine.id = s.tier_id"
    f" JOIN {TIERS} needed ON needed.id = i.min_tier_id"
    " WHERE s.fan_id = $viewer AND s.artist_id = i.artist_id AND s.status = 'active'"
    " AND mine.currency = needed.currency AND mine.annual_price >= needed.annual_price)))"
)


def access_sql(sql: str, *, now: int, viewer: int) -> str:
    """`sql` with the rule's `$now` and `$viewer` placed at the query's argument numbers."""
    return sql.replace("$now", f"${now}").replace("$viewer", f"${viewer}")


# The fans an item opens to once unlocked (`i` the item): the artist's active subscribers at
# its tier or above, or all of them when it needs none.
AUDIENCE = (
    f"SELECT DISTINCT s.fan_id FROM {SUBSCRIPTIONS} s"
    f" JOIN {TIERS} mine ON mine.id = s.tier_id"
    f" LEFT JOIN {TIERS} needed ON needed.id = i.min_tier_id"
    " WHERE s.artist_id = i.artist_id AND s.status = 'active' AND (i.min_tier_id IS NULL OR"
    " (needed.id IS NOT NULL AND mine.currency = needed.currency"
    " AND mine.annual_price >= needed.annual_price))"
)
# Items whose unlock date came and whose subscribers were not told yet, with that audience.
DUE_UNLOCKS = (
    f"SELECT i.id, ARRAY({AUDIENCE} ORDER BY s.fan_id) AS subscribers FROM {ITEMS} i"
    " WHERE NOT i.announced AND i.unlock_date <= $1 ORDER BY i.unlock_date LIMIT 100"
)


class Locker(Projection):
    name = "locker"
    version = 1

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE items ("
            " id uuid PRIMARY KEY,"
            " artist_id text NOT NULL,"
            " media_type text NOT NULL,"
            " title text NOT NULL,"
            " description text NOT NULL,"
            " metadata jsonb NOT NULL,"
            " unlock_date timestamptz NOT NULL,"
            " min_tier_id text,"
            " file_key text NOT NULL,"
            " mime text NOT NULL,"
            " size bigint NOT NULL,"
            " sha256 text NOT NULL,"
            " uploaded_at timestamptz NOT NULL,"
            " updated_at timestamptz NOT NULL,"
            " announced boolean NOT NULL DEFAULT false)"
        )
        await conn.execute("CREATE INDEX items_of ON items (artist_id, unlock_date DESC, id)")
        await conn.execute("CREATE INDEX items_due ON items (unlock_date) WHERE NOT announced")
        await conn.execute(
            "CREATE TABLE tiers ("
            " seen_id uuid PRIMARY KEY,"  # nft's record of it
            " id text UNIQUE NOT NULL,"  # payment's tier id
            " artist_id text NOT NULL,"
            " name text NOT NULL,"
            " currency text NOT NULL,"
            " annual_price bigint NOT NULL,"
            " archived boolean NOT NULL DEFAULT false)"
        )
        await conn.execute(
            "CREATE TABLE subscriptions ("
            " seen_id uuid PRIMARY KEY,"
            " id text NOT NULL,"
            " fan_id text NOT NULL,"
            " artist_id text NOT NULL,"
            " tier_id text NOT NULL,"
            " status text NOT NULL)"
        )
        await conn.execute("CREATE INDEX subscriptions_of ON subscriptions (fan_id, artist_id)")

    @handles(ContentItem.Uploaded)
    async def uploaded(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO items (id, artist_id, media_type, title, description, metadata, "
            "unlock_date, min_tier_id, file_key, mime, size, sha256, uploaded_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) "
            "ON CONFLICT (id) DO NOTHING",
            e.originator_id,
            e.artist_id,
            e.media_type,
            e.title,
            e.description,
            msgspec.json.encode(e.metadata).decode(),
            e.unlock_date,
            e.min_tier_id,
            e.file["key"],
            e.file["mime"],
            e.file["size"],
            e.file["sha256"],
            e.at,
        )

    @handles(ContentItem.Rescheduled)
    async def rescheduled(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE items SET unlock_date = $2, updated_at = $3 WHERE id = $1",
            e.originator_id,
            e.unlock_date,
            e.at,
        )

    @handles(ContentItem.Described)
    async def described(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE items SET title = $2, description = $3, metadata = $4, min_tier_id = $5, "
            "updated_at = $6 WHERE id = $1",
            e.originator_id,
            e.title,
            e.description,
            msgspec.json.encode(e.metadata).decode(),
            e.min_tier_id,
            e.at,
        )

    @handles(ContentItem.Unlocked)
    async def unlocked(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute("UPDATE items SET announced = true WHERE id = $1", e.originator_id)

    @handles(TierSeen.Seen)
    async def tier(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO tiers (seen_id, id, artist_id, name, currency, annual_price) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (seen_id) DO NOTHING",
            e.originator_id,
            e.tier_id,
            e.artist_id,
            e.name,
            e.currency,
            e.annual_price,
        )

    @handles(TierSeen.Archived)
    async def tier_archived(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute("UPDATE tiers SET archived = true WHERE seen_id = $1", e.originator_id)

    @handles(SubscriptionSeen.Seen)
    async def subscription(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO subscriptions (seen_id, id, fan_id, artist_id, tier_id, status) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (seen_id) DO NOTHING",
            e.originator_id,
            e.subscription_id,
            e.fan_id,
            e.artist_id,
            e.tier_id,
            e.status,
        )

    @handles(SubscriptionSeen.Changed)
    async def subscription_changed(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE subscriptions SET status = $2, tier_id = $3 WHERE seen_id = $1",
            e.originator_id,
            e.status,
            e.tier_id,
        )
