"""Artist coins in memory: the aggregate's ledgers, the pool's arithmetic and the application.

What a holder sees: a fixed supply that no sequence of transfers or reorganisations makes or
loses, stakes and pool reserves that are what the chain's logs say (and are undone when their
block leaves the chain), quotes that are what Pool.sol pays, terms refused with a message
naming what is wrong, one coin per artist, and an artist's reward funding taken once.
"""

from __future__ import annotations

import re
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from math import isqrt
from typing import Any

import pytest
from audifi_coin.application import CoinApplication
from audifi_coin.bootstrap import in_memory
from audifi_coin.domain import amm
from audifi_coin.domain.coin import (
    DEPLOYED,
    DEPLOYING,
    LIVE,
    MAX_SUPPLY,
    ONE_COIN,
    ZERO,
    ArtistCoin,
    CoinExists,
    CoinNotFound,
    CoinTerms,
    RewardFundingUsed,
)
from audifi_kit.errors import ValidationFailed
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

T0 = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
SUPPLY = 1_000_000 * ONE_COIN
ARTIST = "artist-1"
ALICE = to_checksum_address("0xa11ce00000000000000000000000000000000a11")  # the recipient
BOB = to_checksum_address("0xb0b0000000000000000000000000000000000b0b")
CAROL = to_checksum_address("0xca201000000000000000000000000000000ca201")
COIN = to_checksum_address("0xc014000000000000000000000000000000000c01")
POOL = to_checksum_address("0x9001000000000000000000000000000000000901")
STAKING = to_checksum_address("0x57a40000000000000000000000000000000057a4")
USDC = to_checksum_address("0x05dc000000000000000000000000000000000bdc")
DEAD = to_checksum_address("0x000000000000000000000000000000000000dead")
PEOPLE = [ALICE, BOB, CAROL]
HOLDERS = [ALICE, BOB, CAROL, POOL, STAKING]
MINT = "0xmint:0"
MINIMUM_LIQUIDITY = 1000

ledger_settings = settings(
    max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
Log = tuple[str, str, dict[str, Any]]  # role, event, args


def terms(**changes: Any) -> CoinTerms:
    base: dict[str, Any] = {"name": "Aurora", "symbol": "AUR", "supply": SUPPLY}
    base["recipient"] = ALICE
    base.update(changes)
    return CoinTerms(**base)


def live_coin(app: CoinApplication, artist_id: str = ARTIST) -> ArtistCoin:
    """A coin deployed with its pool and staking, its whole supply minted to ALICE."""
    app.request_coin(artist_id=artist_id, terms=terms(), requested_by=artist_id, at=T0)
    for role, address in (("coin", COIN), ("pool", POOL), ("staking", STAKING)):
        app.coin_contract_created(
            artist_id, role=role, address=address, tx_hash=f"0x{role}", block=7
        )
    coin = app.coin(artist_id)
    assert coin.apply_log(MINT, "coin", "Transfer", transfer(ZERO, ALICE, SUPPLY), T0)
    app.save(coin)
    return coin


def transfer(src: str, dst: str, value: int) -> dict[str, Any]:
    return {"from": src, "to": dst, "value": value}


def state(coin: ArtistCoin) -> dict[str, Any]:
    """Everything the aggregate holds (its id, version and timestamps included)."""
    return {k: deepcopy(v) for k, v in vars(coin).items() if k != "_pending_events"}


def reloaded(app: CoinApplication, coin: ArtistCoin) -> ArtistCoin:
    """Saved, then rebuilt from the in-memory event store: the same state, field by field."""
    app.save(coin)
    again: ArtistCoin = app.repository.get(coin.id)
    assert again is not coin
    assert state(again) == state(coin)
    return again


@dataclass
class Model:
    """What the chain holds, kept by the test: balances, stakes, the pool."""

    balances: dict[str, int] = field(default_factory=lambda: {ALICE: SUPPLY})
    staked: dict[str, int] = field(default_factory=dict)
    reserve_base: int = 0
    reserve_quote: int = 0
    lp: dict[str, int] = field(default_factory=dict)  # LP shares, the locked ones included
    swaps: list[tuple[str, int, datetime]] = field(default_factory=list)

    def move(self, src: str, dst: str, value: int) -> None:
        assert 0 <= value <= self.balances.get(src, 0)  # only what the chain allows
        self.balances[src] = self.balances.get(src, 0) - value
        self.balances[dst] = self.balances.get(dst, 0) + value

    def has(self, who: str) -> int:
        return self.balances.get(who, 0)

    @property
    def lp_supply(self) -> int:
        return sum(self.lp.values())


class Chain:
    """The chain's side: each transaction's logs applied to the coin under their keys (as the
    indexer does), the model as it was before each, and reorganisations that revert the most
    recent transactions' logs, newest first."""

    def __init__(self, app: CoinApplication, coin: ArtistCoin) -> None:
        self.app = app
        self.coin = coin
        self.model = Model()
        self.txs: list[tuple[list[str], list[Log], Model]] = []
        self.blocks = 0
        self.now = T0

    def send(self, *logs: Log, keys: list[str] | None = None) -> list[str]:
        """A transaction's logs, applied; the caller then changes the model as the chain did."""
        self.blocks += 1
        self.now += timedelta(minutes=1)
        keys = keys or [f"0xblock{self.blocks}:{i}" for i in range(len(logs))]
        for key, (role, name, args) in zip(keys, logs, strict=True):
            assert self.coin.apply_log(key, role, name, args, self.now) is True
        self.txs.append((keys, list(logs), deepcopy(self.model)))
        return keys

    def reorg(self, depth: int) -> list[tuple[list[str], list[Log]]]:
        """The last `depth` transactions leave the chain; the model is as before them."""
        dropped = self.txs[len(self.txs) - min(depth, len(self.txs)) :]
        for keys, _, before in reversed(dropped):
            for key in reversed(keys):
                assert self.coin.revert_log(key, self.now) is True
                assert self.coin.revert_log(key, self.now) is False  # once
            self.model = before
        del self.txs[len(self.txs) - len(dropped) :]
        return [(keys, logs) for keys, logs, _ in dropped]

    def log_again(self, pick: int) -> None:
        """A transaction's logs delivered a second time (another poll, a restart): nothing."""
        if not self.txs:
            return
        keys, logs, _ = self.txs[pick % len(self.txs)]
        before = state(self.coin)
        for key, (role, name, args) in zip(keys, logs, strict=True):
            assert self.coin.apply_log(key, role, name, args, self.now) is False
        assert self.coin.apply_log(MINT, "coin", "Transfer", transfer(ZERO, BOB, 1), T0) is False
        assert state(self.coin) == before

    def reload(self) -> None:
        self.coin = reloaded(self.app, self.coin)


def check_supply(coin: ArtistCoin, model: Model) -> None:
    assert sum(coin.balances.values()) == SUPPLY
    assert min(coin.balances.values()) >= 0
    assert coin.balances == {a: b for a, b in model.balances.items() if b}


# -- 1. a coin's supply ------------------------------------------------------------------------

holder = st.integers(min_value=0, max_value=len(HOLDERS) - 1)
person = st.sampled_from(PEOPLE)
per_mille = st.integers(min_value=0, max_value=1000)
reorgs = st.tuples(st.just("reorg"), st.integers(1, 4), st.integers(0, 4))
agains = st.tuples(st.just("again"), st.integers(0, 50), st.just(0))
reloads = st.tuples(st.just("reload"), st.just(0), st.just(0))


@ledger_settings
@given(
    st.lists(
        st.one_of(
            *[st.tuples(st.just("transfer"), holder, holder, per_mille)] * 3,
            reorgs,
            agains,
            reloads,
        ),
        max_size=40,
    )
)
def test_any_transfers_and_reorganisations_keep_the_supply_the_chain_minted(ops) -> None:
    """From the mint, whatever is sent (only what the sender holds), reverted and mined again:
    the balances add up to the supply, none is negative, they are the model's, a log counts
    once, the event store rebuilds the same coin, and reverting it all leaves the mint."""
    app = in_memory()
    chain = Chain(app, live_coin(app))
    check_supply(chain.coin, chain.model)
    for kind, a, b, c in [(*op, 0)[:4] for op in ops]:
        if kind == "transfer":
            src, dst = HOLDERS[a], HOLDERS[b]
            value = chain.model.has(src) * c // 1000
            chain.send(("coin", "Transfer", transfer(src, dst, value)))
            chain.model.move(src, dst, value)
        elif kind == "reorg":
            dropped = chain.reorg(a)
            check_supply(chain.coin, chain.model)
            # the new fork holds the first `b` of them again (the same logs, the same keys)
            for keys, logs in dropped[:b]:
                chain.send(*logs, keys=keys)
                args = logs[0][2]
                chain.model.move(args["from"], args["to"], args["value"])
        elif kind == "again":
            chain.log_again(a)
        else:
            chain.reload()
        check_supply(chain.coin, chain.model)
    chain.reload()
    chain.reorg(len(chain.txs))
    assert chain.coin.balances == {ALICE: SUPPLY}
    assert set(chain.coin.applied) == {MINT}
    chain.reload()


def test_reverting_the_mint_leaves_no_holder_and_a_transfer_to_oneself_changes_nothing() -> None:
    app = in_memory()
    coin = live_coin(app)
    assert coin.apply_log("0xb:1", "coin", "Transfer", transfer(ALICE, ALICE, 5), T0)
    assert coin.balances == {ALICE: SUPPLY}
    assert coin.apply_log("0xb:2", "coin", "Transfer", transfer(ALICE, BOB, 5), T0)
    assert (coin.balances, coin.holders) == ({ALICE: SUPPLY - 5, BOB: 5}, 2)
    for key in ("0xb:2", "0xb:1", MINT):
        assert coin.revert_log(key, T0)
    assert (coin.balances, coin.applied, coin.holders) == ({}, {}, 0)
    assert reloaded(app, coin).balances == {}


# -- 2. the staking ledger ---------------------------------------------------------------------


@ledger_settings
@given(
    st.lists(
        st.one_of(
            *[st.tuples(st.just("stake"), person, per_mille)] * 2,
            *[st.tuples(st.just("unstake"), person, per_mille)] * 2,
            st.tuples(st.just("give"), person, person, per_mille),
            reorgs,
            agains,
            reloads,
        ),
        max_size=40,
    )
)
def test_stakes_are_the_staking_contracts_logs_and_a_reverted_one_is_undone(ops) -> None:
    """Staked / Unstaked (with the coin's transfers to and from staking): each account's
    stake is the model's, the total their sum and what the staking contract holds."""
    app = in_memory()
    chain = Chain(app, live_coin(app))
    model = chain.model
    for i, who in enumerate((BOB, CAROL)):  # ALICE hands out some coins first
        chain.send(("coin", "Transfer", transfer(ALICE, who, SUPPLY // (4 + i))))
        model.move(ALICE, who, SUPPLY // (4 + i))
    setup = len(chain.txs)
    for op in ops:
        model = chain.model
        kind = op[0]
        if kind == "stake":
            who, amount = op[1], chain.model.has(op[1]) * op[2] // 1000
            if amount == 0:
                continue  # Staking.stake reverts ZeroAmount
            chain.send(
                ("coin", "Transfer", transfer(who, STAKING, amount)),
                ("staking", "Staked", {"account": who, "amount": amount}),
            )
            model.move(who, STAKING, amount)
            model.staked[who] = model.staked.get(who, 0) + amount
        elif kind == "unstake":
            who, amount = op[1], model.staked.get(op[1], 0) * op[2] // 1000
            if amount == 0:
                continue
            chain.send(
                ("coin", "Transfer", transfer(STAKING, who, amount)),
                ("staking", "Unstaked", {"account": who, "amount": amount}),
            )
            model.move(STAKING, who, amount)
            model.staked[who] -= amount
        elif kind == "give":
            value = model.has(op[1]) * op[3] // 1000
            chain.send(("coin", "Transfer", transfer(op[1], op[2], value)))
            model.move(op[1], op[2], value)
        elif kind == "reorg":
            chain.reorg(min(op[1], len(chain.txs) - setup))
        elif kind == "again":
            chain.log_again(op[1])
        else:
            chain.reload()
        coin = chain.coin
        assert coin.staked == {a: s for a, s in chain.model.staked.items() if s}
        assert coin.total_staked == sum(chain.model.staked.values())
        assert coin.total_staked == coin.balances.get(STAKING, 0)
        assert min(coin.staked.values(), default=1) > 0
        check_supply(coin, chain.model)
    chain.reload()
    chain.reorg(len(chain.txs) - setup)
    assert (chain.coin.staked, chain.coin.total_staked) == ({}, 0)
    assert STAKING not in chain.coin.balances


def test_a_funded_reward_period_is_recorded_and_undone_by_its_revert() -> None:
    app = in_memory()
    coin = live_coin(app)
    finish = int((T0 + timedelta(days=30)).timestamp())
    added = {"reward": 1000 * ONE_COIN, "periodFinish": finish}
    assert coin.apply_log("0xr:1", "staking", "RewardAdded", added, T0)
    assert (coin.rewards_added, coin.period_finish) == (1000 * ONE_COIN, finish)
    assert coin.revert_log("0xr:1", T0)
    assert coin.rewards_added == 0


def test_a_reverted_reward_period_leaves_no_period_finish() -> None:
    coin = live_coin(in_memory())
    finish = int((T0 + timedelta(days=30)).timestamp())
    added = {"reward": 1000 * ONE_COIN, "periodFinish": finish}
    assert coin.apply_log("0xr:1", "staking", "RewardAdded", added, T0)
    assert coin.revert_log("0xr:1", T0)
    assert coin.period_finish == 0  # as before the log: a revert undoes its effect


# -- 3. the pool ledger ------------------------------------------------------------------------


def add_liquidity(chain: Chain, who: str, base_desired: int, quote_desired: int) -> bool:
    """Pool.addLiquidity as the chain runs it, with the logs it emits; False: it reverts."""
    m = chain.model
    if base_desired == 0 or quote_desired == 0:
        return False
    supply = m.lp_supply
    locked = 0
    if supply == 0:
        amount_base, amount_quote = base_desired, quote_desired
        shares = isqrt(amount_base * amount_quote)
        if shares <= MINIMUM_LIQUIDITY:
            return False
        shares -= MINIMUM_LIQUIDITY
        locked = MINIMUM_LIQUIDITY
    else:
        quote_optimal = base_desired * m.reserve_quote // m.reserve_base
        if quote_optimal <= quote_desired:
            amount_base, amount_quote = base_desired, quote_optimal
        else:
            amount_base = quote_desired * m.reserve_base // m.reserve_quote
            amount_quote = quote_desired
        shares = min(
            amount_base * supply // m.reserve_base, amount_quote * supply // m.reserve_quote
        )
    if shares == 0:
        return False
    logs: list[Log] = []
    if locked:
        logs.append(("pool", "Transfer", transfer(ZERO, DEAD, locked)))
    logs += [
        ("coin", "Transfer", transfer(who, POOL, amount_base)),
        ("pool", "Transfer", transfer(ZERO, who, shares)),
        (
            "pool",
            "LiquidityAdded",
            {
                "provider": who,
                "amountBase": amount_base,
                "amountQuote": amount_quote,
                "shares": shares,
            },
        ),
    ]
    chain.send(*logs)
    m.lp[DEAD] = m.lp.get(DEAD, 0) + locked
    m.lp[who] = m.lp.get(who, 0) + shares
    m.move(who, POOL, amount_base)
    m.reserve_base += amount_base
    m.reserve_quote += amount_quote
    return True


def remove_liquidity(chain: Chain, who: str, shares: int) -> bool:
    m = chain.model
    if shares == 0:
        return False
    supply = m.lp_supply
    amount_base = shares * m.reserve_base // supply
    amount_quote = shares * m.reserve_quote // supply
    chain.send(
        ("pool", "Transfer", transfer(who, ZERO, shares)),
        ("coin", "Transfer", transfer(POOL, who, amount_base)),
        (
            "pool",
            "LiquidityRemoved",
            {
                "provider": who,
                "amountBase": amount_base,
                "amountQuote": amount_quote,
                "shares": shares,
            },
        ),
    )
    m.lp[who] -= shares
    m.move(POOL, who, amount_base)
    m.reserve_base -= amount_base
    m.reserve_quote -= amount_quote
    return True


def swap(chain: Chain, who: str, base_in: bool, amount_in: int) -> int:
    """Pool.swap, the coin side's transfer and the Swapped log with `baseIn` as the indexer
    adds it (tokenIn is the coin); 0: it reverts."""
    m, coin = chain.model, chain.coin
    reserve_in, reserve_out = (
        (coin.reserve_base, coin.reserve_quote)
        if base_in
        else (coin.reserve_quote, coin.reserve_base)
    )
    out = amm.amount_out(amount_in, reserve_in, reserve_out)
    if amount_in == 0 or out == 0:
        return 0  # ZeroAmount / InsufficientLiquidity
    moved = transfer(who, POOL, amount_in) if base_in else transfer(POOL, who, out)
    swapped = {
        "trader": who,
        "tokenIn": COIN if base_in else USDC,
        "amountIn": amount_in,
        "amountOut": out,
        "to": who,
    }
    swapped["baseIn"] = str(swapped["tokenIn"]).lower() == COIN.lower()
    keys = chain.send(("coin", "Transfer", moved), ("pool", "Swapped", swapped))
    m.move(moved["from"], moved["to"], moved["value"])
    if base_in:
        m.reserve_base, m.reserve_quote = m.reserve_base + amount_in, m.reserve_quote - out
        m.swaps.append((keys[1], out, chain.now))
    else:
        m.reserve_quote, m.reserve_base = m.reserve_quote + amount_in, m.reserve_base - out
        m.swaps.append((keys[1], amount_in, chain.now))
    return out


@ledger_settings
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), person, per_mille, st.integers(0, 10**12)),
            st.tuples(st.just("remove"), person, per_mille, st.just(0)),
            *[st.tuples(st.just("sell"), person, per_mille, st.just(0))] * 2,
            *[st.tuples(st.just("buy"), person, st.just(0), st.integers(0, 10**12))] * 2,
            reorgs,
            agains,
            reloads,
        ),
        max_size=40,
    )
)
def test_the_pools_reserves_shares_and_volume_are_its_logs(ops) -> None:
    """LiquidityAdded / LiquidityRemoved / Swapped and the LP shares minted and burnt: the
    reserves and LP supply are the model's (and the coins the pool holds), a swap at the
    recorded reserves never lowers k, and the volume counts the swaps still on chain."""
    app = in_memory()
    chain = Chain(app, live_coin(app))
    for who in (BOB, CAROL):
        chain.send(("coin", "Transfer", transfer(ALICE, who, SUPPLY // 4)))
        chain.model.move(ALICE, who, SUPPLY // 4)
    setup = len(chain.txs)
    assert add_liquidity(chain, ALICE, 100_000 * ONE_COIN, 25_000 * 10**6)
    for kind, who, a, b in [(*op, 0, 0)[:4] for op in ops]:
        m = chain.model
        if kind == "add":
            add_liquidity(chain, who, m.has(who) * a // 1000, b)
        elif kind == "remove":
            remove_liquidity(chain, who, m.lp.get(who, 0) * a // 1000)
        elif kind in ("sell", "buy"):
            k = chain.coin.reserve_base * chain.coin.reserve_quote
            amount = m.has(who) * a // 1000 if kind == "sell" else b
            if swap(chain, who, kind == "sell", amount):
                assert chain.coin.reserve_base * chain.coin.reserve_quote >= k
        elif kind == "reorg":
            live = len(chain.txs) - setup
            dropped = chain.reorg(min(who, live))
            gone = {k for keys, _ in dropped for k in keys}
            assert not gone & {key for key, _, _ in chain.coin.swaps}
        elif kind == "again":
            chain.log_again(who)
        else:
            chain.reload()
        coin, m = chain.coin, chain.model
        assert (coin.reserve_base, coin.reserve_quote) == (m.reserve_base, m.reserve_quote)
        assert coin.lp_supply == m.lp_supply and min(m.lp.values(), default=0) >= 0
        assert coin.reserve_base == coin.balances.get(POOL, 0)
        check_supply(coin, m)
        assert [(k, v) for k, v, _ in coin.swaps] == [(k, v) for k, v, _ in m.swaps]
        assert coin.volume_since(T0) == sum(v for _, v, _ in m.swaps)
        cut = T0 + (chain.now - T0) / 2
        assert coin.volume_since(cut) == sum(v for _, v, at in m.swaps if at >= cut)
    chain.reload()
    chain.reorg(len(chain.txs) - setup)
    coin = chain.coin
    assert (coin.reserve_base, coin.reserve_quote, coin.lp_supply) == (0, 0, 0)
    assert (coin.swaps, coin.volume_since(T0)) == ([], 0)


def test_a_swap_counts_in_the_volume_until_its_block_leaves_the_chain() -> None:
    app = in_memory()
    chain = Chain(app, live_coin(app))
    assert add_liquidity(chain, ALICE, 1_000 * ONE_COIN, 250 * 10**6)
    assert chain.coin.lp_supply == isqrt(1_000 * ONE_COIN * 250 * 10**6)
    bought = swap(chain, ALICE, False, 10 * 10**6)  # 10 USDC for coins
    assert bought == amm.amount_out(10 * 10**6, 250 * 10**6, 1_000 * ONE_COIN)
    sold_for = swap(chain, ALICE, True, 5 * ONE_COIN)
    assert chain.coin.volume_since(T0) == 10 * 10**6 + sold_for
    assert chain.coin.volume_since(chain.now) == sold_for  # the later one only
    chain.reorg(1)
    assert chain.coin.volume_since(T0) == 10 * 10**6
    # an LP share moved between two holders changes no supply: nothing is recorded
    assert not chain.coin.apply_log("0xlp:1", "pool", "Transfer", transfer(ALICE, BOB, 5), T0)
    assert "0xlp:1" not in chain.coin.applied


# -- 4. the pool's arithmetic ------------------------------------------------------------------


def pool_sol_get_amount_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """Pool.getAmountOut, transcribed from Pool.sol (FEE_BPS = 30)."""
    if reserve_in == 0 or reserve_out == 0:
        return 0
    amount_in_with_fee = amount_in * (10_000 - 30)
    return amount_in_with_fee * reserve_out // (reserve_in * 10_000 + amount_in_with_fee)


amounts = st.integers(min_value=0, max_value=10**30)
reserves = st.integers(min_value=1, max_value=10**30)
amm_settings = settings(max_examples=100, deadline=None)


@amm_settings
@given(amounts, amounts, reserves, reserves)
def test_amount_out_is_pool_sols_and_never_drains_the_reserve(a, b, r_in, r_out) -> None:
    assert amm.amount_out(a, r_in, r_out) == pool_sol_get_amount_out(a, r_in, r_out)
    assert amm.amount_out(a, r_in, r_out) < r_out
    small, large = sorted((a, b))
    assert amm.amount_out(small, r_in, r_out) <= amm.amount_out(large, r_in, r_out)
    assert amm.amount_out(a, 0, r_out) == amm.amount_out(a, r_in, 0) == 0


def test_amount_out_by_hand_and_a_negative_amount_is_refused() -> None:
    # 1,000 in against 10,000 / 10,000: 1000 * 9970 * 10000 // (10000 * 10000 + 9_970_000)
    assert amm.amount_out(1_000, 10_000, 10_000) == 906
    assert amm.amount_out(0, 10_000, 10_000) == 0
    with pytest.raises(ValueError):
        amm.amount_out(-1, 10_000, 10_000)


@amm_settings
@given(amounts, reserves, reserves, st.integers(min_value=0, max_value=amm.MAX_SLIPPAGE_BPS))
def test_a_quote_is_what_the_pool_pays_less_the_slippage_asked(a, r_in, r_out, slip) -> None:
    q = amm.quote(a, r_in, r_out, slippage_bps=slip)
    assert q.amount_out == amm.amount_out(a, r_in, r_out)
    assert q.min_amount_out == q.amount_out * (10_000 - slip) // 10_000 <= q.amount_out
    assert q.fee == a * 30 // 10_000
    assert q.fillable == (q.amount_out > 0)
    if q.fillable:
        assert q.price_impact_bps >= 30  # the fee at least
    else:
        assert q.price_impact_bps == 0


@amm_settings
@given(amounts, amounts, reserves, reserves)
def test_the_price_impact_grows_with_the_trade(a, b, r_in, r_out) -> None:
    """A larger trade is never quoted a better price, save the one basis point the integer
    amount out may round (a trade paying at least 10^6 base units)."""
    small, large = sorted((a, b))
    q_small, q_large = amm.quote(small, r_in, r_out), amm.quote(large, r_in, r_out)
    if q_small.amount_out >= 10**6:
        assert q_large.price_impact_bps >= q_small.price_impact_bps - 1


def test_the_price_impact_of_growing_trades_in_a_real_pool() -> None:
    r_coin, r_usdc = 1_000_000 * ONE_COIN, 250_000 * 10**6
    sizes = (1, 10**3, 10**4, 10**5)  # coins sold into 1,000,000 coins / 250,000 USDC
    impacts = [amm.quote(n * ONE_COIN, r_coin, r_usdc).price_impact_bps for n in sizes]
    # the fee (30) and the trade's own move, 1 - 0.997 / (1 + 0.997 n / 10^6), rounded up
    assert impacts == [31, 40, 129, 934]
    with pytest.raises(ValueError):
        amm.quote(1, r_coin, r_usdc, slippage_bps=amm.MAX_SLIPPAGE_BPS + 1)


def test_the_price_is_the_quote_per_whole_coin_to_six_places() -> None:
    assert amm.price(1_000 * ONE_COIN, 250 * 10**6, 18, 6) == "0.250000"
    assert amm.price(3 * ONE_COIN, 10 * 10**6, 18, 6) == "3.333333"  # rounded down
    assert amm.price(0, 250 * 10**6, 18, 6) is None
    assert amm.price(1_000 * ONE_COIN, 0, 18, 6) is None


@amm_settings
@given(reserves, reserves)
def test_the_price_is_the_reserves_ratio_rounded_down_to_six_places(r_base, r_quote) -> None:
    shown = amm.price(r_base, r_quote, 18, 6)
    assert shown is not None and re.fullmatch(r"\d+\.\d{6}", shown)
    exact = Fraction(r_quote * 10**12, r_base)  # whole USDC per whole coin
    assert Fraction(shown) <= exact < Fraction(shown) + Fraction(1, 10**6)


def test_the_staking_apr() -> None:
    assert amm.apr_bps(10**18, 0, active=True) is None  # nothing staked to divide by
    assert amm.apr_bps(10**18, 5 * ONE_COIN, active=False) == 0  # the period is over
    assert amm.apr_bps(0, 0, active=False) == 0
    # 1 coin a second, a year long, over a year's worth of coins staked: 100 %
    assert amm.apr_bps(10**18, 31_536_000 * 10**18, active=True) == 10_000
    assert amm.apr_bps(10**18, 2 * 31_536_000 * 10**18, active=True) == 5_000


# -- 5. coin terms -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"symbol": "aur"}, "symbol"),
        ({"symbol": "Aur"}, "symbol"),
        ({"symbol": "AU1"}, "symbol"),
        ({"symbol": "AU"}, "symbol"),
        ({"symbol": "ABCDEFGHI"}, "symbol"),
        ({"symbol": ""}, "symbol"),
        ({"symbol": "AU R"}, "symbol"),
        ({"symbol": "ÄUR"}, "symbol"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 51}, "name"),
        ({"supply": 0}, "supply"),
        ({"supply": ONE_COIN - 1}, "supply"),
        ({"supply": MAX_SUPPLY + 1}, "supply"),
        ({"supply": -ONE_COIN}, "supply"),
    ],
)
def test_bad_terms_are_refused_naming_the_problem(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        terms(**changes).check()
    assert (refused.value.status_code, refused.value.code) == (400, "VALIDATION_ERROR")
    assert refused.value.message.startswith(named)
    assert [p.split()[0] for p in refused.value.details["problems"]] == [named]


def test_every_problem_of_the_terms_is_named_at_once() -> None:
    with pytest.raises(ValidationFailed) as refused:
        terms(symbol="a1", name="", supply=0).check()
    problems = refused.value.details["problems"]
    assert [p.split()[0] for p in problems] == ["symbol", "name", "supply"]
    assert refused.value.message == "; ".join(problems)
    assert "1,000,000,000,000 coins" in problems[2]


@pytest.mark.parametrize(
    "good",
    [
        terms(),
        terms(symbol="ABCDEFGH", name="x" * 50),
        terms(supply=ONE_COIN),
        terms(supply=MAX_SUPPLY),
        terms(name="Ünïcødé & Friends"),
    ],
)
def test_good_terms_pass(good: CoinTerms) -> None:
    good.check()


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="ABCXYZabz019 _-Ä", max_size=10))
def test_a_symbol_passes_exactly_when_it_is_three_to_eight_capitals(symbol: str) -> None:
    wanted = re.fullmatch(r"[A-Z]{3,8}", symbol) is not None
    try:
        terms(symbol=symbol).check()
        passed = True
    except ValidationFailed:
        passed = False
    assert passed == wanted


def test_a_symbol_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        terms(symbol="AUR\n").check()


# -- 6. one coin per artist --------------------------------------------------------------------


def test_one_coin_per_artist_from_request_to_live() -> None:
    app = in_memory()
    with pytest.raises(CoinNotFound) as missing:
        app.coin(ARTIST)
    assert (missing.value.status_code, missing.value.code) == (404, "COIN_NOT_FOUND")
    with pytest.raises(ValidationFailed):
        app.request_coin(artist_id=ARTIST, terms=terms(symbol="x"), requested_by=ARTIST, at=T0)
    asked = app.request_coin(artist_id=ARTIST, terms=terms(), requested_by=ARTIST, at=T0)
    assert (asked.status, asked.terms, asked.contracts()) == (DEPLOYING, terms(), {})
    # the same terms while it deploys: the same coin (a retry), nothing recorded again
    again = app.request_coin(artist_id=ARTIST, terms=terms(), requested_by=ARTIST, at=T0)
    assert (again.id, again.version) == (asked.id, asked.version)
    assert app.coin_artists() == [ARTIST]
    with pytest.raises(CoinExists) as other:
        app.request_coin(artist_id=ARTIST, terms=terms(symbol="OTHER"), requested_by=ARTIST, at=T0)
    assert (other.value.status_code, other.value.code) == (409, "COIN_EXISTS")
    assert other.value.details == {"artistId": ARTIST, "symbol": "AUR", "status": DEPLOYING}

    coin = app.coin_contract_created(ARTIST, role="coin", address=COIN, tx_hash="0xc", block=7)
    assert (coin.status, coin.address, coin.deploy_block) == (DEPLOYED, COIN, 7)
    with pytest.raises(CoinExists):  # deployed: the same terms are no retry any more
        app.request_coin(artist_id=ARTIST, terms=terms(), requested_by=ARTIST, at=T0)
    app.coin_contract_created(ARTIST, role="pool", address=POOL, tx_hash="0xp")
    coin = app.coin_contract_created(ARTIST, role="staking", address=STAKING, tx_hash="0xs")
    assert coin.status == LIVE
    assert coin.contracts() == {"coin": COIN, "pool": POOL, "staking": STAKING}
    assert coin.deploy_txs == {"coin": "0xc", "pool": "0xp", "staking": "0xs"}
    # a receipt recorded again changes nothing
    same = app.coin_contract_created(ARTIST, role="pool", address=POOL, tx_hash="0xp")
    assert same.version == coin.version
    for address, role in ((COIN, "coin"), (POOL, "pool"), (STAKING, "staking")):
        for spelled in (address, address.lower()):
            found = app.coin_of_address(spelled)
            assert found is not None
            assert (found[0].artist_id, found[0].id, found[1]) == (ARTIST, coin.id, role)
    assert app.coin_of_address(USDC) is None
    with pytest.raises(CoinExists) as live:
        app.request_coin(artist_id=ARTIST, terms=terms(), requested_by=ARTIST, at=T0)
    assert live.value.details["status"] == LIVE
    # another artist has a coin of their own
    theirs = app.request_coin(
        artist_id="artist-2", terms=terms(symbol="BEAT"), requested_by="admin", at=T0
    )
    assert theirs.id != coin.id and app.coin_artists() == [ARTIST, "artist-2"]


# -- 7. an artist's reward funding, taken once -------------------------------------------------


def test_a_reward_funding_transaction_is_taken_once() -> None:
    app = in_memory()
    live_coin(app)
    tx, amount = "0x" + "ab" * 32, 5_000 * ONE_COIN
    claimed = app.claim_funding(ARTIST, tx_hash=tx, amount=amount, at=T0)
    assert claimed.fundings == {tx: {"amount": amount, "notify_tx": None}}
    # a retry before the hand-over to staking resumes it: nothing recorded again
    assert app.coin(ARTIST).claim_funding(tx, amount, T0) is False
    resumed = app.claim_funding(ARTIST, tx_hash=tx, amount=amount, at=T0)
    assert resumed.version == claimed.version
    done = app.funding_done(ARTIST, tx_hash=tx, notify_tx="0xnotify", at=T0)
    assert done.fundings[tx] == {"amount": amount, "notify_tx": "0xnotify"}
    assert app.repository.get(done.id).fundings == done.fundings
    with pytest.raises(RewardFundingUsed) as used:
        app.claim_funding(ARTIST, tx_hash=tx, amount=amount, at=T0)
    assert (used.value.status_code, used.value.code) == (409, "TX_HASH_USED")
    assert used.value.details == {"txHash": tx}
    assert app.coin(ARTIST).version == done.version
    # another transaction funds another period
    other = "0x" + "cd" * 32
    assert app.coin(ARTIST).claim_funding(other, amount, T0) is True
    assert set(app.claim_funding(ARTIST, tx_hash=other, amount=1, at=T0).fundings) == {tx, other}


def test_a_busy_coin_remembers_only_the_reorganisation_window() -> None:
    """Logs older than the window the indexer keeps can no longer be taken back: the coin
    forgets what they did (the balances keep it), so its state stays bounded; a swap older
    than two days leaves the 24-hour volume's memory too."""
    app = in_memory()
    coin = live_coin(app)
    for n in range(1, 301):
        block = n * 100  # 300 transfers over 30,000 blocks
        at = T0 + timedelta(hours=n)
        sender, receiver = (ALICE, BOB) if n % 2 else (BOB, ALICE)
        assert coin.apply_log(
            f"0xt{n}:0", "coin", "Transfer", transfer(sender, receiver, ONE_COIN), at, block
        )
    assert coin.balances == {ALICE: SUPPLY}  # 150 there and 150 back
    kept = [k for k, e in coin.applied.items() if "block" in e]
    assert len(kept) == 101  # the transfers of blocks 20,000 to 30,000: the window
    assert coin.revert_log("0xt300:0", T0)  # recent: taken back
    assert not coin.revert_log("0xt1:0", T0)  # beyond the window: the indexer stops first
    assert coin.balances[BOB] == ONE_COIN
    coin.apply_log(
        "0xs1:0", "pool", "Swapped", {"amountIn": 10, "amountOut": 5, "baseIn": False}, T0, 30_100
    )
    coin.apply_log(
        "0xs2:0",
        "pool",
        "Swapped",
        {"amountIn": 7, "amountOut": 3, "baseIn": False},
        T0 + timedelta(days=3),
        30_200,
    )
    assert [s[0] for s in coin.swaps] == ["0xs2:0"] and coin.volume_since(T0) == 7
    app.save(coin)
    assert app.repository.get(coin.id).applied == coin.applied  # the same from its events
