"""Wiring: settings and bus -> the nft service's Litestar app and background tasks.

Masters' media is kept by `LocalStorage` under `AUDIFI_NFT_MEDIA_DIR` (from the environment
or `settings.extra`), by default `nft-media` under the settings' `var_dir`; with
`AUDIFI_NFT_S3_BUCKET` set, in that bucket of any S3-compatible store instead (`S3Storage`:
`AUDIFI_NFT_S3_ENDPOINT` for MinIO and the like, `AUDIFI_NFT_S3_REGION`, credentials from the
usual AWS variables), the bucket created when missing. Both are the kit's (`audifi_kit.media`).

The minter (minting.py) drives paid allocations onto the chain as `minting.queue` shows
them, one at a time, the leader of the service's replicas only.

The share indexer (holdings.py) follows MasterShares' transfers into the `holdings` view
from the block the contract was deployed in, CHAIN_CONFIRMATIONS behind the head, reorg-safe;
replicas may run it together (each log is applied once). `GET /user/holdings` finds the
caller's addresses in nft's record of auth's wallet links (`AccountWallets`).

The IPO clock runs every `NFT_CLOCK_SECONDS` (5): IPOs whose `opensAt` came are opened (on
chain, then recorded), open ones whose `closesAt` came are closed. Found from the `ipos` read
model; both steps are idempotent, so replicas running it together do no harm. The same clock
cancels the Coda projects whose funding deadline passed short of their goal (from the
`projects` read model), refunding every funder in full, and tells lockers' subscribers of the
items whose unlock date came (`nft.content.unlocked`, once per item).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import asyncpg
from audifi_kit.bus import Bus
from audifi_kit.chain.platform import CHAIN_STATE_KEY, PlatformChain
from audifi_kit.launch import AppSpec, service_app
from audifi_kit.media.s3 import S3Storage
from audifi_kit.media.storage import LocalStorage, MediaStorage, opened
from audifi_kit.periodic import every
from audifi_kit.runtime import RUNTIME_STATE_KEY, ServiceRuntime
from audifi_kit.settings import Settings
from audifi_kit.spec import ServiceSpec
from eventsourcing.persistence import IntegrityError
from litestar import Litestar

from audifi_nft.adapters.distributor_chain import ChainDistributor
from audifi_nft.adapters.escrow_chain import ChainEscrow
from audifi_nft.adapters.locker_cache import caching_lockers, locker_cache
from audifi_nft.adapters.shares_chain import ChainShares
from audifi_nft.api.chain import ChainController
from audifi_nft.api.dependencies import CONTEXT_STATE_KEY, NftContext
from audifi_nft.api.distributions import (
    MasterDistributionsController,
    ProofController,
    RevenuePassWritesController,
)
from audifi_nft.api.holdings import (
    WALLET_LINKS_STATE_KEY,
    HoldingsController,
    ShareholdersController,
    WalletLinks,
)
from audifi_nft.api.ipos import IposController
from audifi_nft.api.locker import ArtistsController, ContentController
from audifi_nft.api.masters import MastersController
from audifi_nft.api.projects import (
    InvestmentsController,
    MilestonesController,
    ProjectsController,
    UserInvestmentsController,
)
from audifi_nft.api.revenue_reads import SHARED_PATH_READS, RevenuePassReadsController
from audifi_nft.api.withdrawals import WithdrawalsController
from audifi_nft.application import NftApplication
from audifi_nft.consumers import (
    orders_consumer,
    studio_consumer,
    subscriptions_consumer,
    wallets_consumer,
)
from audifi_nft.distributions import Distributions
from audifi_nft.escrow import Escrow, EscrowFollower
from audifi_nft.holdings import INDEXER_NAME, share_indexer
from audifi_nft.ipos import Ipos
from audifi_nft.minting import Minter, Minting
from audifi_nft.outbox import outbox
from audifi_nft.projections import PROJECTIONS
from audifi_nft.projections.locker import DUE_UNLOCKS
from audifi_nft.projections.minting import MintingQueue
from audifi_nft.projections.projects import Projects
from audifi_nft.projections.wallets import owners_of

MEDIA_DIR_ENV = "AUDIFI_NFT_MEDIA_DIR"
S3_BUCKET_ENV = "AUDIFI_NFT_S3_BUCKET"
S3_ENDPOINT_ENV = "AUDIFI_NFT_S3_ENDPOINT"
S3_REGION_ENV = "AUDIFI_NFT_S3_REGION"
CLOCK_ENV = "NFT_CLOCK_SECONDS"
log = logging.getLogger(__name__)

spec = ServiceSpec(
    name="nft",
    application=NftApplication,
    projections=PROJECTIONS,
    outbox=outbox,
    consumers=(
        orders_consumer(),
        wallets_consumer(),
        subscriptions_consumer(),
        studio_consumer(),
    ),
)

TO_OPEN = "SELECT id FROM ipos.ipos WHERE status = 'configured' AND opens_at <= now() LIMIT 100"
TO_CLOSE = "SELECT id FROM ipos.ipos WHERE status = 'open' AND closes_at <= now() LIMIT 100"
# Reservations paid on chain have no order at payment to expire them: the clock releases them.
OPEN_IPOS = "SELECT id FROM ipos.ipos WHERE status = 'open'"
PROJECTS_DUE = (
    "SELECT id FROM projects.projects WHERE status = 'funding' AND funding_deadline <= now() "
    "LIMIT 100"
)
TO_SWEEP = (
    "SELECT id FROM distributions.distributions WHERE status = 'funded' "
    "AND chain_distribution_id IS NOT NULL AND expires_at <= now() LIMIT 100"
)


async def tick_ipo_clock(
    ipos: Ipos,
    runtime: ServiceRuntime,
    distributions: Distributions | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Opens the IPOs whose time came, closes those whose window ended, releases the on-chain
    reservations left unpaid past their expiry, cancels (and refunds) the projects whose
    funding deadline passed short of their goal, and sweeps distributions whose claims
    expired."""
    try:
        to_open = await runtime.pool.fetch(TO_OPEN)
        to_close = await runtime.pool.fetch(TO_CLOSE)
    except asyncpg.UndefinedTableError:  # the read model is being created
        return
    for row in to_open:
        try:
            await ipos.launch(row["id"])
        except Exception as exc:  # one IPO's failure (the chain's) stops no other
            log.warning("IPO clock: IPO %s not opened (%s)", row["id"], exc)
    for row in to_close:
        await ipos.close_if_due(row["id"])
    for row in await runtime.pool.fetch(OPEN_IPOS):
        await ipos.release_expired(row["id"], method="chain")
    try:
        projects_due = await runtime.pool.fetch(PROJECTS_DUE)
    except asyncpg.UndefinedTableError:  # the read model is being created
        projects_due = []
    for row in projects_due:
        try:
            await runtime.store.call(
                runtime.store.app.end_project_if_due, UUID(str(row["id"])), now=datetime.now(UTC)
            )
        except IntegrityError:  # a funder's payment landed meanwhile: the next tick decides
            log.info("project clock: project %s changed meanwhile", row["id"])
    await announce_unlocks(runtime, clock())
    if distributions is not None:
        try:
            to_sweep = await runtime.pool.fetch(TO_SWEEP)
        except asyncpg.UndefinedTableError:  # the read model is being created
            to_sweep = []
        for row in to_sweep:
            try:
                await distributions.sweep_expired(row["id"])
            except Exception as exc:  # one distribution's failure (the chain's) stops no other
                log.warning("IPO clock: distribution %s not swept (%s)", row["id"], exc)


async def announce_unlocks(runtime: ServiceRuntime, now: datetime) -> None:
    """Lockers' items whose unlock date came: their subscribers are told (once each item)."""
    try:
        due = await runtime.pool.fetch(DUE_UNLOCKS, now)
    except asyncpg.UndefinedTableError:  # the read model is being created
        return
    for row in due:
        try:
            await runtime.store.call(
                runtime.store.app.announce_unlocked,
                UUID(str(row["id"])),  # a plain UUID, not asyncpg's
                subscribers=list(row["subscribers"]),
                now=now,
            )
        except IntegrityError:  # the artist edited it meanwhile: the next tick tells
            log.info("locker clock: item %s changed meanwhile", row["id"])


def _setting(settings: Settings, name: str) -> str | None:
    return settings.extra.get(name) or os.environ.get(name) or None


def media_dir(settings: Settings) -> Path:
    configured = _setting(settings, MEDIA_DIR_ENV)
    return Path(configured) if configured else Path(settings.var_dir) / "nft-media"


def media_storage(settings: Settings) -> MediaStorage:
    """The store the settings choose: an S3 bucket when one is named, else local files."""
    bucket = _setting(settings, S3_BUCKET_ENV)
    if bucket is None:
        return LocalStorage(media_dir(settings))
    return S3Storage(
        bucket,
        endpoint_url=_setting(settings, S3_ENDPOINT_ENV),
        region=_setting(settings, S3_REGION_ENV) or "us-east-1",
    )


def create_app(
    settings: Settings,
    bus: Bus,
    chain: PlatformChain | None = None,
    *,
    storage: MediaStorage | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Litestar:
    """`chain`: the process's shared chain (`audifi up`); unset, the service starts its own.
    `storage` defaults to `media_storage(settings)`; `clock` (the lockers' time: unlock
    dates) to the wall clock."""
    context = NftContext(settings=settings, storage=storage or media_storage(settings))
    context.locker_cache = locker_cache(settings)  # Redis with REDIS_URL, else memory (or none)
    if clock is not None:
        context.clock = clock
    interval = float(settings.extra.get(CLOCK_ENV) or os.environ.get(CLOCK_ENV) or 5)

    @asynccontextmanager
    async def ipo_clock(app: Litestar) -> AsyncIterator[None]:
        runtime: ServiceRuntime = app.state[RUNTIME_STATE_KEY]
        context.runtime = runtime
        if context.shares is None:
            shares = ChainShares(app.state[CHAIN_STATE_KEY])
            await shares.start()
            context.shares = shares
        minter = Minter(
            Minting(runtime.store, context.shares),
            runtime.store,
            runtime.pool,
            runtime.projections[MintingQueue.name],
            poll_interval=interval,
        )
        context.minter = minter
        if context.chain_distributor is None:
            context.chain_distributor = ChainDistributor(app.state[CHAIN_STATE_KEY])
        if context.escrow_chain is None:
            context.escrow_chain = ChainEscrow(app.state[CHAIN_STATE_KEY])
        escrow = EscrowFollower(
            Escrow(runtime.store, context.escrow_chain),
            runtime.store,
            runtime.pool,
            runtime.projections[Projects.name],
            poll_interval=interval,
        )
        context.escrow = escrow
        tick = functools.partial(
            tick_ipo_clock, context.ipos, runtime, context.distributions, context.clock
        )
        async with opened(context.storage), every(interval, tick, name="IPO clock"):
            await minter.start()
            await escrow.start()
            try:
                yield
            finally:
                await escrow.stop()
                await minter.stop()

    @asynccontextmanager
    async def holdings_indexer(app: Litestar) -> AsyncIterator[None]:
        """MasterShares' transfers into the holdings, while the app serves."""
        runtime: ServiceRuntime = app.state[RUNTIME_STATE_KEY]
        indexer = await share_indexer(
            INDEXER_NAME,
            app.state[CHAIN_STATE_KEY],
            runtime.store,
            runtime.pool,
            settings,
            poll_interval=settings.poll_interval,
        )
        async with indexer.running("nft shares indexer"):
            yield

    async def wallets_of(account_id: str) -> list[str]:
        return await context.store.call(context.app.wallets_of, account_id)

    async def owners(addresses: Sequence[str]) -> Mapping[str, str]:
        return await owners_of(context.pool, addresses)

    return service_app(
        spec,
        settings,
        bus,
        chain=chain or PlatformChain(settings),
        route_handlers=[
            ChainController,
            MastersController,
            IposController,
            HoldingsController,
            ShareholdersController,
            RevenuePassWritesController,
            MasterDistributionsController,
            ProofController,
            WithdrawalsController,
            ProjectsController,
            MilestonesController,
            InvestmentsController,
            UserInvestmentsController,
            ArtistsController,
            ContentController,
            RevenuePassReadsController,
            *SHARED_PATH_READS,  # after the write controllers of their paths
        ],
        state={
            CONTEXT_STATE_KEY: context,
            WALLET_LINKS_STATE_KEY: WalletLinks(addresses_of=wallets_of, owners_of=owners),
        },
        lifespan=[ipo_clock, holdings_indexer, caching_lockers(context.locker_cache)],
    )


app = AppSpec(name="nft", factory=create_app, uses_chain=True)
