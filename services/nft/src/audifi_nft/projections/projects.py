"""`projects`: Coda projects and their investments as clients list them, and for the project
clock (the deadlines due).

Tables (schema `projects`):

- `projects`: one row per project, its status and money figures kept in step with its
  events (`raised`, `released`, `refunded`, `revenue`, `shared`, `claimed`, and `funders`:
  the accounts with a paid investment); the catalogue (`GET /projects`) pages it newest first.
- `investments`: one row per investment, its project, funder, amount and state (pending,
  paid, lapsed), what it was refunded and has claimed; `GET /user/investments` pages a
  funder's, `GET /investments/{id}` finds its project here.

A project funded on chain also has its escrow's place (`chain_project_id`) and how far the
chain followed it (`chain_released`, `chain_cancelled`): `ESCROW_WORK` finds the projects the
escrow operator still has to act for (escrow.py).

A single investment's claimable payout and the milestones are read from the project itself,
never from here: what a funder may claim is exact.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from audifi_kit.projections import Projection, handles

from audifi_nft.domain.project import (
    CANCELLED,
    FUNDING,
    IN_PROGRESS,
    LAPSED,
    PAID,
    PENDING,
    RELEASED,
    Project,
)

PROJECTS = "projects.projects"
INVESTMENTS = "projects.investments"
# Chain projects whose escrow lacks a step (`Project.escrow_work` decides which).
ESCROW_WORK = (
    f"SELECT id FROM {PROJECTS} WHERE funding_method = 'chain' AND ("
    f" (chain_project_id IS NULL AND status = '{FUNDING}') OR (chain_project_id IS NOT NULL"
    " AND NOT chain_cancelled AND (chain_released < milestones_released"
    f" OR status = '{CANCELLED}'))) ORDER BY created_at, id LIMIT $1"
)


class Projects(Projection):
    name = "projects"
    version = 2

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE projects ("
            " id uuid PRIMARY KEY,"
            " artist_id text NOT NULL,"
            " title text NOT NULL,"
            " description text NOT NULL,"
            " status text NOT NULL,"
            " currency text NOT NULL,"
            " funding_goal bigint NOT NULL,"
            " raised bigint NOT NULL DEFAULT 0,"
            " released bigint NOT NULL DEFAULT 0,"
            " refunded bigint NOT NULL DEFAULT 0,"
            " revenue bigint NOT NULL DEFAULT 0,"
            " shared bigint NOT NULL DEFAULT 0,"
            " claimed bigint NOT NULL DEFAULT 0,"
            " funders integer NOT NULL DEFAULT 0,"
            " share_bps integer NOT NULL,"
            " milestones integer NOT NULL,"
            " milestones_released integer NOT NULL DEFAULT 0,"
            " funding_deadline timestamptz NOT NULL,"
            " release_date timestamptz,"
            " created_at timestamptz NOT NULL,"
            " ended_reason text,"
            " funding_method text NOT NULL DEFAULT 'card',"
            " onchain_reference text,"
            " chain_project_id bigint,"
            " chain_released integer NOT NULL DEFAULT 0,"
            " chain_cancelled boolean NOT NULL DEFAULT false)"
        )
        await conn.execute(
            "CREATE INDEX projects_escrow_work ON projects (created_at, id) "
            "WHERE funding_method = 'chain' AND NOT chain_cancelled"
        )
        await conn.execute("CREATE INDEX projects_catalogue ON projects (created_at, id)")
        await conn.execute("CREATE INDEX projects_by_status ON projects (status, created_at, id)")
        await conn.execute(
            f"CREATE INDEX projects_due ON projects (funding_deadline) WHERE status = '{FUNDING}'"
        )
        await conn.execute(
            "CREATE TABLE investments ("
            " id uuid PRIMARY KEY,"
            " project_id uuid NOT NULL,"
            " account_id text NOT NULL,"
            " amount bigint NOT NULL,"
            " currency text NOT NULL,"
            " state text NOT NULL,"
            " created_at timestamptz NOT NULL,"
            " expires_at timestamptz,"  # a chain investment is never held
            " paid_at timestamptz,"
            " refunded bigint NOT NULL DEFAULT 0,"
            " claimed bigint NOT NULL DEFAULT 0)"
        )
        await conn.execute(
            "CREATE INDEX investments_of ON investments (account_id, created_at, id)"
        )

    @handles(Project.Created)
    async def created(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO projects (id, artist_id, title, description, status, currency, "
            "funding_goal, share_bps, milestones, funding_deadline, release_date, created_at, "
            "funding_method) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
            "ON CONFLICT (id) DO NOTHING",
            e.originator_id,
            e.artist_id,
            e.title,
            e.description,
            FUNDING,
            e.currency,
            e.funding_goal,
            e.share_bps,
            len(e.milestones),
            e.funding_deadline,
            e.release_date,
            e.at,
            getattr(e, "funding_method", "card"),
        )

    @handles(Project.InvestmentReserved)
    async def reserved(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "INSERT INTO investments (id, project_id, account_id, amount, currency, state, "
            "created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT (id) DO NOTHING",
            UUID(e.investment_id),
            e.originator_id,
            e.account_id,
            e.amount,
            e.facts["currency"],
            PENDING,
            e.at,
            e.expires_at,
        )

    @handles(Project.Invested)
    async def invested(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        # A funder is counted once, at their first paid investment in the project.
        await conn.execute(
            "UPDATE projects SET raised = raised + $2, funders = funders + (NOT EXISTS ("
            " SELECT 1 FROM investments WHERE project_id = $1 AND account_id = $3"
            f" AND state = '{PAID}'))::int WHERE id = $1",
            e.originator_id,
            e.facts["amount"],
            e.facts["account_id"],
        )
        await conn.execute(
            "UPDATE investments SET state = $2, paid_at = $3 WHERE id = $1",
            UUID(e.investment_id),
            PAID,
            e.at,
        )

    @handles(Project.InvestmentLapsed)
    async def lapsed(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE investments SET state = $2 WHERE id = $1", UUID(e.investment_id), LAPSED
        )

    @handles(Project.GoalReached)
    async def goal_reached(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE projects SET status = $2 WHERE id = $1", e.originator_id, IN_PROGRESS
        )

    @handles(Project.Cancelled)
    async def cancelled(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        refunds = e.refunds
        if refunds:
            await conn.execute(
                "UPDATE investments i SET refunded = r.amount "
                "FROM unnest($1::uuid[], $2::bigint[]) AS r(id, amount) WHERE i.id = r.id",
                [UUID(i) for i in refunds],
                [r["amount"] for r in refunds.values()],
            )
        if e.lapsed:
            await conn.execute(
                "UPDATE investments SET state = $2 WHERE id = ANY($1::uuid[])",
                [UUID(i) for i in e.lapsed],
                LAPSED,
            )
        await conn.execute(
            "UPDATE projects SET status = $2, ended_reason = $3, refunded = $4 WHERE id = $1",
            e.originator_id,
            CANCELLED,
            e.reason,
            sum(r["amount"] for r in refunds.values()),
        )

    @handles(Project.MilestoneApproved)
    async def approved(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE projects SET released = released + $2, milestones_released = $3 WHERE id = $1",
            e.originator_id,
            e.amount,
            e.index + 1,
        )

    @handles(Project.Finalized)
    async def finalized(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE projects SET status = $2 WHERE id = $1", e.originator_id, RELEASED
        )

    @handles(Project.RevenueBooked)
    async def revenue_booked(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE projects SET revenue = revenue + $2, shared = shared + $3 WHERE id = $1",
            e.originator_id,
            e.amount,
            e.funders_share,
        )

    @handles(Project.PayoutClaimed)
    async def claimed(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE investments SET claimed = claimed + $2 WHERE id = $1",
            UUID(e.investment_id),
            e.amount,
        )
        await conn.execute(
            "UPDATE projects SET claimed = claimed + $2 WHERE id = $1", e.originator_id, e.amount
        )

    # -- on chain --------------------------------------------------------------------------

    @handles(Project.EscrowCreated)
    async def escrow_created(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE projects SET chain_project_id = $2, onchain_reference = $3 WHERE id = $1",
            e.originator_id,
            e.chain_project_id,
            f"eip155:{e.chain_id}:{e.escrow}/{e.chain_project_id}",  # as the project says
        )

    @handles(Project.MilestoneReleasedOnChain)
    async def released_on_chain(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE projects SET chain_released = $2 WHERE id = $1", e.originator_id, e.index + 1
        )

    @handles(Project.EscrowCancelled)
    async def cancelled_on_chain(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE projects SET chain_cancelled = true WHERE id = $1", e.originator_id
        )

    @handles(Project.ChainInvested)
    async def chain_invested(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        # One investment per funder address, growing with each of its fundings.
        await conn.execute(
            "UPDATE projects SET raised = raised + $2, funders = funders + (NOT EXISTS ("
            " SELECT 1 FROM investments WHERE project_id = $1 AND account_id = $3"
            f" AND state = '{PAID}'))::int WHERE id = $1",
            e.originator_id,
            e.amount,
            e.account_id,
        )
        await conn.execute(
            "INSERT INTO investments (id, project_id, account_id, amount, currency, state, "
            "created_at, paid_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) "
            "ON CONFLICT (id) DO UPDATE SET amount = investments.amount + EXCLUDED.amount, "
            "state = EXCLUDED.state, paid_at = EXCLUDED.paid_at",
            UUID(e.investment_id),
            e.originator_id,
            e.account_id,
            e.amount,
            e.facts["currency"],
            PAID,
            e.at,
        )

    @handles(Project.ChainInvestmentReverted)
    async def chain_investment_reverted(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await conn.execute(
            "UPDATE investments SET amount = amount - $2, "
            f"state = CASE WHEN amount = $2 THEN '{LAPSED}' ELSE state END WHERE id = $1",
            UUID(e.investment_id),
            e.amount,
        )
        await conn.execute(
            "UPDATE projects SET raised = raised - $2, "
            f"status = CASE WHEN status = '{IN_PROGRESS}' THEN '{FUNDING}' ELSE status END "
            "WHERE id = $1",
            e.originator_id,
            e.amount,
        )

    @handles(Project.ChainRefunded)
    async def chain_refunded(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await self._refund(conn, e, e.amount)

    @handles(Project.ChainRefundReverted)
    async def chain_refund_reverted(self, conn: asyncpg.Connection, e: Any, _n: object) -> None:
        await self._refund(conn, e, -e.amount)

    @staticmethod
    async def _refund(conn: asyncpg.Connection, e: Any, amount: int) -> None:
        await conn.execute(
            "UPDATE investments SET refunded = refunded + $2 WHERE id = $1",
            UUID(e.investment_id),
            amount,
        )
        await conn.execute(
            "UPDATE projects SET refunded = refunded + $2 WHERE id = $1", e.originator_id, amount
        )
