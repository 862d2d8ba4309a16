"""Billing's read models: `tiers.tiers` (what fans can subscribe to) and
`subscriptions.subscriptions` (each subscription as Stripe last left it).

A subscription's row follows its aggregate's events in order: each event states the status it
moved to, so the row never needs the aggregate's rules, only its facts. A period end an event
leaves out (None) keeps the one known, as the aggregate does.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from audifi_kit.projections import Projection, handles

from audifi_payment.domain.subscription import (
    ACTIVE,
    CANCELED,
    INCOMPLETE,
    INCOMPLETE_EXPIRED,
    PAST_DUE,
    Subscription,
)
from audifi_payment.domain.tier import Tier

TIERS = "tiers.tiers"
SUBSCRIPTIONS = "subscriptions.subscriptions"


class Tiers(Projection):
    name = "tiers"
    version = 1

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE tiers ("
            " id uuid PRIMARY KEY,"
            " artist_id text NOT NULL,"
            " name text NOT NULL,"
            " price_cents bigint NOT NULL,"
            " currency text NOT NULL,"
            " interval text NOT NULL,"
            " archived boolean NOT NULL DEFAULT false,"
            " created_at timestamptz NOT NULL,"
            " archived_at timestamptz)"
        )
        await conn.execute("CREATE INDEX tiers_of_artist ON tiers (artist_id, created_at, id)")
        await conn.execute("CREATE INDEX tiers_by_created ON tiers (created_at, id)")

    @handles(Tier.Defined)
    async def defined(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO tiers (id, artist_id, name, price_cents, currency, interval, "
            "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            e.originator_id,
            e.artist_id,
            e.name,
            e.price_cents,
            e.currency,
            e.interval,
            e.defined_at,
        )

    @handles(Tier.Archived)
    async def archived(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE tiers SET archived = true, archived_at = $2 WHERE id = $1",
            e.originator_id,
            e.archived_at,
        )


class Subscriptions(Projection):
    name = "subscriptions"
    version = 1

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE subscriptions ("
            " id uuid PRIMARY KEY,"
            " fan_id text NOT NULL,"
            " artist_id text NOT NULL,"
            " tier_id uuid NOT NULL,"
            " price_cents bigint NOT NULL,"
            " currency text NOT NULL,"
            " interval text NOT NULL,"
            " status text NOT NULL,"
            " current_period_end timestamptz,"
            " cancel_at_period_end boolean NOT NULL DEFAULT false,"
            " opened_at timestamptz NOT NULL,"
            " started_at timestamptz,"
            " canceled_at timestamptz,"
            " stripe_subscription_id text,"
            " stripe_customer_id text)"
        )
        await conn.execute(
            "CREATE INDEX subscriptions_of_fan ON subscriptions (fan_id, opened_at, id)"
        )
        await conn.execute(
            "CREATE INDEX subscriptions_to_artist ON subscriptions (artist_id, opened_at, id)"
        )

    @handles(Subscription.Opened)
    async def opened(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO subscriptions (id, fan_id, artist_id, tier_id, price_cents, currency, "
            "interval, status, opened_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            e.originator_id,
            e.fan_id,
            e.artist_id,
            e.tier_id,
            e.price_cents,
            e.currency,
            e.interval,
            INCOMPLETE,
            e.opened_at,
        )

    @handles(Subscription.StripeAttached)
    async def stripe_attached(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE subscriptions SET stripe_subscription_id = $2, stripe_customer_id = $3 "
            "WHERE id = $1",
            e.originator_id,
            e.stripe_subscription_id,
            e.stripe_customer_id,
        )

    @handles(Subscription.Started)
    async def started(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE subscriptions SET status = $2, started_at = $3, "
            "current_period_end = coalesce($4, current_period_end) WHERE id = $1",
            e.originator_id,
            ACTIVE,
            e.started_at,
            e.current_period_end,
        )

    @handles(Subscription.Renewed)
    async def renewed(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await self._billed(conn, e, ACTIVE)

    @handles(Subscription.FellPastDue)
    async def fell_past_due(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await self._billed(conn, e, PAST_DUE)

    @handles(Subscription.CancellationScheduled)
    async def cancellation_scheduled(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await self._cancel_at_period_end(conn, e.originator_id, True)

    @handles(Subscription.CancellationWithdrawn)
    async def cancellation_withdrawn(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await self._cancel_at_period_end(conn, e.originator_id, False)

    @handles(Subscription.Canceled)
    async def canceled(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE subscriptions SET status = $2, canceled_at = $3, "
            "current_period_end = coalesce($4, current_period_end) WHERE id = $1",
            e.originator_id,
            CANCELED,
            e.canceled_at,
            e.current_period_end,
        )

    @handles(Subscription.Expired)
    async def expired(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE subscriptions SET status = $2 WHERE id = $1",
            e.originator_id,
            INCOMPLETE_EXPIRED,
        )

    @staticmethod
    async def _billed(conn: asyncpg.Connection, e: Any, status: str) -> None:
        await conn.execute(
            "UPDATE subscriptions SET status = $2, "
            "current_period_end = coalesce($3, current_period_end) WHERE id = $1",
            e.originator_id,
            status,
            e.current_period_end,
        )

    @staticmethod
    async def _cancel_at_period_end(
        conn: asyncpg.Connection, subscription_id: Any, on: bool
    ) -> None:
        await conn.execute(
            "UPDATE subscriptions SET cancel_at_period_end = $2 WHERE id = $1",
            subscription_id,
            on,
        )
