"""`GET /notifications`: a user's own e-mail history; an admin's view of everyone's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import asyncpg
import msgspec
from audifi_kit.app_state import DB_POOL_STATE_KEY
from audifi_kit.errors import Forbidden
from audifi_kit.fields import UuidText
from audifi_kit.http import Identity
from audifi_kit.http.fields import query_parameter
from audifi_kit.http.paging import DEFAULT_LIMIT, PageCursor, PageLimit, PageQuery
from audifi_kit.paging import Position, page_of
from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency

from audifi_notify.projections.history import TABLE


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
        limit: PageLimit = DEFAULT_LIMIT,
        cursor: PageCursor = None,
    ) -> NotificationPage:
        query = PageQuery.parse(limit, cursor, newest_first=True)
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
        keyset, order, more_args = query.sql("created_at", "id", first_arg=len(args) + 1)
        conditions.append(keyset)
        rows = await pool.fetch(
            "SELECT id, account_id, template, status, attempts, last_error, created_at, sent_at "
            f"FROM {TABLE} WHERE {' AND '.join(conditions)} {order}",
            *args,
            *more_args,
        )
        page = page_of(rows, query, lambda r: Position(r["created_at"], r["id"]))
        return NotificationPage(
            items=[NotificationView(**dict(r)) for r in page.items], next_cursor=page.next_cursor
        )
