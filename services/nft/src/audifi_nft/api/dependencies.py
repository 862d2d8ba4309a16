"""What every nft handler works with, injected as the `nft` dependency."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from audifi_kit.chain.platform import CHAIN_STATE_KEY
from audifi_kit.eventstore import EventStore, GroupCommit
from audifi_kit.http import Identity
from audifi_kit.media.storage import MediaStorage
from audifi_kit.runtime import RUNTIME_STATE_KEY, ServiceRuntime
from audifi_kit.settings import Settings
from litestar.datastructures import State

from audifi_nft.adapters.distributor_chain import ChainDistributor
from audifi_nft.adapters.holdings_pg import ViewHoldings
from audifi_nft.adapters.locker_cache import LockerCache
from audifi_nft.adapters.payments_chain import ChainPaymentChecker
from audifi_nft.adapters.shares_chain import ChainShares
from audifi_nft.application import NftApplication
from audifi_nft.distributions import Distributions, Distributor
from audifi_nft.escrow import EscrowChain, EscrowFollower
from audifi_nft.ipos import ChainPayments, Ipos, SharesChain
from audifi_nft.minting import Minter

CONTEXT_STATE_KEY = "nft_context"


@dataclass(slots=True)
class NftContext:
    settings: Settings
    storage: MediaStorage
    shares: SharesChain | None = None  # MasterShares on the process's chain unless given
    runtime: ServiceRuntime | None = None  # set when the runtime's store is open (app lifespan)
    minter: Minter | None = None  # runs in the app's lifespan
    chain_payments: ChainPayments | None = None  # the platform's token on its chain unless given
    chain_distributor: Distributor | None = None  # RevenueDistributor on its chain unless given
    escrow_chain: EscrowChain | None = None  # MilestoneEscrow on its chain unless given
    escrow: EscrowFollower | None = None  # runs in the app's lifespan
    # What time it is for the lockers (unlock dates): the wall clock, or a test's.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # Hot lockers' facts (adapters/locker_cache.py); None: every read asks the view.
    locker_cache: LockerCache | None = None

    @property
    def payments(self) -> ChainPayments:
        assert self.chain_payments is not None
        return self.chain_payments

    @property
    def pool(self) -> asyncpg.Pool:
        """The service database's pool, for its read models."""
        assert self.runtime is not None
        return self.runtime.pool

    def wake_minter(self) -> None:
        """Something waits to be minted now (a re-drive): the minter need not wait for its
        read model to say so."""
        if self.minter is not None:
            self.minter.wake()

    @property
    def store(self) -> EventStore[NftApplication]:
        assert self.runtime is not None
        return self.runtime.store

    @property
    def app(self) -> NftApplication:
        return self.store.app

    @property
    def group(self) -> GroupCommit:
        """The runtime's group commit: a hot IPO's purchases saved together."""
        assert self.runtime is not None
        return self.runtime.group_commit

    @property
    def distributions(self) -> Distributions:
        assert self.shares is not None
        return Distributions(
            self.store,
            ViewHoldings(self.pool, self.shares.custody_address),
            self.distributor,
        )

    @property
    def distributor(self) -> Distributor:
        assert self.chain_distributor is not None
        return self.chain_distributor

    @property
    def ipos(self) -> Ipos:
        assert self.shares is not None
        return Ipos(self.store, self.shares)


async def provide_nft(state: State) -> NftContext:
    context: NftContext = state[CONTEXT_STATE_KEY]
    if context.runtime is None:
        context.runtime = state[RUNTIME_STATE_KEY]
    if context.shares is None:
        context.shares = ChainShares(state[CHAIN_STATE_KEY])
    if context.chain_distributor is None:
        context.chain_distributor = ChainDistributor(state[CHAIN_STATE_KEY])
    if context.chain_payments is None:
        context.chain_payments = ChainPaymentChecker(
            state[CHAIN_STATE_KEY], confirmations=context.settings.chain_confirmations
        )
    return context


def is_admin(identity: Identity) -> bool:
    return identity.has_any("admin")


def is_artist(identity: Identity) -> bool:
    return identity.has_any("artist")
