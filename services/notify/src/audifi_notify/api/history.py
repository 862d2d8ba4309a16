"""`GET /notifications`: a user's own e-mail history; an admin's view of everyone's."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated
from uuid import UUID

import asyncpg
import msgspec
from audifi_kit.http import DB_POOL_STATE_KEY, Forbidden, Identity, ValidationFailed
from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from audifi_notify.projections.history import TABLE

MAX_LIMIT = 100


class InvalidCursor(ValidationFailed):
    default_message = "The cursor is not one this endpoint gave out"


class NotYourNotifications(Forbidden):
    default_message = "Only an admin may read another account's notifications"


class NotificationView(msgspec.Struct, rename="camel"):
    id: UUID
    account_id: str
    template: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class NotificationPage(msgspec.Struct, rename="camel"):
    items: list[NotificationView]
    next_cursor: str | None


def _cursor(created_at: datetime, notification_id: UUID) -> str:
    raw = f"{created_at.isoformat()}|{notification_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _position(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, _, notification_id = raw.partition("|")
        return datetime.fromisoformat(created_at), UUID(notification_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None


class NotificationController(Controller):
    path = "/notifications"

    @get("/")
    async def list_notifications(
        self,
        state: State,
        identity: NamedDependency[Identity],
        account_id: Annotated[str | None, QueryParameter(name="accountId")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = 20,
        cursor: Annotated[str | None, QueryParameter()] = None,
    ) -> NotificationPage:
        if not identity.has_any("admin"):
            if account_id is not None and account_id != identity.user_id:
                raise NotYourNotifications()
            account_id = identity.user_id
        pool: asyncpg.Pool = state[DB_POOL_STATE_KEY]
        conditions, args = [], []
        if account_id is not None:
            args.append(account_id)
            conditions.append(f"account_id = ${len(args)}")
        if cursor is not None:
            created_at, notification_id = _position(cursor)
            args += [created_at, notification_id]
            conditions.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        args.append(limit + 1)
        rows = await pool.fetch(
            "SELECT id, account_id, template, status, attempts, last_error, created_at, sent_at "
            f"FROM {TABLE} {where} ORDER BY created_at DESC, id DESC LIMIT ${len(args)}",
            *args,
        )
        items = [NotificationView(**dict(r)) for r in rows[:limit]]
        more = len(rows) > limit
        return NotificationPage(
            items=items,
            next_cursor=_cursor(items[-1].created_at, items[-1].id) if more else None,
        )
