"""Distributions, written: declared ("Upload monthly revenue data"), triggered (snapshot and
fund on chain), and a holder's proof to claim with.

- `POST /revenue-pass/distributions` (admin): a month of the Revenue Pass (the master named
  by `NFT_REVENUE_PASS_MASTER`); `POST /revenue-pass/distributions/{month}/trigger` (admin).
- `POST /masters/{masterId}/distributions` and `.../distributions/{month}/trigger`: dividends
  of one master, by its artist or an admin.
- `GET /distributions/{distributionId}/proof`: the caller's leaf and proof (for the wallet
  they linked, or `?wallet=` one of theirs) and what to call: `claim(distributionId, index,
  account, amount, proof)` on RevenueDistributor.

Amounts: `totalRevenue`, `sources[].amount` and `distributionAmount` are integer minor units
of USD (cents); what holders are owed is in the payment token's base units (6 decimals: a
cent is 10,000), as decimal strings.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from audifi_kit.chain.platform import CHAIN_STATE_KEY, PlatformChain
from audifi_kit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from audifi_kit.fields import EvmAddress, check
from audifi_kit.http import Identity
from litestar import Controller, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody

from audifi_nft.api.dependencies import NftContext, is_admin, provide_nft
from audifi_nft.domain.distribution import ClaimNotFound
from audifi_nft.domain.revenue import (
    MASTER,
    REVENUE_PASS,
    Distribution,
    distribution_id_of,
    month_of,
)

PASS_MASTER_ENV = "NFT_REVENUE_PASS_MASTER"


class RevenuePassNotConfigured(Conflict):
    code = "REVENUE_PASS_NOT_CONFIGURED"
    default_message = "No master is designated as the Revenue Pass (NFT_REVENUE_PASS_MASTER)"


class AdminsOnly(Forbidden):
    default_message = "Only an admin manages Revenue Pass distributions"


class RevenueSource(msgspec.Struct, kw_only=True):
    name: str
    amount: int


class RevenueUpload(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """A month's revenue: `totalRevenue` (cents) and its `sources` adding up to it, and the
    share of it the holders get (`distributionBps`, 1 to 10000)."""

    month: str
    total_revenue: int
    sources: list[dict[str, Any]]
    distribution_bps: int


class DistributionView(msgspec.Struct, rename="camel", kw_only=True):
    id: UUID
    master_id: UUID
    collection: str
    title: str
    month: str
    status: str  # declared, funded
    currency: str
    total_revenue: int
    distribution_bps: int
    distribution_amount: int  # cents
    sources: list[dict[str, Any]]
    token_decimals: int = 6
    distribution_base_units: str
    block: int | None = None
    supply: int = 0
    per_share_base_units: str = "0"
    holders: int = 0
    funded_base_units: str = "0"  # claimable on chain by wallet holders
    custody_base_units: str = "0"  # owed to custody holders' platform balances
    remainder_base_units: str = "0"  # what rounding left in the treasury
    merkle_root: str | None = None
    chain_distribution_id: int | None = None
    funding_tx: str | None = None
    expires_at: datetime | None = None
    claimed_count: int = 0
    claimed_base_units: str = "0"


class ProofView(msgspec.Struct, rename="camel", kw_only=True):
    distribution_id: UUID
    chain_distribution_id: int
    contract: str  # RevenueDistributor's address
    index: int
    account: str
    amount: str  # base units of the payment token
    proof: list[str]
    claimed: bool
    expires_at: datetime | None


def distribution_view(d: Distribution) -> DistributionView:
    return DistributionView(
        id=d.id,
        master_id=d.master_id,
        collection=d.collection,
        title=d.title,
        month=d.month,
        status=d.status,
        currency=d.currency,
        total_revenue=d.total_revenue,
        distribution_bps=d.bps,
        distribution_amount=d.distribution_amount,
        sources=d.sources,
        distribution_base_units=str(d.amount_base_units),
        block=d.block,
        supply=d.supply,
        per_share_base_units=str(d.per_share),
        holders=len(d.wallet_amounts) + len(d.custody_amounts),
        funded_base_units=str(d.funded_total),
        custody_base_units=str(sum(d.custody_amounts.values())),
        remainder_base_units=str(d.remainder),
        merkle_root=d.root,
        chain_distribution_id=d.chain_distribution_id,
        funding_tx=d.funding_tx,
        expires_at=d.expires_at,
        claimed_count=len(d.claims),
        claimed_base_units=str(d.claimed_total),
    )


async def pass_master(nft: NftContext) -> UUID:
    """The master designated as the Revenue Pass: `NFT_REVENUE_PASS_MASTER` names it by id,
    or by ISRC (known before the master is registered, so a deployment can name it first)."""
    configured = nft.settings.extra.get(PASS_MASTER_ENV) or os.environ.get(PASS_MASTER_ENV)
    if not configured:
        raise RevenuePassNotConfigured()
    try:
        return UUID(configured)
    except ValueError:
        pass
    found = await nft.store.call(nft.app.master_of_isrc, configured)
    if found is None:
        raise RevenuePassNotConfigured(
            "No master is registered under the Revenue Pass's ISRC yet",
            details={"isrc": configured},
        )
    return found


async def _declare(
    nft: NftContext, master_id: UUID, collection: str, data: RevenueUpload, identity: Identity
) -> DistributionView:
    d = await nft.store.call(
        nft.app.declare_distribution,
        master_id,
        collection=collection,
        month=data.month,
        total_revenue=data.total_revenue,
        bps=data.distribution_bps,
        sources=data.sources,
        actor_id=identity.user_id,
        actor_is_admin=is_admin(identity),
        now=datetime.now(UTC),
    )
    return distribution_view(d)


async def _trigger(
    nft: NftContext, master_id: UUID, month: str, identity: Identity
) -> DistributionView:
    await nft.store.call(
        nft.app.check_master_operator,
        master_id,
        actor_id=identity.user_id,
        actor_is_admin=is_admin(identity),
    )
    d = await nft.distributions.trigger(distribution_id_of(master_id, month_of(month)))
    return distribution_view(d)


def _admin(identity: Identity) -> None:
    if not is_admin(identity):
        raise AdminsOnly()


class RevenuePassWritesController(Controller):
    path = "/revenue-pass/distributions"
    tags = ["revenue-pass"]
    dependencies = {"nft": Provide(provide_nft)}

    @post("/", status_code=201, raises=(Forbidden, Conflict, ValidationFailed))
    async def upload(
        self,
        data: JSONBody[RevenueUpload],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> DistributionView:
        """Upload a month's revenue of the Revenue Pass (admin); one per month (409)."""
        _admin(identity)
        return await _declare(nft, await pass_master(nft), REVENUE_PASS, data, identity)

    @post("/{month:str}/trigger", status_code=200, raises=(Forbidden, NotFound, Conflict))
    async def trigger(
        self,
        month: FromPath[str],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> DistributionView:
        """Snapshot the pass holders and fund the month's claims on chain (admin);
        idempotent."""
        _admin(identity)
        return await _trigger(nft, await pass_master(nft), month, identity)


class MasterDistributionsController(Controller):
    path = "/masters/{master_id:uuid}/distributions"
    tags = ["distributions"]
    dependencies = {"nft": Provide(provide_nft)}

    @post("/", status_code=201, raises=(Forbidden, NotFound, Conflict, ValidationFailed))
    async def declare(
        self,
        master_id: FromPath[UUID],
        data: JSONBody[RevenueUpload],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> DistributionView:
        """Dividends: a month's revenue of the master, to share with its holders (its
        artist or an admin); one per month (409 DISTRIBUTION_EXISTS)."""
        return await _declare(nft, master_id, MASTER, data, identity)

    @post("/{month:str}/trigger", status_code=200, raises=(Forbidden, NotFound, Conflict))
    async def trigger(
        self,
        master_id: FromPath[UUID],
        month: FromPath[str],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
    ) -> DistributionView:
        """Snapshot the master's holders and fund the claims on chain; idempotent."""
        return await _trigger(nft, master_id, month, identity)


class ProofController(Controller):
    path = "/distributions"
    tags = ["distributions"]
    dependencies = {"nft": Provide(provide_nft)}

    @get("/{distribution_id:uuid}", raises=(NotFound,))
    async def distribution(
        self, distribution_id: FromPath[UUID], nft: NamedDependency[NftContext]
    ) -> DistributionView:
        """A distribution: what was declared, who was snapshotted, what is funded and
        claimed."""
        return distribution_view(await nft.store.call(nft.app.distribution, distribution_id))

    @get("/{distribution_id:uuid}/proof", raises=(NotFound, Conflict))
    async def proof(
        self,
        distribution_id: FromPath[UUID],
        identity: NamedDependency[Identity],
        nft: NamedDependency[NftContext],
        state: State,
        wallet: FromQuery[str | None] = None,
    ) -> ProofView:
        """My leaf and proof: for the wallet I linked (or `wallet`, one of mine), what to
        send RevenueDistributor's `claim`. 404 CLAIM_NOT_FOUND when that wallet is owed
        nothing here."""
        d: Distribution = await nft.store.call(nft.app.distribution, distribution_id)
        mine = await nft.store.call(nft.app.wallets_of, identity.user_id)
        if wallet is not None:
            address = check(EvmAddress, wallet, field="wallet")
            if address.lower() not in {w.lower() for w in mine}:
                raise ClaimNotFound(details={"account": address})
            candidates = [address]
        else:
            candidates = list(reversed(mine))
        if d.chain_distribution_id is None or d.root is None:
            raise ClaimNotFound(details={"distributionId": str(distribution_id)})
        tree = d.tree()
        for address in candidates:
            try:
                leaf = tree.leaf(address)
            except ClaimNotFound:
                continue
            chain: PlatformChain = state[CHAIN_STATE_KEY]
            deployment = await chain.start()
            return ProofView(
                distribution_id=d.id,
                chain_distribution_id=d.chain_distribution_id,
                contract=deployment.address("RevenueDistributor"),
                index=leaf.index,
                account=leaf.account,
                amount=str(leaf.amount),
                proof=tree.proof_for_index(leaf.index),
                claimed=leaf.index in d.claims,
                expires_at=d.expires_at,
            )
        raise ClaimNotFound(details={"distributionId": str(distribution_id)})
