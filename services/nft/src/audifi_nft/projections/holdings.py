"""`holdings`: who holds a master's shares, read from the `ShareToken` events the chain indexer
records, plus the shares the platform's custody address holds for each buyer.

Tables (schema `holdings`):

- `balances`: one row per (master, address) holding shares now, with its amount and `since`
  (when this holding last began: the event that took it from none to some). A holding that
  falls to zero is deleted, not kept at 0, so every row is a holder; the holding of an address
  that sells out and buys again starts again (`since` moves). The row's `id` (a UUID derived
  from master and address) and `since` order lists (the platform's keyset paging).
- `masters`: per master, its supply (minted less burnt) and its holder count (addresses with a
  balance: the custody address counts as one, however many buyers it holds for).
- `custody`: shares minted to the platform's custody address for a buyer (`Ipo.SharesMinted`
  with `custody`), per (master, account): the buyer's part of the custody address's balance.
  Kept apart from `balances`, which is the chain's own view. A withdrawal to the buyer's
  wallet (`Withdrawal.Withdrawn`) takes its shares out of the buyer's part; a mint whose block
  left the chain stays attributed (the IPO recorded it minted).

Every ShareToken event carries the balances it leaves, so a page is folded in memory (the
last figure of each (master, address) wins) and written in a few set-based statements.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec
from audifi_kit.projections import PageEvent, PageProjection, Tagged
from eventsourcing.utils import get_topic

from audifi_nft.domain.custody import Withdrawal
from audifi_nft.domain.holdings import ShareToken
from audifi_nft.domain.ipo import Ipo

BALANCES = "holdings.balances"
MASTERS = "holdings.masters"
CUSTODY = "holdings.custody"

ROWS_NAMESPACE = uuid.UUID("d3b1f6a2-5c47-4e8b-a0f9-7e2c4d1b9a65")
_TRANSFERRED = get_topic(ShareToken.SharesTransferred)
_REVERTED = get_topic(ShareToken.TransferReverted)
_MINTED = get_topic(Ipo.SharesMinted)
_WITHDRAWN = get_topic(Withdrawal.Withdrawn)


def balance_row_id(master_id: UUID, address: str) -> UUID:
    return uuid.uuid5(ROWS_NAMESPACE, f"{master_id}:{address}")


def custody_row_id(master_id: UUID, account_id: str) -> UUID:
    return uuid.uuid5(ROWS_NAMESPACE, f"custody:{master_id}:{account_id}")


class _Moved(msgspec.Struct, gc=False):
    """SharesTransferred and TransferReverted: the balances they leave."""

    timestamp: Tagged
    master_id: str
    token_id: str
    from_address: str
    to_address: str
    from_balance: int | None
    to_balance: int | None
    supply: int


class _MintFacts(msgspec.Struct, gc=False):
    master_id: str
    buyer_id: str
    quantity: int


class _WithdrawnFacts(msgspec.Struct, gc=False):
    master_id: str
    account_id: str
    quantity: int


class _Withdrawn(msgspec.Struct, gc=False):
    facts: _WithdrawnFacts


class _Minted(msgspec.Struct, gc=False):
    timestamp: Tagged
    to: str
    custody: bool
    facts: _MintFacts


_Key = tuple[UUID, str]


class Holdings(PageProjection):
    name = "holdings"
    version = 1
    fields = {
        ShareToken.SharesTransferred: _Moved,
        ShareToken.TransferReverted: _Moved,
        Ipo.SharesMinted: _Minted,
        Withdrawal.Withdrawn: _Withdrawn,
    }

    async def create(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE balances ("
            " master_id uuid NOT NULL,"
            " address text NOT NULL,"
            " id uuid NOT NULL UNIQUE,"
            " amount bigint NOT NULL CHECK (amount > 0),"
            " since timestamptz NOT NULL,"
            " PRIMARY KEY (master_id, address))"
        )
        await conn.execute("CREATE INDEX balances_of_address ON balances (address)")
        await conn.execute("CREATE INDEX balances_by_since ON balances (master_id, since, id)")
        await conn.execute(
            "CREATE TABLE masters ("
            " master_id uuid PRIMARY KEY,"
            " token_id text NOT NULL,"
            " supply bigint NOT NULL,"
            " holders integer NOT NULL,"
            " updated_at timestamptz NOT NULL)"
        )
        await conn.execute(
            "CREATE TABLE custody ("
            " master_id uuid NOT NULL,"
            " account_id text NOT NULL,"
            " id uuid NOT NULL UNIQUE,"
            " address text NOT NULL,"
            " amount bigint NOT NULL CHECK (amount > 0),"
            " since timestamptz NOT NULL,"
            " PRIMARY KEY (master_id, account_id))"
        )
        await conn.execute("CREATE INDEX custody_of_account ON custody (account_id)")

    async def apply_events(self, conn: asyncpg.Connection, events: list[PageEvent]) -> None:
        moved = [e for e in events if e.topic in (_TRANSFERRED, _REVERTED)]
        if moved:
            await self._balances(conn, moved)
        # In log order: a withdrawal never comes before the mint it takes from.
        for e in events:
            if e.topic == _MINTED and e.data.custody:
                await self._custody(conn, [e])
            elif e.topic == _WITHDRAWN:
                await self._withdrawn(conn, e.data.facts)

    # -- the chain's view ------------------------------------------------------------------

    async def _balances(self, conn: asyncpg.Connection, events: list[PageEvent]) -> None:
        touched: set[_Key] = set()
        for e in events:
            d: _Moved = e.data
            master = UUID(d.master_id)
            for address, balance in (
                (d.from_address, d.from_balance),
                (d.to_address, d.to_balance),
            ):
                if balance is not None:
                    touched.add((master, address))
        masters_of, addresses = zip(*touched, strict=True) if touched else ((), ())
        held: dict[_Key, datetime] = {
            (r["master_id"], r["address"]): r["since"]
            for r in await conn.fetch(
                "SELECT b.master_id, b.address, b.since FROM balances b "
                "JOIN unnest($1::uuid[], $2::text[]) AS k(master_id, address) "
                "ON b.master_id = k.master_id AND b.address = k.address",
                list(masters_of),
                list(addresses),
            )
        }
        now: dict[_Key, tuple[int, datetime | None]] = {
            key: (1, since) for key, since in held.items()
        }
        tokens: dict[UUID, tuple[str, int, datetime]] = {}
        for e in events:
            d = e.data
            master = UUID(d.master_id)
            at = datetime.fromisoformat(d.timestamp.data)
            for address, balance in (
                (d.from_address, d.from_balance),
                (d.to_address, d.to_balance),
            ):
                if balance is None:  # the zero address: a mint's source, a burn's destination
                    continue
                before, since = now.get((master, address), (0, None))
                now[(master, address)] = (
                    balance,
                    (since if before > 0 else at) if balance else None,
                )
            tokens[master] = (d.token_id, d.supply, at)

        kept = [(k, amount, since) for k, (amount, since) in now.items() if amount > 0]
        gone = [k for k, (amount, _) in now.items() if amount == 0 and k in held]
        holders = dict.fromkeys(tokens, 0)
        for k, _, _ in kept:
            holders[k[0]] += k not in held
        for k in gone:
            holders[k[0]] -= 1
        if kept:
            await conn.execute(
                "INSERT INTO balances (master_id, address, id, amount, since) "
                "SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::bigint[], "
                "$5::timestamptz[]) ON CONFLICT (master_id, address) DO UPDATE "
                "SET amount = EXCLUDED.amount, since = EXCLUDED.since",
                [k[0] for k, _, _ in kept],
                [k[1] for k, _, _ in kept],
                [balance_row_id(*k) for k, _, _ in kept],
                [amount for _, amount, _ in kept],
                [since for _, _, since in kept],
            )
        if gone:
            await conn.execute(
                "DELETE FROM balances b USING unnest($1::uuid[], $2::text[]) "
                "AS k(master_id, address) WHERE b.master_id = k.master_id "
                "AND b.address = k.address",
                [k[0] for k in gone],
                [k[1] for k in gone],
            )
        await conn.execute(
            "INSERT INTO masters (master_id, token_id, supply, holders, updated_at) "
            "SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::integer[], "
            "$5::timestamptz[]) ON CONFLICT (master_id) DO UPDATE "
            "SET supply = EXCLUDED.supply, holders = masters.holders + EXCLUDED.holders, "
            "updated_at = EXCLUDED.updated_at",
            list(tokens),
            [t[0] for t in tokens.values()],
            [t[1] for t in tokens.values()],
            [holders[m] for m in tokens],
            [t[2] for t in tokens.values()],
        )

    # -- custody: the buyers' parts of the custody address ---------------------------------

    async def _custody(self, conn: asyncpg.Connection, events: list[PageEvent]) -> None:
        parts: dict[_Key, list] = {}
        for e in events:
            d: _Minted = e.data
            key = (UUID(d.facts.master_id), d.facts.buyer_id)
            part = parts.get(key)
            if part is None:
                at = datetime.fromisoformat(d.timestamp.data)
                parts[key] = [d.to, d.facts.quantity, at]
            else:
                part[0] = d.to
                part[1] += d.facts.quantity
        await conn.execute(
            "INSERT INTO custody (master_id, account_id, id, address, amount, since) "
            "SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], "
            "$5::bigint[], $6::timestamptz[]) ON CONFLICT (master_id, account_id) DO UPDATE "
            "SET amount = custody.amount + EXCLUDED.amount, address = EXCLUDED.address",
            [k[0] for k in parts],
            [k[1] for k in parts],
            [custody_row_id(*k) for k in parts],
            [p[0] for p in parts.values()],
            [p[1] for p in parts.values()],
            [p[2] for p in parts.values()],
        )

    async def _withdrawn(self, conn: asyncpg.Connection, facts: _WithdrawnFacts) -> None:
        """Shares moved out of custody to the account's wallet: its part shrinks (gone at 0;
        the wallet's line comes from the chain, as any transfer's)."""
        master = UUID(facts.master_id)
        await conn.execute(
            "DELETE FROM custody WHERE master_id = $1 AND account_id = $2 AND amount <= $3",
            master,
            facts.account_id,
            facts.quantity,
        )
        await conn.execute(
            "UPDATE custody SET amount = amount - $3 WHERE master_id = $1 AND account_id = $2",
            master,
            facts.account_id,
            facts.quantity,
        )
