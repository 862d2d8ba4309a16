"""`split_rules.rules`: each owner's split rules as they stand (the seed's `split_rules`).

A removed rule's row is deleted: `GET /split-rules` never shows it, and its id answers 404.
Recipients are kept as JSON, `[{"recipient_id": ..., "basis_points": ...}]`, in the rule's
order.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from audifi_kit.projections import Projection, handles

from audifi_payment.domain.split_rule import SplitRule

RULES = "split_rules.rules"


def _recipients_json(recipients: Any) -> str:
    return json.dumps([{"recipient_id": r, "basis_points": bps} for r, bps in recipients])


class SplitRules(Projection):
    name = "split_rules"
    version = 1

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE rules ("
            " id uuid PRIMARY KEY,"
            " owner_id text NOT NULL,"
            " name text NOT NULL,"
            " recipients jsonb NOT NULL,"
            " is_default boolean NOT NULL,"
            " created_at timestamptz NOT NULL,"
            " updated_at timestamptz NOT NULL)"
        )
        await conn.execute("CREATE INDEX rules_of_owner ON rules (owner_id, created_at, id)")

    @handles(SplitRule.Defined)
    async def defined(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO rules VALUES ($1, $2, $3, $4::jsonb, $5, $6, $6)",
            e.originator_id,
            e.owner_id,
            e.name,
            _recipients_json(e.recipients),
            e.is_default,
            e.defined_at,
        )

    @handles(SplitRule.Revised)
    async def revised(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE rules SET name = $2, recipients = $3::jsonb, is_default = $4, "
            "updated_at = $5 WHERE id = $1",
            e.originator_id,
            e.name,
            _recipients_json(e.recipients),
            e.is_default,
            e.revised_at,
        )

    @handles(SplitRule.DefaultPassedOn)
    async def default_passed_on(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE rules SET is_default = false, updated_at = $2 WHERE id = $1",
            e.originator_id,
            e.at,
        )

    @handles(SplitRule.Removed)
    async def removed(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute("DELETE FROM rules WHERE id = $1", e.originator_id)
