"""Holdings, read from the chain: `GET /user/holdings` (mine) and `GET /masters/{id}/shares`
(a master's shareholders). Both read the `holdings` view (projections/holdings.py), which the
chain indexer feeds from MasterShares' transfers: a transfer made outside the platform, wallet
to wallet, shows up like the platform's own.

Whose lines are whose. The chain knows addresses, not accounts. A caller's lines are
- the balances of the wallets linked to their account, which nft asks of `WalletLinks`
  (app state `WALLET_LINKS_STATE_KEY`: account id -> addresses, and back, from a read model
  of auth's events; until it is given nft knows no links, and an account holds only
  its custody parts);
- their part of the platform's custody address: the shares an IPO minted to custody for them
  (`custody: true`), a part of that address's balance, never the chain's line itself.

A master's shareholders: its artist and admins see every address's line (paged with the
platform's cursor, oldest holding first), the custody address's flagged, and the account
behind a wallet where `WalletLinks.owners_of` knows it; anyone else sees the totals (supply,
holder count) and their own lines only (unpaged: a few wallets and a custody part at most).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

import asyncpg
import msgspec
from audifi_kit.errors import Forbidden, NotFound
from audifi_kit.http import Identity
from audifi_kit.http.paging import DEFAULT_LIMIT, PageCursor, PageLimit, PageQuery
from audifi_kit.paging import Position, page_of
from eth_utils import is_address, to_checksum_address
from litestar import Controller, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from audifi_nft.api.dependencies import NftContext, is_admin, provide_nft
from audifi_nft.domain.master import chain_id
from audifi_nft.projections.holdings import BALANCES, CUSTODY, MASTERS

WALLET_LINKS_STATE_KEY = "nft_wallet_links"


class AccountAddresses(Protocol):
    """The wallet addresses linked to an account (any case; nft checksums them)."""

    async def __call__(self, account_id: str) -> Sequence[str]: ...


class AddressOwners(Protocol):
    """The accounts the given (checksummed) addresses are linked to, for those linked."""

    async def __call__(self, addresses: Sequence[str]) -> Mapping[str, str]: ...


async def no_linked_wallets(account_id: str) -> Sequence[str]:
    """Until nft is told of wallet links, an account holds custody parts only."""
    return ()


async def no_known_owners(addresses: Sequence[str]) -> Mapping[str, str]:
    return {}


@dataclass(frozen=True, slots=True)
class WalletLinks:
    """What nft is told of auth's wallet links (app state `WALLET_LINKS_STATE_KEY`)."""

    addresses_of: AccountAddresses = no_linked_wallets
    owners_of: AddressOwners = no_known_owners

    async def wallets(self, account_id: str) -> list[str]:
        """The account's linked addresses, checksummed (as the chain's logs name them)."""
        linked = await self.addresses_of(account_id)
        return sorted({to_checksum_address(a) for a in linked if is_address(a)})


async def provide_wallet_links(state: State) -> WalletLinks:
    found: WalletLinks = state.get(WALLET_LINKS_STATE_KEY) or WalletLinks()
    return found


class HoldingLine(msgspec.Struct, rename="camel", kw_only=True):
    master_id: UUID
    chain_id: str  # the MasterShares token id: above 2**53, so decimal text
    address: str
    amount: int
    custody: bool  # held for you at the platform's custody address (not in your wallet)
    since: datetime


class HoldingsPage(msgspec.Struct, rename="camel", kw_only=True):
    items: list[HoldingLine]
    next_cursor: str | None


class AccountHolding(msgspec.Struct, rename="camel", kw_only=True):
    account_id: str
    amount: int  # the account's linked wallets' balances and its custody part, together


class HoldersByAccount(msgspec.Struct, rename="camel", kw_only=True):
    """Every account holding the master's shares, as nft knows them now (V Studio's snapshot
    of voters' weights); shares at addresses no account linked are not in it."""

    master_id: UUID
    total_supply: int
    items: list[AccountHolding]
    unlinked: int  # shares at addresses nft knows no account of


class ShareholderLine(msgspec.Struct, rename="camel", kw_only=True):
    address: str
    amount: int
    custody: bool  # the platform's custody address (its amount: the buyers' parts together)
    since: datetime
    account_id: str | None = None  # whose line, where nft knows it


class Shareholders(msgspec.Struct, rename="camel", kw_only=True):
    master_id: UUID
    chain_id: str
    total_supply: int  # minted less burnt
    holders: int  # addresses holding some (the custody address counts once)
    visibility: Literal["all", "own"]  # every holder's lines, or only yours
    items: list[ShareholderLine]
    next_cursor: str | None = None


def _pool(nft: NftContext) -> asyncpg.Pool:
    assert nft.runtime is not None
    return nft.runtime.pool


class HoldingsController(Controller):
    path = "/user"
    tags = ["holdings"]
    dependencies = {
        "nft": Provide(provide_nft),
        "links": Provide(provide_wallet_links),
    }

    @get("/holdings")
    async def holdings(
        self,
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
        links: NamedDependency[WalletLinks],
        limit: PageLimit = DEFAULT_LIMIT,
        cursor: PageCursor = None,
    ) -> HoldingsPage:
        """Your shares: your linked wallets' balances and your part of the platform's custody,
        a line per master and address, oldest holding first."""
        query = PageQuery.parse(limit, cursor)
        wallets = await links.wallets(identity.user_id)
        keyset, order, more = query.sql("since", "id", first_arg=3)
        rows = await _pool(nft).fetch(
            "SELECT * FROM ("
            f" SELECT id, master_id, address, amount, false AS custody, since FROM {BALANCES}"
            "  WHERE address = ANY($1::text[])"
            " UNION ALL"
            f" SELECT id, master_id, address, amount, true AS custody, since FROM {CUSTODY}"
            "  WHERE account_id = $2"
            f") AS lines WHERE {keyset} {order}",
            wallets,
            identity.user_id,
            *more,
        )
        page = page_of(rows, query, lambda r: Position(r["since"], r["id"]))
        return HoldingsPage(
            items=[
                HoldingLine(
                    master_id=r["master_id"],
                    chain_id=str(chain_id(r["master_id"])),
                    address=r["address"],
                    amount=r["amount"],
                    custody=r["custody"],
                    since=r["since"],
                )
                for r in page.items
            ],
            next_cursor=page.next_cursor,
        )


class ShareholdersController(Controller):
    path = "/masters"
    tags = ["holdings"]
    dependencies = {
        "nft": Provide(provide_nft),
        "links": Provide(provide_wallet_links),
    }

    @get("/{master_id:uuid}/shares", raises=(NotFound,))
    async def shareholders(
        self,
        master_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
        links: NamedDependency[WalletLinks],
        limit: PageLimit = DEFAULT_LIMIT,
        cursor: PageCursor = None,
    ) -> Shareholders:
        """The master's shareholders: every line to its artist and admins (paged), the totals
        and your own lines to anyone else."""
        query = PageQuery.parse(limit, cursor)
        master = await nft.store.call(nft.app.master, master_id)  # MASTER_NOT_FOUND
        pool = _pool(nft)
        totals = await pool.fetchrow(
            f"SELECT supply, holders FROM {MASTERS} WHERE master_id = $1", master_id
        )
        answer = Shareholders(
            master_id=master_id,
            chain_id=str(master.chain_id),
            total_supply=totals["supply"] if totals else 0,
            holders=totals["holders"] if totals else 0,
            visibility="own",
            items=[],
        )
        if identity.user_id == master.artist_id or is_admin(identity):
            answer.visibility = "all"
            answer.items, answer.next_cursor = await _every_line(pool, master_id, query, links)
        else:
            answer.items = await _own_lines(pool, master_id, identity.user_id, links)
        return answer

    @get("/{master_id:uuid}/shares/by-account", raises=(NotFound, Forbidden))
    async def by_account(
        self,
        master_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
        links: NamedDependency[WalletLinks],
    ) -> HoldersByAccount:
        """The master's artist and admins: each account's shares (wallets and custody part
        together), largest first, unpaged (one line per holder) — what V Studio weighs votes
        by when a decision opens."""
        master = await nft.store.call(nft.app.master, master_id)  # MASTER_NOT_FOUND
        if identity.user_id != master.artist_id and not is_admin(identity):
            raise Forbidden("Only the master's artist (or an admin) sees holders by account")
        pool = _pool(nft)
        totals = await pool.fetchrow(
            f"SELECT supply FROM {MASTERS} WHERE master_id = $1", master_id
        )
        items, unlinked = await holders_by_account(pool, master_id, links)
        return HoldersByAccount(
            master_id=master_id,
            total_supply=totals["supply"] if totals else 0,
            items=items,
            unlinked=unlinked,
        )


async def holders_by_account(
    pool: asyncpg.Pool, master_id: UUID, links: WalletLinks
) -> tuple[list[AccountHolding], int]:
    """Each account's shares of the master (linked wallets and custody part), largest first;
    and the shares at addresses no account is known for."""
    custody_addresses = {
        r["address"]
        for r in await pool.fetch(
            f"SELECT DISTINCT address FROM {CUSTODY} WHERE master_id = $1", master_id
        )
    }
    wallets = [
        r
        for r in await pool.fetch(
            f"SELECT address, amount FROM {BALANCES} WHERE master_id = $1 AND amount > 0",
            master_id,
        )
        if r["address"] not in custody_addresses
    ]
    owners = await links.owners_of([r["address"] for r in wallets])
    totals: dict[str, int] = {}
    unlinked = 0
    for r in wallets:
        owner = owners.get(r["address"])
        if owner is None:
            unlinked += r["amount"]
        else:
            totals[owner] = totals.get(owner, 0) + r["amount"]
    for r in await pool.fetch(
        f"SELECT account_id, sum(amount)::bigint AS amount FROM {CUSTODY} "
        "WHERE master_id = $1 GROUP BY account_id",
        master_id,
    ):
        if r["amount"] > 0:
            totals[r["account_id"]] = totals.get(r["account_id"], 0) + r["amount"]
    items = [AccountHolding(account_id=a, amount=n) for a, n in totals.items()]
    items.sort(key=lambda h: (-h.amount, h.account_id))
    return items, unlinked


async def _every_line(
    pool: asyncpg.Pool, master_id: UUID, query: PageQuery, links: WalletLinks
) -> tuple[list[ShareholderLine], str | None]:
    keyset, order, more = query.sql("since", "id", first_arg=2)
    rows = await pool.fetch(
        f"SELECT id, address, amount, since FROM {BALANCES} WHERE master_id = $1 AND {keyset} "
        f"{order}",
        master_id,
        *more,
    )
    page = page_of(rows, query, lambda r: Position(r["since"], r["id"]))
    custody = {
        r["address"]
        for r in await pool.fetch(
            f"SELECT DISTINCT address FROM {CUSTODY} WHERE master_id = $1", master_id
        )
    }
    known = await links.owners_of([r["address"] for r in page.items if r["address"] not in custody])
    lines = [
        ShareholderLine(
            address=r["address"],
            amount=r["amount"],
            custody=r["address"] in custody,
            since=r["since"],
            account_id=known.get(r["address"]),
        )
        for r in page.items
    ]
    return lines, page.next_cursor


async def _own_lines(
    pool: asyncpg.Pool, master_id: UUID, account_id: str, links: WalletLinks
) -> list[ShareholderLine]:
    rows = await pool.fetch(
        f"SELECT address, amount, false AS custody, since FROM {BALANCES} "
        "WHERE master_id = $1 AND address = ANY($2::text[]) "
        "UNION ALL "
        f"SELECT address, amount, true AS custody, since FROM {CUSTODY} "
        "WHERE master_id = $1 AND account_id = $3 "
        "ORDER BY since, address",
        master_id,
        await links.wallets(account_id),
        account_id,
    )
    return [
        ShareholderLine(
            address=r["address"],
            amount=r["amount"],
            custody=r["custody"],
            since=r["since"],
            account_id=account_id,
        )
        for r in rows
    ]
