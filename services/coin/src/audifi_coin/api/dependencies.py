"""What every coin handler works with, injected as the `coin` dependency."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from audifi_kit.chain.platform import CHAIN_STATE_KEY
from audifi_kit.eventstore import EventStore
from audifi_kit.http import Identity
from audifi_kit.keys import service_key
from audifi_kit.runtime import RUNTIME_STATE_KEY, ServiceRuntime
from audifi_kit.settings import Settings
from litestar.datastructures import State

from audifi_coin.adapters.coin_chain import ChainCoins
from audifi_coin.adapters.lottery_chain import ChainLottery
from audifi_coin.application import CoinApplication
from audifi_coin.coin_indexer import CoinIndexers
from audifi_coin.coins import CoinChain, Coins
from audifi_coin.lottery import Lottery, LotteryChain

CONTEXT_STATE_KEY = "coin_context"
SEED_KEY_ENV = "AUDIFI_LOTTERY_SEED_KEY"
SEED_KEY_FILE = "coin-lottery-seed.key"


@dataclass(slots=True)
class CoinContext:
    settings: Settings
    lottery_chain: LotteryChain | None = None  # the Lottery on the process's chain unless given
    runtime: ServiceRuntime | None = None  # set when the runtime's store is open
    # What time it is for rounds (start and end dates): the wall clock, or a test's.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    seed_key: bytes | None = None  # the rounds' seeds' key (AUDIFI_LOTTERY_SEED_KEY or a file)
    coin_chain: CoinChain | None = None  # the factory, pools and staking on the process's chain
    coin_indexers: CoinIndexers | None = None  # one per live coin, while the app serves

    @property
    def store(self) -> EventStore[CoinApplication]:
        assert self.runtime is not None
        return self.runtime.store

    @property
    def app(self) -> CoinApplication:
        return self.store.app

    @property
    def lottery(self) -> Lottery:
        assert self.lottery_chain is not None
        if self.seed_key is None:
            self.seed_key = service_key(self.settings, SEED_KEY_ENV, SEED_KEY_FILE)
        return Lottery(self.store, self.lottery_chain, self.seed_key, clock=self.clock)

    @property
    def coins(self) -> Coins:
        assert self.coin_chain is not None
        indexers = self.coin_indexers
        return Coins(
            self.store,
            self.coin_chain,
            clock=self.clock,
            started=indexers.started if indexers is not None else None,
        )


async def provide_coin(state: State) -> CoinContext:
    return bind(state[CONTEXT_STATE_KEY], state)


def bind(context: CoinContext, state: State | dict[str, Any]) -> CoinContext:
    """The context's runtime and chain ports from the app's state (unless a test gave them)."""
    if context.runtime is None:
        context.runtime = state[RUNTIME_STATE_KEY]
    if context.lottery_chain is None:
        context.lottery_chain = ChainLottery(
            state[CHAIN_STATE_KEY], confirmations=context.settings.chain_confirmations
        )
    if context.coin_chain is None:
        context.coin_chain = ChainCoins(
            state[CHAIN_STATE_KEY], confirmations=context.settings.chain_confirmations
        )
    return context


def is_admin(identity: Identity) -> bool:
    return identity.has_any("admin")
