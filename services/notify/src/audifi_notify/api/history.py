"""`GET /notifications`: a user's own e-mail history; an admin's view of everyone's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import asyncpg
import msgspec
from audifi_kit.http import DB_POOL_STATE_KEY, Forbidden, Identity
from audifi_kit.http.fields import (
    TimeCursor,
    UuidText,
    query_parameter,
    time_cursor,
    time_cursor_position,
)
from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from audifi_notify.projections.history import TABLE

MAX_LIMIT = 100


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


class NotificationController(Controller):
    path = "/notifications"

    @get("/")
    async def list_notifications(
        self,
        state: State,
        identity: NamedDependency[Identity],
        # Named as the query key: a validation error names the argument, not an alias.
        accountId: Annotated[
            str | None, query_parameter(UuidText, description="Whose history (an admin's)")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = 20,
        cursor: Annotated[str | None, query_parameter(TimeCursor)] = None,
    ) -> NotificationPage:
        # As auth writes account ids: lower case.
        account_id = str(UUID(accountId)) if accountId is not None else None
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
            created_at, notification_id = time_cursor_position(cursor)
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
            next_cursor=time_cursor(items[-1].created_at, items[-1].id) if more else None,
        )
