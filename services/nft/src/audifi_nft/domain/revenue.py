"""A revenue distribution: dividends of one master, or a month of the Revenue Pass.

One mechanism for both (RevenueDistributor on chain): a collection (a master's shares; the
Revenue Pass is a master designated as the pass) and a month ('YYYY-MM'), at most one
distribution per collection per month (its id derives from both: a second is 409
DISTRIBUTION_EXISTS).

1. Declared (`declare`): the month's revenue (`totalRevenue`, integer minor units of USD,
   with its `sources` [{name, amount}] adding up to it) and the share of it the holders get
   (`bps`): `distributionAmount = floor(totalRevenue * bps / 10000)` cents, paid in the
   payment token (a USD stablecoin of 6 decimals: a cent is 10,000 base units).
2. Snapshotted at a block (`snapshot`): who holds how many shares then (wallets, and accounts
   whose shares the platform holds in custody); each is owed floor(amount * held / supply)
   base units (domain/distribution.py); what rounding leaves stays in the treasury and is
   shown (`remainder`). Wallet holders get a leaf of the Merkle tree; custody holders are paid
   into their platform balance instead.
3. Funded (`funded`): the tree's root and its total sent to RevenueDistributor (its id
   there); from then on wallet holders claim with their proof, until `expiresAt` (12 months)
   when what is unclaimed is swept back.
4. Claims are recorded from the chain (`record_claim`: the indexer's `Claimed` logs; one
   per leaf, as the contract's bitmap and the seed's UNIQUE say; a reorged claim is undone).
5. Swept (`sweep`): past `expiresAt`, what was not claimed goes back to the treasury (the
   IPO clock's chore; RevenueDistributor refuses claims from then on).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from audifi_kit.errors import Conflict, NotFound
from audifi_kit.values import invalid, whole_number
from eventsourcing.domain import Aggregate, event

from audifi_nft.domain.chain_payment import CENTS_TO_BASE_UNITS
from audifi_nft.domain.distribution import (
    MAX_BPS,
    MerkleDistribution,
    NothingToDistribute,
    allocate,
    share_of,
)

DISTRIBUTION_NAMESPACE = uuid.UUID("5b8e0c3d-7a1f-4e2b-9d6c-3f0a8e1b4c57")
CLAIM_WINDOW = timedelta(days=365)  # claims expire after 12 months; the rest is swept
MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
MAX_SOURCES = 50
MAX_REVENUE_CENTS = 10**15  # ten trillion dollars: past any real month, within uint256 easily

MASTER = "master"
REVENUE_PASS = "revenue_pass"

DECLARED = "declared"
FUNDED = "funded"
SWEPT = "swept"


class DistributionNotFound(NotFound):
    code = "DISTRIBUTION_NOT_FOUND"
    default_message = "No such distribution"


class DistributionExists(Conflict):
    code = "DISTRIBUTION_EXISTS"
    default_message = "This collection already has a distribution for that month"


class DistributionStateConflict(Conflict):
    code = "DISTRIBUTION_STATE_CONFLICT"
    default_message = "The distribution is not in a state that allows this"


def month_of(value: Any, *, field: str = "month") -> str:
    if not isinstance(value, str) or not MONTH.fullmatch(value):
        raise invalid(field, "Expected a month as 'YYYY-MM' (e.g. '2026-02')")
    return value


def distribution_id_of(master_id: UUID, month: str) -> UUID:
    """The one distribution of a collection (a master's shares) for a month."""
    return uuid.uuid5(DISTRIBUTION_NAMESPACE, f"{master_id}:{month}")


def sources_of(value: Any, total_revenue: int) -> list[dict[str, Any]]:
    """[{name, amount}] in minor units, adding up to the month's total revenue."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SOURCES:
        raise invalid("sources", f"Expected 1 to {MAX_SOURCES} sources of revenue")
    sources = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"name", "amount"}:
            raise invalid(f"sources[{i}]", "Expected {name, amount}")
        name = item["name"]
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
            raise invalid(f"sources[{i}].name", "Expected a name of 1 to 100 characters")
        amount = whole_number(
            item["amount"], field=f"sources[{i}].amount", minimum=0, maximum=MAX_REVENUE_CENTS
        )
        sources.append({"name": name.strip(), "amount": amount})
    if sum(s["amount"] for s in sources) != total_revenue:
        raise invalid("sources", "The sources' amounts must add up to totalRevenue")
    return sources


class Distribution(Aggregate):
    @event("Declared")
    def __init__(
        self,
        *,
        master_id: UUID,
        collection: str,
        title: str,
        month: str,
        currency: str,
        total_revenue: int,
        bps: int,
        distribution_amount: int,
        sources: list[dict[str, Any]],
        declared_by: str,
        at: datetime,
    ) -> None:
        self.master_id = master_id
        self.collection = collection
        self.title = title
        self.month = month
        self.currency = currency
        self.total_revenue = total_revenue
        self.bps = bps
        self.distribution_amount = distribution_amount  # minor units (cents)
        self.sources = sources
        self.declared_by = declared_by
        self.declared_at = at
        self.status = DECLARED
        self.block: int | None = None
        self.supply = 0
        self.wallet_amounts: dict[str, int] = {}  # checksummed address -> base units
        self.custody_amounts: dict[str, int] = {}  # account id -> base units
        self.remainder = 0
        self.root: str | None = None
        self.leaves: list[tuple[int, str, int]] = []
        self.chain_distribution_id: int | None = None
        self.funding_tx: str | None = None
        self.expires_at: datetime | None = None
        self.claims: dict[int, dict[str, Any]] = {}  # leaf index -> the claim

    @classmethod
    def declare(
        cls,
        *,
        master_id: UUID,
        collection: str,
        title: str,
        month: Any,
        total_revenue: Any,
        bps: Any,
        sources: Any,
        declared_by: str,
        at: datetime,
        currency: str = "USD",
    ) -> Distribution:
        month = month_of(month)
        total = whole_number(
            total_revenue, field="totalRevenue", minimum=0, maximum=MAX_REVENUE_CENTS
        )
        share = whole_number(bps, field="distributionBps", minimum=1, maximum=MAX_BPS)
        checked_sources = sources_of(sources, total)
        amount = share_of(total, share)
        if amount == 0:
            raise NothingToDistribute(details={"field": "totalRevenue"})
        return cls._create(
            cls.Declared,
            id=distribution_id_of(master_id, month),
            master_id=master_id,
            collection=collection,
            title=title,
            month=month,
            currency=currency,
            total_revenue=total,
            bps=share,
            distribution_amount=amount,
            sources=checked_sources,
            declared_by=declared_by,
            at=at,
        )

    @property
    def amount_base_units(self) -> int:
        """The distribution in the token's base units."""
        return self.distribution_amount * CENTS_TO_BASE_UNITS

    @property
    def per_share(self) -> int:
        """Base units one share is owed (floor), once snapshotted."""
        return self.amount_base_units // self.supply if self.supply else 0

    @property
    def funded_total(self) -> int:
        """What the wallet holders can claim on chain (the tree's total)."""
        return sum(amount for _, _, amount in self.leaves)

    def snapshot(
        self,
        *,
        block: int,
        wallets: dict[str, int],
        custody: dict[str, int],
        at: datetime,
    ) -> None:
        """Holders at `block`: shares per wallet address, and per account for what custody
        holds. Once: a distribution's holders never change after."""
        if self.status != DECLARED or self.block is not None:
            raise DistributionStateConflict(details={"status": self.status})
        keyed = {f"wallet:{a}": n for a, n in wallets.items() if n > 0}
        keyed |= {f"account:{a}": n for a, n in custody.items() if n > 0}
        if not keyed:
            raise NothingToDistribute("Nobody holds shares of this collection yet")
        allocation = allocate(self.amount_base_units, keyed)
        wallet_amounts = {
            k.removeprefix("wallet:"): v
            for k, v in allocation.amounts.items()
            if k.startswith("wallet:")
        }
        tree = MerkleDistribution.build(wallet_amounts) if wallet_amounts else None
        self._snapshotted(
            block=block,
            supply=allocation.supply,
            wallet_amounts={leaf.account: leaf.amount for leaf in tree.leaves} if tree else {},
            custody_amounts={
                k.removeprefix("account:"): v
                for k, v in allocation.amounts.items()
                if k.startswith("account:")
            },
            remainder=allocation.remainder,
            root=tree.root if tree else None,
            leaves=[[leaf.index, leaf.account, leaf.amount] for leaf in tree.leaves]
            if tree
            else [],
            at=at,
        )

    @event("Snapshotted")
    def _snapshotted(
        self,
        block: int,
        supply: int,
        wallet_amounts: dict[str, int],
        custody_amounts: dict[str, int],
        remainder: int,
        root: str | None,
        leaves: list[list[Any]],
        at: datetime,
    ) -> None:
        self.block = block
        self.supply = supply
        self.wallet_amounts = wallet_amounts
        self.custody_amounts = custody_amounts
        self.remainder = remainder
        self.root = root
        self.leaves = [(int(i), str(a), int(n)) for i, a, n in leaves]

    def tree(self) -> MerkleDistribution:
        if self.root is None:
            raise DistributionStateConflict("No wallet holds shares in this distribution")
        return MerkleDistribution.build(self.wallet_amounts)

    def fund(
        self,
        *,
        chain_distribution_id: int | None,
        tx_hash: str | None,
        expires_at: datetime,
        at: datetime,
        owners: dict[str, str] | None = None,
    ) -> bool:
        """Funded on chain as RevenueDistributor's distribution `chain_distribution_id`
        (None when every holder is in custody: nothing to claim on chain); False if already.
        Then every account owed is told (`owners`: which account linked which holding
        wallet; a wallet nobody linked is owed all the same, and claims with its proof)."""
        owners = owners or {}
        if self.status == FUNDED:
            return False
        if self.status != DECLARED or self.block is None:
            raise DistributionStateConflict(details={"status": self.status})
        self._funded(
            chain_distribution_id=chain_distribution_id,
            tx_hash=tx_hash,
            expires_at=expires_at,
            at=at,
        )
        facts = {
            "collection": self.collection,
            "master_id": str(self.master_id),
            "title": self.title,
            "month": self.month,
            "expires_at": expires_at,
        }
        for account_id, amount in sorted(self.custody_amounts.items()):
            self._owed(account_id=account_id, amount=amount, wallet=None, at=at, **facts)
        for address, amount in sorted(self.wallet_amounts.items()):
            if address in owners:
                self._owed(
                    account_id=owners[address], amount=amount, wallet=address, at=at, **facts
                )
        return True

    @event("Owed")
    def _owed(
        self,
        account_id: str,
        amount: int,
        wallet: str | None,
        at: datetime,
        collection: str,
        master_id: str,
        title: str,
        month: str,
        expires_at: datetime,
    ) -> None:
        """An account this distribution owes (`nft.distribution.claimable`): by its wallet's
        claim, or (no wallet) into its platform balance."""

    @event("Funded")
    def _funded(
        self,
        chain_distribution_id: int | None,
        tx_hash: str | None,
        expires_at: datetime,
        at: datetime,
    ) -> None:
        self.status = FUNDED
        self.chain_distribution_id = chain_distribution_id
        self.funding_tx = tx_hash
        self.expires_at = expires_at
        self.funded_at = at

    def record_claim(
        self, *, index: int, account: str, amount: int, tx_hash: str, block: int, at: datetime
    ) -> bool:
        """A `Claimed` log of this distribution; False when already recorded."""
        if index in self.claims:
            return False
        self._claimed(
            index=index, account=account, amount=amount, tx_hash=tx_hash, block=block, at=at
        )
        return True

    @event("Claimed")
    def _claimed(
        self, index: int, account: str, amount: int, tx_hash: str, block: int, at: datetime
    ) -> None:
        self.claims[index] = {
            "index": index,
            "account": account,
            "amount": amount,
            "tx_hash": tx_hash,
            "block": block,
            "at": at,
        }

    def undo_claim(self, *, index: int, tx_hash: str, at: datetime) -> bool:
        """A claim whose block left the chain (a reorg): not claimed any more."""
        claim = self.claims.get(index)
        if claim is None or claim["tx_hash"] != tx_hash:
            return False
        self._claim_reverted(index=index, tx_hash=tx_hash, at=at)
        return True

    @event("ClaimReverted")
    def _claim_reverted(self, index: int, tx_hash: str, at: datetime) -> None:
        self.claims.pop(index, None)

    @property
    def claimed_total(self) -> int:
        return sum(c["amount"] for c in self.claims.values())

    def is_sweepable(self, now: datetime) -> bool:
        return (
            self.status == FUNDED
            and self.chain_distribution_id is not None
            and self.expires_at is not None
            and self.expires_at <= now
        )

    def sweep(self, *, amount: int, tx_hash: str | None, at: datetime) -> bool:
        """Claims expired: what was not claimed went back to the treasury; False if already."""
        if self.status == SWEPT:
            return False
        if not self.is_sweepable(at):
            raise DistributionStateConflict(
                "Only a funded distribution past its expiry is swept",
                details={"status": self.status},
            )
        self._swept(amount=amount, tx_hash=tx_hash, at=at)
        return True

    @event("Swept")
    def _swept(self, amount: int, tx_hash: str | None, at: datetime) -> None:
        self.status = SWEPT
        self.swept_amount = amount
        self.sweep_tx = tx_hash


CHAIN_REF_NAMESPACE = uuid.UUID("2e6f9a41-0b7c-4d3e-8a15-6c9b2f4e7d08")


def chain_ref_id(chain_distribution_id: int) -> UUID:
    return uuid.uuid5(CHAIN_REF_NAMESPACE, str(chain_distribution_id))


class ChainDistributionRef(Aggregate):
    """Which distribution RevenueDistributor's id `n` is: how a `Claimed` log finds its
    distribution, and why one on-chain distribution is never recorded by two."""

    @event("Recorded")
    def __init__(self, *, chain_distribution_id: int, distribution_id: UUID) -> None:
        self.chain_distribution_id = chain_distribution_id
        self.distribution_id = distribution_id

    @classmethod
    def record(cls, chain_distribution_id: int, distribution_id: UUID) -> ChainDistributionRef:
        return cls._create(
            cls.Recorded,
            id=chain_ref_id(chain_distribution_id),
            chain_distribution_id=chain_distribution_id,
            distribution_id=distribution_id,
        )
