"""`locker`: Bucket's content items as lockers list them, and what nft knows of payment's
subscriptions and tiers, so that one query answers what a fan may open.

Tables (schema `locker`): `items` (one per content item: its artist, type, title,
description, metadata, unlock date, the tier it needs, its file), `tiers` (rank: the price per
year, and currency) and `subscriptions` (fan, artist, tier, status). `VISIBLE` and `OPENS`
are the access rule in SQL (domain/locker.py says it in words); every read of the locker uses
them, so a list and a download can never disagree. A cache of the lockers
(adapters/locker_cache.py) keeps the facts `LOCKER_FACTS` and `FAN_TIERS` read, never a
decision: the same rule decides in Python (`domain.locker.opens`) at read time. The handlers
tell which artists' lockers and which fans' subscriptions changed; once the page's transaction
committed, `Locker.committed` hands that to the listeners (the cache's invalidation).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
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


# What a cache of the lockers keeps (the raw facts, never a decision): an artist's items, newest
# first, each with the name and rank of the tier it needs (NULL when it needs none or nft does
# not know that tier), and a fan's active subscriptions to an artist: their tiers' ranks (a
# subscription to a tier nft does not know ranks nothing, as in `OPENS`).
LOCKER_FACTS = (
    "SELECT i.id, i.artist_id, i.media_type, i.title, i.description, i.metadata::text AS metadata,"
    " i.unlock_date, i.min_tier_id, t.name AS tier_name, t.currency AS tier_currency,"
    " t.annual_price AS tier_annual_price, i.file_key, i.mime, i.size, i.uploaded_at,"
    f" i.updated_at FROM {ITEMS} i LEFT JOIN {TIERS} t ON t.id = i.min_tier_id"
    " WHERE i.artist_id = $1 ORDER BY i.uploaded_at DESC, i.id DESC"
)
FAN_TIERS = (
    f"SELECT mine.currency, mine.annual_price FROM {SUBSCRIPTIONS} s"
    f" JOIN {TIERS} mine ON mine.id = s.tier_id"
    " WHERE s.fan_id = $1 AND s.artist_id = $2 AND s.status = 'active'"
)
ITEM_ARTIST = f"SELECT artist_id FROM {ITEMS} WHERE id = $1"

# What changed, as the handlers tell it: an artist's locker (its items, or its tiers), or a
# fan's subscriptions to an artist. A listener hears them after the commit.
ChangeListener = Callable[[set[str], set[tuple[str, str]]], Awaitable[None]]

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

    def __init__(self) -> None:
        self.listeners: list[ChangeListener] = []

    def listen(self, listener: ChangeListener) -> None:
        """`listener(artists, fans)` hears, after each commit, the artists whose lockers
        changed and the (artist, fan) pairs whose subscriptions did."""
        self.listeners.append(listener)

    async def committed(self, changes: list[Hashable]) -> None:
        artists: set[str] = set()
        fans: set[tuple[str, str]] = set()
        for change in changes:
            match change:
                case ("artist", artist_id):
                    artists.add(artist_id)
                case ("fan", artist_id, fan_id):
                    fans.add((artist_id, fan_id))
        for listener in self.listeners:
            await listener(artists, fans)

    def _artist(self, conn: asyncpg.Connection, artist_id: str | None) -> None:
        if artist_id is not None:
            self.changed(conn, ("artist", artist_id))

    def _fan(self, conn: asyncpg.Connection, row: Any) -> None:
        if row is not None:
            self.changed(conn, ("fan", row["artist_id"], row["fan_id"]))

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
        self._artist(conn, e.artist_id)

    @handles(ContentItem.Rescheduled)
    async def rescheduled(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        artist_id = await conn.fetchval(
            "UPDATE items SET unlock_date = $2, updated_at = $3 WHERE id = $1 RETURNING artist_id",
            e.originator_id,
            e.unlock_date,
            e.at,
        )
        self._artist(conn, artist_id)

    @handles(ContentItem.Described)
    async def described(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        artist_id = await conn.fetchval(
            "UPDATE items SET title = $2, description = $3, metadata = $4, min_tier_id = $5, "
            "updated_at = $6 WHERE id = $1 RETURNING artist_id",
            e.originator_id,
            e.title,
            e.description,
            msgspec.json.encode(e.metadata).decode(),
            e.min_tier_id,
            e.at,
        )
        self._artist(conn, artist_id)

    @handles(ContentItem.Unlocked)
    async def unlocked(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        # Whether subscribers were told is the clock's business, not a locker's: no change to
        # tell (an item opens with the time, which every read applies).
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
        self._artist(conn, e.artist_id)

    @handles(TierSeen.Archived)
    async def tier_archived(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        artist_id = await conn.fetchval(
            "UPDATE tiers SET archived = true WHERE seen_id = $1 RETURNING artist_id",
            e.originator_id,
        )
        self._artist(conn, artist_id)

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
        self.changed(conn, ("fan", e.artist_id, e.fan_id))

    @handles(SubscriptionSeen.Changed)
    async def subscription_changed(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        seen = await conn.fetchrow(
            "UPDATE subscriptions SET status = $2, tier_id = $3 WHERE seen_id = $1 "
            "RETURNING artist_id, fan_id",
            e.originator_id,
            e.status,
            e.tier_id,
        )
        self._fan(conn, seen)
