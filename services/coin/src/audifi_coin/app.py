"""Wiring: settings and bus -> the coin service's Litestar app and background tasks.

Artist coins run on the platform's ArtistCoinFactory (each coin's Pool and Staking deployed by
coin's account); one indexer per live coin follows its three contracts.

The lottery runs on the platform's Lottery contract (`ChainLottery`, signing as coin, the
contract's operator) unless a test gives its twin; an indexer follows the contract's logs
into the rounds (tickets bought or burnt on the contract itself, and what the service issued,
reorg-safe) while the app serves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from audifi_kit.bus import Bus
from audifi_kit.chain.platform import CHAIN_STATE_KEY, PlatformChain
from audifi_kit.launch import AppSpec, service_app
from audifi_kit.runtime import RUNTIME_STATE_KEY, ServiceRuntime
from audifi_kit.settings import Settings
from audifi_kit.spec import ServiceSpec
from litestar import Litestar

from audifi_coin.api.coins import CoinsController
from audifi_coin.api.dependencies import CONTEXT_STATE_KEY, CoinContext, bind
from audifi_coin.api.lottery import LotteryAdminController, LotteryController
from audifi_coin.application import CoinApplication
from audifi_coin.coin_indexer import CoinIndexers
from audifi_coin.consumers import orders_consumer
from audifi_coin.lottery import Lottery, LotteryChain
from audifi_coin.lottery_indexer import INDEXER_NAME, lottery_indexer
from audifi_coin.outbox import outbox


def coin_spec(lottery: Callable[[], Awaitable[Lottery]] | None = None) -> ServiceSpec:
    """The service's spec; `lottery`: how its orders consumer reaches the lottery (an app's
    own; the module's `spec`, for tools that only read the store, never consumes)."""

    async def unavailable() -> Lottery:
        raise RuntimeError("the coin spec's consumer runs only inside a coin app")

    return ServiceSpec(
        name="coin",
        application=CoinApplication,
        outbox=outbox,
        consumers=(orders_consumer(lottery or unavailable),),
    )


spec = coin_spec()


def create_app(
    settings: Settings,
    bus: Bus,
    chain: PlatformChain | None = None,
    *,
    lottery_chain: LotteryChain | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Litestar:
    """`chain`: the process's shared chain (`audifi up`); unset, the service starts its own.
    `lottery_chain`: the Lottery's port (a test's twin: no indexer then); `clock`: the rounds'
    time (start and end dates), the wall's unless given."""
    context = CoinContext(settings=settings, lottery_chain=lottery_chain)
    if clock is not None:
        context.clock = clock

    @asynccontextmanager
    async def coins_following(app: Litestar) -> AsyncIterator[None]:
        """Each live coin's logs into its record, while the app serves (one indexer each)."""
        runtime: ServiceRuntime = app.state[RUNTIME_STATE_KEY]
        indexers = CoinIndexers(
            app.state[CHAIN_STATE_KEY],
            runtime.store,
            runtime.pool,
            settings,
            poll_interval=settings.poll_interval,
        )
        context.coin_indexers = indexers
        await indexers.start_all()
        try:
            yield
        finally:
            context.coin_indexers = None
            await indexers.stop()

    @asynccontextmanager
    async def lottery_following(app: Litestar) -> AsyncIterator[None]:
        """The Lottery's logs into the rounds, while the app serves (on the chain only)."""
        runtime: ServiceRuntime = app.state[RUNTIME_STATE_KEY]
        bind(context, app.state)
        bound.set()  # the orders consumer, started with the runtime, may use the lottery now
        if lottery_chain is not None:
            yield
            return
        indexer = await lottery_indexer(
            INDEXER_NAME,
            app.state[CHAIN_STATE_KEY],
            runtime.store,
            runtime.pool,
            settings,
            poll_interval=settings.poll_interval,
        )
        async with indexer.running("coin lottery indexer"):
            yield

    bound = asyncio.Event()

    async def the_lottery() -> Lottery:
        await asyncio.wait_for(bound.wait(), timeout=60)
        return context.lottery

    return service_app(
        coin_spec(the_lottery),
        settings,
        bus,
        route_handlers=[LotteryController, LotteryAdminController, CoinsController],
        lifespan=[lottery_following, coins_following],
        state={CONTEXT_STATE_KEY: context},
        chain=chain or PlatformChain(settings),
    )


app = AppSpec(name="coin", factory=create_app, uses_chain=True)
