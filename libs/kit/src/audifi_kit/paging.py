"""Cursor paging for every list endpoint: one cursor, one limit rule, one answer shape.

A list is ordered by (time, id), newest or oldest first, and answered as
`{"items": [...], "nextCursor": ...}` (ARCHITECTURE.md §9). `nextCursor` is the position of
the page's last item, and the next page is every item strictly past it: keyset paging, so an
item written meanwhile neither repeats nor pushes another off a page.

The cursor is opaque to clients: base64url of 24 bytes, the time in microseconds since 1970
(8 bytes, big-endian) then the item's id (16 bytes). Its pattern allows exactly the texts that
name a position: 32 base64url characters whose first 7 bits are zero (a 57-bit time reaches
the year 6537, inside what `datetime` holds). So whatever the schema lets through, the handler
pages from; anything else is a 400 VALIDATION_ERROR naming `cursor`.

Web-free: `audifi_kit.http.paging` declares the query parameters from these rules.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Generic, TypeVar
from uuid import UUID

import msgspec

from audifi_kit.fields import Cursor, check

DEFAULT_LIMIT = 50
MAX_LIMIT = 200

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_TIME_BITS = 57

Limit = Annotated[
    int,
    msgspec.Meta(
        ge=1,
        le=MAX_LIMIT,
        description=f"How many items a page holds: 1 to {MAX_LIMIT}, {DEFAULT_LIMIT} if unsaid",
    ),
]

T = TypeVar("T")


@dataclass(frozen=True, order=True)
class Position:
    """Where an item stands in a list ordered by (time, id)."""

    at: datetime
    id: UUID


def encode_cursor(position: Position) -> str:
    micros = (position.at - _EPOCH) // _MICROSECOND
    if not 0 <= micros < 1 << _TIME_BITS:
        raise ValueError(f"{position.at} is outside what a cursor can name")
    raw = micros.to_bytes(8, "big") + position.id.bytes
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_cursor(cursor: str, *, field: str = "cursor") -> Position:
    """The position `cursor` names; ValidationFailed naming `field` when the rule refuses it
    (every text the rule allows names one)."""
    check(Cursor, cursor, field=field)
    raw = base64.urlsafe_b64decode(cursor)
    micros = int.from_bytes(raw[:8], "big")
    return Position(_EPOCH + micros * _MICROSECOND, UUID(bytes=raw[8:]))


@dataclass(frozen=True)
class PageQuery:
    """One page's request: how many items, and past which position (None: from the start)."""

    limit: int = DEFAULT_LIMIT
    after: Position | None = None
    newest_first: bool = False

    @classmethod
    def parse(cls, limit: int, cursor: str | None, *, newest_first: bool = False) -> PageQuery:
        check(Limit, limit, field="limit")
        after = decode_cursor(cursor) if cursor is not None else None
        return cls(limit=limit, after=after, newest_first=newest_first)

    def sql(self, time_column: str, id_column: str, first_arg: int) -> tuple[str, str, list]:
        """(condition, `ORDER BY ... LIMIT ...` clause, their arguments) for a keyset query
        whose placeholders continue at `$first_arg`; the condition is "TRUE" on the first
        page. One row more than the limit is fetched: whether it exists is whether a next
        page does."""
        key = f"({time_column}, {id_column})"
        direction = "DESC" if self.newest_first else "ASC"
        args: list = []
        condition = "TRUE"
        if self.after is not None:
            args += [self.after.at, self.after.id]
            past = "<" if self.newest_first else ">"
            condition = f"{key} {past} (${first_arg}, ${first_arg + 1})"
        args.append(self.limit + 1)
        order = (
            f"ORDER BY {time_column} {direction}, {id_column} {direction} "
            f"LIMIT ${first_arg + len(args) - 1}"
        )
        return condition, order, args


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def page_of(rows: Sequence[T], query: PageQuery, position_of: Callable[[T], Position]) -> Page[T]:
    """The page from the rows a `PageQuery.sql` query returned (up to limit + 1 of them)."""
    items = list(rows[: query.limit])
    more = len(rows) > query.limit
    return Page(items, encode_cursor(position_of(items[-1])) if more else None)


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Cursor",
    "Limit",
    "Page",
    "PageQuery",
    "Position",
    "decode_cursor",
    "encode_cursor",
    "page_of",
]
