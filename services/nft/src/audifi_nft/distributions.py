"""Distributions driven end to end: declared, snapshotted from holdings, funded on chain.

`Distributions.trigger` snapshots the collection's holders (the holdings read model, at the
block the chain indexer has reached) and funds the Merkle root on RevenueDistributor from the
treasury; a trigger retried after a crash finds a funding that was sent but not recorded
(same root and total, not recorded by another distribution) instead of funding twice. Custody
holders' amounts stay in the treasury: they are owed into their platform balance, announced
with `nft.distribution.claimable` as wallet holders' claims are.

Ports: `HoldingsSnapshot` (adapters/holdings_pg.py; a dict in tests) and `Distributor`
(adapters/distributor_chain.py; `InMemoryDistributor` in tests).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

from audifi_kit.errors import Conflict

from audifi_nft.domain.revenue import CLAIM_WINDOW, DECLARED, FUNDED, Distribution
from audifi_nft.ipos import Store


class TreasuryShort(Conflict):
    code = "TREASURY_INSUFFICIENT"
    default_message = "The treasury holds less of the payment token than this distribution needs"


@dataclass(frozen=True, slots=True)
class Funding:
    chain_distribution_id: int
    tx_hash: str | None  # None: found on chain, created by an attempt that was not recorded


@dataclass(frozen=True, slots=True)
class Sweep:
    amount: int  # base units returned to the treasury
    tx_hash: str | None  # None: found swept on chain by an attempt that was not recorded


@dataclass(frozen=True, slots=True)
class Holders:
    block: int
    wallets: dict[str, int]  # checksummed address -> shares (custody's address excluded)
    custody: dict[str, int]  # account id -> shares the custody address holds for it


class HoldingsSnapshot(Protocol):
    async def holders(self, master_id: UUID) -> Holders: ...

    async def owners(self, addresses: list[str]) -> dict[str, str]:
        """Which account linked each of `addresses` (those some account linked)."""
        ...


class Distributor(Protocol):
    async def fund(
        self,
        root: str,
        total: int,
        expires_at: datetime,
        is_taken: Callable[[int], Awaitable[bool]],
    ) -> Funding:
        """Create the distribution on chain, unless an earlier attempt that was not recorded
        created it (same root and total, an id no distribution recorded: `is_taken`)."""
        ...

    async def sweep(self, chain_distribution_id: int) -> Sweep:
        """Send what was not claimed back to the treasury (after expiry), or find it sent."""
        ...


class Distributions:
    def __init__(
        self,
        store: Store,
        holdings: HoldingsSnapshot,
        distributor: Distributor,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.holdings = holdings
        self.distributor = distributor
        self.clock = clock

    async def _taken(self, chain_distribution_id: int) -> bool:
        found = await self.store.call(self.store.app.distribution_of_chain, chain_distribution_id)
        return found is not None

    async def trigger(self, distribution_id: UUID) -> Distribution:
        """Snapshot (once) and fund (once): the distribution, funded. Idempotent."""
        app = self.store.app
        d: Distribution = await self.store.call(app.distribution, distribution_id)
        if d.status == FUNDED:
            return d
        if d.block is None:
            holders = await self.holdings.holders(d.master_id)
            d = await self.store.call(
                app.snapshot_distribution,
                distribution_id,
                block=holders.block,
                wallets=holders.wallets,
                custody=holders.custody,
                now=self.clock(),
            )
        if d.status != DECLARED:
            return d
        if d.root is None:  # every holder is in custody: nothing to put on chain
            now = self.clock()
            return await self.store.call(
                app.fund_distribution,
                distribution_id,
                chain_distribution_id=None,
                tx_hash=None,
                expires_at=(now + CLAIM_WINDOW).replace(microsecond=0),
                now=now,
            )
        now = self.clock()
        expires_at = (now + CLAIM_WINDOW).replace(microsecond=0)  # the chain keeps seconds
        funding = await self.distributor.fund(d.root, d.funded_total, expires_at, self._taken)
        return await self.store.call(
            app.fund_distribution,
            distribution_id,
            chain_distribution_id=funding.chain_distribution_id,
            tx_hash=funding.tx_hash,
            expires_at=expires_at,
            now=now,
            owners=await self.holdings.owners(list(d.wallet_amounts)),
        )

    async def sweep_expired(self, distribution_id: UUID) -> Distribution:
        """Past its expiry, a funded distribution's unclaimed rest goes back to the treasury
        (RevenueDistributor's `sweep`); idempotent, and a no-op before expiry."""
        app = self.store.app
        d: Distribution = await self.store.call(app.distribution, distribution_id)
        if not d.is_sweepable(self.clock()):
            return d
        assert d.chain_distribution_id is not None
        swept = await self.distributor.sweep(d.chain_distribution_id)
        return await self.store.call(
            app.sweep_distribution,
            distribution_id,
            amount=swept.amount,
            tx_hash=swept.tx_hash,
            now=self.clock(),
        )
