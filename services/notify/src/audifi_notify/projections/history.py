"""Every notification's story so far: what users and admins list, and what the sender sends.

Schema `notification_history`, table `notifications`; no address and no link, only ids, the
template and the delivery state (the seed's `email_notifications`, without the personal data).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from audifi_kit.projections import Projection, handles

from audifi_notify.domain import Notification, Status

TABLE = "notification_history.notifications"


class NotificationHistory(Projection):
    name = "notification_history"
    version = 1

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE notifications ("
            "id uuid PRIMARY KEY, account_id text NOT NULL, template text NOT NULL, "
            "status text NOT NULL, attempts integer NOT NULL DEFAULT 0, last_error text, "
            "created_at timestamptz NOT NULL, sent_at timestamptz, "
            "next_attempt_at timestamptz, updated_at timestamptz NOT NULL)"
        )
        await conn.execute(
            "CREATE INDEX notifications_by_account ON notifications (account_id, created_at, id)"
        )
        await conn.execute(
            "CREATE INDEX notifications_by_created ON notifications (created_at, id)"
        )
        await conn.execute(
            "CREATE INDEX notifications_due ON notifications (next_attempt_at) "
            "WHERE status = 'pending'"
        )

    @handles(Notification.Queued)
    async def queued(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO notifications (id, account_id, template, status, created_at, "
            "next_attempt_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5, $5) "
            "ON CONFLICT DO NOTHING",
            e.originator_id,
            e.account_id,
            str(e.template),
            Status.PENDING.value,
            e.queued_at,
        )

    @handles(Notification.Sent)
    async def sent(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE notifications SET status = $2, attempts = $3, sent_at = $4, "
            "next_attempt_at = NULL, updated_at = $4 WHERE id = $1",
            e.originator_id,
            Status.SENT.value,
            e.attempt,
            e.sent_at,
        )

    @handles(Notification.DeliveryFailed)
    async def delivery_failed(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE notifications SET attempts = $2, last_error = $3, next_attempt_at = $4, "
            "updated_at = $5 WHERE id = $1",
            e.originator_id,
            e.attempt,
            e.error,
            e.retry_at,
            e.failed_at,
        )

    @handles(Notification.Failed)
    async def failed(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await self._closed(conn, e.originator_id, Status.FAILED, e.reason, e.failed_at)

    @handles(Notification.Abandoned)
    async def abandoned(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await self._closed(conn, e.originator_id, Status.ABANDONED, e.reason, e.abandoned_at)

    async def _closed(
        self, conn: asyncpg.Connection, notification_id: Any, status: Status, reason: str, at: Any
    ) -> None:
        await conn.execute(
            "UPDATE notifications SET status = $2, last_error = $3, next_attempt_at = NULL, "
            "updated_at = $4 WHERE id = $1",
            notification_id,
            status.value,
            reason,
            at,
        )
