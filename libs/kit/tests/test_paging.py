"""Cursor paging (`audifi_kit.paging`): paging through a list on the real PostgreSQL visits
every item once, in order, whatever the list's size and the page's limit; every cursor the
schema's pattern allows is one the handler pages from; the limit rule is one rule."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import pytest
from audifi_kit.errors import ValidationFailed
from audifi_kit.fields import Cursor, rule_of
from audifi_kit.paging import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    PageQuery,
    Position,
    decode_cursor,
    encode_cursor,
    page_of,
)
from hypothesis import given, settings
from hypothesis import strategies as st

START = datetime(2026, 1, 1, tzinfo=UTC)
# Few distinct times, so that many items share one and the id must break the tie.
items_strategy = st.lists(
    st.tuples(st.integers(0, 5).map(lambda s: START + timedelta(seconds=s)), st.uuids()),
    max_size=40,
    unique_by=lambda item: item[1],
)


async def _page_through(url: str, items, limit: int, newest_first: bool) -> list[Position]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TEMP TABLE listed (id uuid PRIMARY KEY, at timestamptz)")
        await conn.executemany(
            "INSERT INTO listed (id, at) VALUES ($1, $2)", [(item_id, at) for at, item_id in items]
        )
        seen: list[Position] = []
        cursor = None
        for _ in range(len(items) + 2):
            query = PageQuery.parse(limit, cursor, newest_first=newest_first)
            condition, order, args = query.sql("at", "id", first_arg=1)
            rows = await conn.fetch(f"SELECT id, at FROM listed WHERE {condition} {order}", *args)
            page = page_of(rows, query, lambda r: Position(r["at"], r["id"]))
            assert len(page.items) <= limit
            seen += [Position(r["at"], r["id"]) for r in page.items]
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor
        raise AssertionError(f"paging did not end: {len(seen)} seen of {len(items)}")
    finally:
        await conn.close()


@settings(max_examples=60, deadline=None)
@given(items=items_strategy, limit=st.integers(1, 12), newest_first=st.booleans())
def test_paging_visits_every_item_once_in_order(
    postgres_url: str, items, limit: int, newest_first: bool
) -> None:
    seen = asyncio.run(_page_through(postgres_url, items, limit, newest_first))
    expected = sorted((Position(at, item_id) for at, item_id in items), reverse=newest_first)
    assert seen == expected


@settings(max_examples=200, deadline=None)
@given(st.from_regex(rule_of(Cursor).pattern))
def test_every_cursor_the_pattern_allows_names_a_position(cursor: str) -> None:
    position = decode_cursor(cursor)
    assert position.at.tzinfo is not None and isinstance(position.id, UUID)
    assert encode_cursor(position) == cursor


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(6000, 1, 1), timezones=st.just(UTC)
    ),
    st.uuids(),
)
def test_a_cursor_names_its_item_exactly(at: datetime, item_id: UUID) -> None:
    cursor = encode_cursor(Position(at, item_id))
    assert len(cursor) == 32
    assert decode_cursor(cursor) == Position(at, item_id)


@pytest.mark.parametrize(
    "cursor",
    ["nope", "A" * 31, "A" * 33, "/" * 32, "_" * 32, "0b7f3a52-3c44-4d0e-9d7c-5a0e8f1e2c11"],
)
def test_a_cursor_the_api_did_not_give_out_is_refused_naming_cursor(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        PageQuery.parse(DEFAULT_LIMIT, cursor)
    assert refused.value.status_code == 400
    assert [f["field"] for f in refused.value.details["fields"]] == ["cursor"]


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1])
def test_one_limit_rule(limit: int) -> None:
    with pytest.raises(ValidationFailed) as refused:
        PageQuery.parse(limit, None)
    assert [f["field"] for f in refused.value.details["fields"]] == ["limit"]
    assert PageQuery.parse(MAX_LIMIT, None).limit == MAX_LIMIT
    assert PageQuery.parse(1, None).limit == 1
