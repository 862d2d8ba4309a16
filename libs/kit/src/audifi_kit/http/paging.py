"""The query parameters of a paged list, from the rules in `audifi_kit.paging`.

    async def list_things(self, limit: PageLimit = DEFAULT_LIMIT, cursor: PageCursor = None):
        query = PageQuery.parse(limit, cursor)

The schema shows both rules (1..200; the cursor's pattern) and the decoder refuses a value
outside them with 400 VALIDATION_ERROR naming the parameter.
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

from audifi_kit.fields import rule_of
from audifi_kit.http.fields import query_parameter
from audifi_kit.paging import DEFAULT_LIMIT, MAX_LIMIT, Cursor, Limit, PageQuery

_limit = rule_of(Limit)
PageLimit = Annotated[
    int, QueryParameter(ge=_limit.ge, le=_limit.le, description=_limit.description)
]
PageCursor = Annotated[str | None, query_parameter(Cursor)]

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "PageCursor", "PageLimit", "PageQuery"]
