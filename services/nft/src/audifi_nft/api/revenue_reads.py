"""Distributions, read (the `distributions` view, projections/distributions.py): the Revenue
Pass's months (N18, N19), a wallet's claims (N20), the admin's claim status and its CSV
export (N23, N24), and a master's dividends.

- `GET /revenue-pass/distributions` (N18): the pass's distributions, newest month first,
  and `totalDistributed`.
- `GET /revenue-pass/distributions/{month}` (N19): one month; 400 naming `month` unless
  'YYYY-MM', 404 DISTRIBUTION_NOT_FOUND.
- `GET /revenue-pass/claims/{walletAddress}` (N20): the wallet's claims of pass
  distributions, newest month first. Any signed-in user may read any wallet's (DOMAIN D-N9):
  a claim is a public transaction of RevenueDistributor, and the path names a wallet, not an
  account; nothing here ties a wallet to its owner.
- `GET /revenue-pass/distributions/{month}/claims` (N23, admins): every leaf of the month
  with its claim, in leaf order, paged with the platform's cursor (it names the snapshot's
  time and the leaf's index as a UUID), with the month's totals.
- `GET /revenue-pass/distributions/{month}/claims.csv` (N24, admins): the same as
  `text/csv`, streamed, then a line per custody holder.
- `GET /masters/{masterId}/distributions`: a master's distributions (its dividends; the
  pass's own months when it is the pass), newest month first, to anyone signed in.

The pass is the master `NFT_REVENUE_PASS_MASTER` names (409 REVENUE_PASS_NOT_CONFIGURED
without one); its distributions are that master's, whichever route declared them (one per
master and month).

Amounts. `totalRevenue`, `distributionAmount`, `sources[].amount` and `totalDistributed` are
integer cents of USD. What holders are owed and claim is in the payment token's base units
(`tokenDecimals`, 6: a cent is 10,000), as decimal strings (they outgrow a JSON number's
safe range): `perPassAmount` (what one pass, a share of the collection, is owed), claim and
leaf `amount`s, `totalClaimed`, every `...BaseUnits`. Never floats.

The view follows the event store a moment behind: a distribution just declared, triggered or
claimed shows here shortly after (`GET /distributions/{id}` reads the aggregate itself).

`GET /revenue-pass/distributions` and `GET /masters/{masterId}/distributions` are bare
handlers, not a controller's: Litestar gives each controller's path its own OPTIONS handler,
so a second controller on the write controllers' paths cannot be registered. They join the
routes the write controllers made, so they are listed after them (`SHARED_PATH_READS`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from audifi_kit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from audifi_kit.fields import EvmAddress, check
from audifi_kit.http import Identity
from audifi_kit.http.paging import DEFAULT_LIMIT, PageCursor, PageLimit, PageQuery
from audifi_kit.paging import Position, page_of
from eth_utils import to_checksum_address
from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from litestar.response import Stream

from audifi_nft.api.dependencies import NftContext, is_admin, provide_nft
from audifi_nft.api.distributions import DistributionView, RevenueSource, pass_master
from audifi_nft.domain.chain_payment import CENTS_TO_BASE_UNITS, TOKEN_DECIMALS
from audifi_nft.domain.revenue import DECLARED, DistributionNotFound, month_of
from audifi_nft.projections.distributions import CUSTODY, DISTRIBUTIONS, LEAVES

CSV_CHUNK = 1000
LAST_INDEX = 2**62  # past any leaf: a cursor's UUID read as an index never overflows bigint


class ClaimStatusAdminsOnly(Forbidden):
    default_message = "Only an admin sees every holder's claim status"


class DistributionsResponse(msgspec.Struct, rename="camel", kw_only=True):
    """N18 (and a master's list): its distributions, newest month first."""

    distributions: list[DistributionView]
    total_distributed: int  # cents: the distribution amounts of the funded months
    total_distributed_base_units: str  # what those months owe holders (wallets and custody)
    token_decimals: int = TOKEN_DECIMALS


class MasterDistributionsResponse(DistributionsResponse, kw_only=True):
    master_id: UUID


class MonthDistributionResponse(msgspec.Struct, rename="camel", kw_only=True):
    """N19: the seed's fields first, then ours."""

    month: str
    total_revenue: int  # cents
    distribution_amount: int  # cents
    per_pass_amount: str  # base units one pass is owed (floor); "0" before the snapshot
    sources: list[RevenueSource]
    claimed_count: int
    id: UUID
    master_id: UUID
    title: str
    status: str  # declared, funded
    currency: str
    token_decimals: int = TOKEN_DECIMALS
    distribution_bps: int
    distribution_base_units: str
    supply: int  # passes at the snapshot
    holders: int
    funded_base_units: str  # claimable on chain by wallet holders
    custody_base_units: str  # owed to custody holders' platform balances
    remainder_base_units: str  # what rounding left in the treasury
    claimed_base_units: str
    block: int | None = None
    merkle_root: str | None = None
    chain_distribution_id: int | None = None
    funding_tx: str | None = None
    declared_at: datetime
    funded_at: datetime | None = None
    expires_at: datetime | None = None


class Claim(msgspec.Struct, rename="camel", kw_only=True):
    distribution_id: UUID
    month: str
    index: int
    amount: str  # base units
    tx_hash: str
    claimed_at: datetime  # when the platform recorded the claim's log


class UserClaimsResponse(msgspec.Struct, rename="camel", kw_only=True):
    """N20."""

    wallet_address: str  # checksummed
    total_claimed: str  # base units
    token_decimals: int = TOKEN_DECIMALS
    claim_history: list[Claim]


class ClaimLine(msgspec.Struct, rename="camel", kw_only=True):
    index: int
    account: str
    amount: str  # base units
    claimed: bool
    tx_hash: str | None = None
    claimed_at: datetime | None = None


class ClaimStatusPage(msgspec.Struct, rename="camel", kw_only=True):
    """N23: a page of the month's leaves, and the month's totals."""

    distribution_id: UUID
    month: str
    status: str
    token_decimals: int = TOKEN_DECIMALS
    leaves: int  # wallet holders, each with a leaf
    claimed_count: int
    claimed_base_units: str
    funded_base_units: str
    custody_holders: int  # paid into their platform balance, listed in the CSV
    custody_base_units: str
    items: list[ClaimLine]
    next_cursor: str | None = None


def _units(value: Any) -> str:
    return str(int(value))


def distribution_of(r: asyncpg.Record) -> DistributionView:
    return DistributionView(
        id=r["id"],
        master_id=r["master_id"],
        collection=r["collection"],
        title=r["title"],
        month=r["month"],
        status=r["status"],
        currency=r["currency"],
        total_revenue=r["total_revenue"],
        distribution_bps=r["distribution_bps"],
        distribution_amount=r["distribution_amount"],
        sources=msgspec.json.decode(r["sources"]),
        distribution_base_units=_units(r["distribution_amount"] * CENTS_TO_BASE_UNITS),
        block=r["block"],
        supply=r["supply"],
        per_share_base_units=_units(r["per_share"]),
        holders=r["holders"],
        funded_base_units=_units(r["funded"]),
        custody_base_units=_units(r["custody"]),
        remainder_base_units=_units(r["remainder"]),
        merkle_root=r["merkle_root"],
        chain_distribution_id=r["chain_distribution_id"],
        funding_tx=r["funding_tx"],
        expires_at=r["expires_at"],
        claimed_count=r["claimed_count"],
        claimed_base_units=_units(r["claimed"]),
    )


def month_of_row(r: asyncpg.Record) -> MonthDistributionResponse:
    return MonthDistributionResponse(
        month=r["month"],
        total_revenue=r["total_revenue"],
        distribution_amount=r["distribution_amount"],
        per_pass_amount=_units(r["per_share"]),
        sources=msgspec.json.decode(r["sources"], type=list[RevenueSource]),
        claimed_count=r["claimed_count"],
        id=r["id"],
        master_id=r["master_id"],
        title=r["title"],
        status=r["status"],
        currency=r["currency"],
        distribution_bps=r["distribution_bps"],
        distribution_base_units=_units(r["distribution_amount"] * CENTS_TO_BASE_UNITS),
        supply=r["supply"],
        holders=r["holders"],
        funded_base_units=_units(r["funded"]),
        custody_base_units=_units(r["custody"]),
        remainder_base_units=_units(r["remainder"]),
        claimed_base_units=_units(r["claimed"]),
        block=r["block"],
        merkle_root=r["merkle_root"],
        chain_distribution_id=r["chain_distribution_id"],
        funding_tx=r["funding_tx"],
        declared_at=r["declared_at"],
        funded_at=r["funded_at"],
        expires_at=r["expires_at"],
    )


async def distributions_of(pool: asyncpg.Pool, master_id: UUID) -> DistributionsResponse:
    rows = await pool.fetch(
        f"SELECT * FROM {DISTRIBUTIONS} WHERE master_id = $1 ORDER BY month DESC", master_id
    )
    paid = [r for r in rows if r["status"] != DECLARED]
    return DistributionsResponse(
        distributions=[distribution_of(r) for r in rows],
        total_distributed=sum(r["distribution_amount"] for r in paid),
        total_distributed_base_units=_units(sum(r["funded"] + r["custody"] for r in paid)),
    )


async def month_row(pool: asyncpg.Pool, master_id: UUID, month: str) -> asyncpg.Record:
    checked = month_of(month)
    row = await pool.fetchrow(
        f"SELECT * FROM {DISTRIBUTIONS} WHERE master_id = $1 AND month = $2", master_id, checked
    )
    if row is None:
        raise DistributionNotFound(details={"month": checked, "masterId": str(master_id)})
    return row


def _admin(identity: Identity) -> None:
    if not is_admin(identity):
        raise ClaimStatusAdminsOnly()


@get(
    "/revenue-pass/distributions",
    tags=["revenue-pass"],
    dependencies={"nft": Provide(provide_nft)},
    raises=(Conflict,),
)
async def revenue_pass_distributions(nft: NamedDependency[NftContext]) -> DistributionsResponse:
    """N18: the Revenue Pass's distributions, newest month first, and what the funded ones
    distributed."""
    return await distributions_of(nft.pool, await pass_master(nft))


@get(
    "/masters/{master_id:uuid}/distributions",
    tags=["distributions"],
    dependencies={"nft": Provide(provide_nft)},
    raises=(NotFound,),
)
async def master_distributions(
    master_id: FromPath[UUID], nft: NamedDependency[NftContext]
) -> MasterDistributionsResponse:
    """A master's distributions (its dividends), newest month first; 404 MASTER_NOT_FOUND."""
    await nft.store.call(nft.app.master, master_id)
    found = await distributions_of(nft.pool, master_id)
    return MasterDistributionsResponse(
        master_id=master_id,
        distributions=found.distributions,
        total_distributed=found.total_distributed,
        total_distributed_base_units=found.total_distributed_base_units,
    )


SHARED_PATH_READS = (revenue_pass_distributions, master_distributions)


class RevenuePassReadsController(Controller):
    path = "/revenue-pass"
    tags = ["revenue-pass"]
    dependencies = {"nft": Provide(provide_nft)}

    @get("/distributions/{month:str}", raises=(NotFound, Conflict, ValidationFailed))
    async def month(
        self, month: FromPath[str], nft: NamedDependency[NftContext]
    ) -> MonthDistributionResponse:
        """N19: one month of the Revenue Pass: what was earned, distributed, owed per pass
        and claimed."""
        return month_of_row(await month_row(nft.pool, await pass_master(nft), month))

    @get("/claims/{wallet_address:str}", raises=(Conflict, ValidationFailed))
    async def claims(
        self, wallet_address: FromPath[str], nft: NamedDependency[NftContext]
    ) -> UserClaimsResponse:
        """N20: a wallet's claims of Revenue Pass distributions, newest month first (anyone
        signed in: claims are public on chain)."""
        wallet = to_checksum_address(check(EvmAddress, wallet_address, field="walletAddress"))
        rows = await nft.pool.fetch(
            f"SELECT l.distribution_id, d.month, l.idx, l.amount, l.claimed_tx, l.claimed_at "
            f"FROM {LEAVES} l JOIN {DISTRIBUTIONS} d ON d.id = l.distribution_id "
            "WHERE l.account = $1 AND d.master_id = $2 AND l.claimed_tx IS NOT NULL "
            "ORDER BY d.month DESC, l.idx",
            wallet,
            await pass_master(nft),
        )
        return UserClaimsResponse(
            wallet_address=wallet,
            total_claimed=_units(sum(r["amount"] for r in rows)),
            claim_history=[
                Claim(
                    distribution_id=r["distribution_id"],
                    month=r["month"],
                    index=r["idx"],
                    amount=_units(r["amount"]),
                    tx_hash=r["claimed_tx"],
                    claimed_at=r["claimed_at"],
                )
                for r in rows
            ],
        )

    @get(
        "/distributions/{month:str}/claims",
        raises=(Forbidden, NotFound, Conflict, ValidationFailed),
    )
    async def claim_status(
        self,
        month: FromPath[str],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
        limit: PageLimit = DEFAULT_LIMIT,
        cursor: PageCursor = None,
    ) -> ClaimStatusPage:
        """N23 (admins): the month's leaves in index order, each claimed or not, with the
        month's totals."""
        _admin(identity)
        query = PageQuery.parse(limit, cursor)
        d = await month_row(nft.pool, await pass_master(nft), month)
        after = -1 if query.after is None else min(query.after.id.int, LAST_INDEX)
        rows = await nft.pool.fetch(
            f"SELECT idx, account, amount, claimed_tx, claimed_at FROM {LEAVES} "
            "WHERE distribution_id = $1 AND idx > $2 ORDER BY idx LIMIT $3",
            d["id"],
            after,
            query.limit + 1,
        )
        page = page_of(rows, query, lambda r: Position(d["snapshotted_at"], UUID(int=r["idx"])))
        counts = await nft.pool.fetchrow(
            f"SELECT (SELECT count(*) FROM {LEAVES} WHERE distribution_id = $1) AS leaves, "
            f"(SELECT count(*) FROM {CUSTODY} WHERE distribution_id = $1) AS custody",
            d["id"],
        )
        return ClaimStatusPage(
            distribution_id=d["id"],
            month=d["month"],
            status=d["status"],
            leaves=counts["leaves"],
            claimed_count=d["claimed_count"],
            claimed_base_units=_units(d["claimed"]),
            funded_base_units=_units(d["funded"]),
            custody_holders=counts["custody"],
            custody_base_units=_units(d["custody"]),
            items=[
                ClaimLine(
                    index=r["idx"],
                    account=r["account"],
                    amount=_units(r["amount"]),
                    claimed=r["claimed_tx"] is not None,
                    tx_hash=r["claimed_tx"],
                    claimed_at=r["claimed_at"],
                )
                for r in page.items
            ],
            next_cursor=page.next_cursor,
        )

    @get(
        "/distributions/{month:str}/claims.csv",
        media_type="text/csv",
        raises=(Forbidden, NotFound, Conflict, ValidationFailed),
    )
    async def claim_status_csv(
        self,
        month: FromPath[str],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> Stream:
        """N24 (admins): the month's claim status as CSV: `kind` (wallet: a leaf; custody:
        an account paid into its platform balance, nothing to claim), `index`, `account`
        (address or account id), `amount` (base units), `claimed`, `txHash`, `claimedAt`."""
        _admin(identity)
        d = await month_row(nft.pool, await pass_master(nft), month)
        return Stream(
            claim_status_lines(nft.pool, d["id"]),
            media_type="text/csv",
            headers={
                "Content-Disposition": (
                    f'attachment; filename="revenue-pass-{d["month"]}-claims.csv"'
                )
            },
        )


CSV_HEADER = ("kind", "index", "account", "amount", "claimed", "txHash", "claimedAt")


def _csv(lines: Sequence[Sequence[Any]]) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(lines)
    return out.getvalue()


async def claim_status_lines(pool: asyncpg.Pool, distribution_id: UUID) -> AsyncIterator[str]:
    """The CSV, a chunk of rows at a time (no connection held between chunks: a claim recorded
    meanwhile may show or not)."""
    yield _csv([CSV_HEADER])
    after = -1
    while True:
        rows = await pool.fetch(
            f"SELECT idx, account, amount, claimed_tx, claimed_at FROM {LEAVES} "
            "WHERE distribution_id = $1 AND idx > $2 ORDER BY idx LIMIT $3",
            distribution_id,
            after,
            CSV_CHUNK,
        )
        if not rows:
            break
        yield _csv(
            [
                (
                    "wallet",
                    r["idx"],
                    r["account"],
                    _units(r["amount"]),
                    "true" if r["claimed_tx"] else "false",
                    r["claimed_tx"] or "",
                    r["claimed_at"].isoformat() if r["claimed_at"] else "",
                )
                for r in rows
            ]
        )
        after = rows[-1]["idx"]
    account = ""
    while True:
        rows = await pool.fetch(
            f"SELECT account_id, amount FROM {CUSTODY} "
            "WHERE distribution_id = $1 AND account_id > $2 ORDER BY account_id LIMIT $3",
            distribution_id,
            account,
            CSV_CHUNK,
        )
        if not rows:
            break
        yield _csv(
            [("custody", "", r["account_id"], _units(r["amount"]), "", "", "") for r in rows]
        )
        account = rows[-1]["account_id"]
