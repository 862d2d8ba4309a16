import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

E18 = 10**18


def deploy_pool(chain):
    owner = chain.accounts[0]
    coin = chain.deploy("ArtistCoin", "Nova Coin", "NOVA", owner, 10**30, owner)
    usd = chain.deploy("ArtistCoin", "Test USD", "TUSD", owner, 10**30, owner)
    pool = chain.deploy("Pool", coin.address, usd.address, "NOVA/TUSD LP", "NOVA-LP")
    for trader in chain.accounts[:4]:
        if trader != owner:
            chain.send(coin.functions.transfer(trader, 10**27))
            chain.send(usd.functions.transfer(trader, 10**27))
        chain.send(coin.functions.approve(pool.address, 2**256 - 1), sender=trader)
        chain.send(usd.functions.approve(pool.address, 2**256 - 1), sender=trader)
    return coin, usd, pool


@pytest.fixture
def setup(chain):
    return deploy_pool(chain)


def amount_out(amount_in, reserve_in, reserve_out):
    with_fee = amount_in * 9_970
    return with_fee * reserve_out // (reserve_in * 10_000 + with_fee)


def reserves(pool):
    return pool.functions.reserveBase().call(), pool.functions.reserveQuote().call()


def test_first_liquidity_sets_the_price_and_locks_minimum_shares(chain, setup):
    coin, usd, pool = setup
    receipt = chain.send(pool.functions.addLiquidity(1_000 * E18, 4_000 * E18, 0))
    (event,) = chain.events(pool, "LiquidityAdded", receipt)
    shares = math.isqrt(1_000 * E18 * 4_000 * E18) - 1_000
    assert event.args.shares == shares
    assert pool.functions.balanceOf(chain.accounts[0]).call() == shares
    assert pool.functions.totalSupply().call() == shares + 1_000
    assert reserves(pool) == (1_000 * E18, 4_000 * E18)
    assert coin.functions.balanceOf(pool.address).call() == 1_000 * E18
    assert usd.functions.balanceOf(pool.address).call() == 4_000 * E18


def test_later_liquidity_is_added_at_the_current_price(chain, setup):
    _, _, pool = setup
    chain.send(pool.functions.addLiquidity(1_000 * E18, 4_000 * E18, 0))
    lp = chain.accounts[1]
    supply = pool.functions.totalSupply().call()
    # Offers too much quote: only the quote matching 100 base is taken.
    chain.send(pool.functions.addLiquidity(100 * E18, 1_000 * E18, 0), sender=lp)
    assert reserves(pool) == (1_100 * E18, 4_400 * E18)
    assert pool.functions.balanceOf(lp).call() == supply // 10
    with chain.reverts(pool, "InsufficientShares"):
        pool.functions.addLiquidity(E18, 4 * E18, 10**30).transact({"from": lp})


def test_swap_pays_out_with_a_fee_and_respects_minimum_out(chain, setup):
    coin, usd, pool = setup
    chain.send(pool.functions.addLiquidity(1_000 * E18, 4_000 * E18, 0))
    trader = chain.accounts[2]
    expected = amount_out(10 * E18, 1_000 * E18, 4_000 * E18)
    assert expected < 40 * E18 * 997 // 1000  # fee and price impact
    assert pool.functions.getAmountOut(10 * E18, 1_000 * E18, 4_000 * E18).call() == expected
    with chain.reverts(pool, "SlippageExceeded", expected, expected + 1):
        pool.functions.swap(coin.address, 10 * E18, expected + 1, trader).transact({"from": trader})
    before = usd.functions.balanceOf(trader).call()
    receipt = chain.send(
        pool.functions.swap(coin.address, 10 * E18, expected, trader), sender=trader
    )
    (event,) = chain.events(pool, "Swapped", receipt)
    assert event.args.amountOut == expected
    assert usd.functions.balanceOf(trader).call() - before == expected
    assert reserves(pool) == (1_010 * E18, 4_000 * E18 - expected)


def test_swap_refuses_unknown_tokens_and_empty_pools(chain, setup):
    coin, _, pool = setup
    with chain.reverts(pool, "InsufficientLiquidity"):
        pool.functions.swap(coin.address, E18, 0, chain.accounts[0]).transact()
    chain.send(pool.functions.addLiquidity(1_000 * E18, 4_000 * E18, 0))
    with chain.reverts(pool, "UnknownToken", pool.address):
        pool.functions.swap(pool.address, E18, 0, chain.accounts[0]).transact()


def test_remove_liquidity_returns_the_pro_rata_reserves(chain, setup):
    coin, usd, pool = setup
    chain.send(pool.functions.addLiquidity(1_000 * E18, 4_000 * E18, 0))
    owner = chain.accounts[0]
    shares = pool.functions.balanceOf(owner).call()
    supply = pool.functions.totalSupply().call()
    with chain.reverts(pool, "SlippageExceeded"):
        pool.functions.removeLiquidity(shares // 2, 10**30, 0).transact()
    coin_before = coin.functions.balanceOf(owner).call()
    usd_before = usd.functions.balanceOf(owner).call()
    chain.send(pool.functions.removeLiquidity(shares // 2, 0, 0))
    assert (
        coin.functions.balanceOf(owner).call() - coin_before == shares // 2 * 1_000 * E18 // supply
    )
    assert usd.functions.balanceOf(owner).call() - usd_before == shares // 2 * 4_000 * E18 // supply
    with chain.reverts(pool, "ERC20InsufficientBalance"):
        pool.functions.removeLiquidity(shares, 0, 0).transact()


operation = st.one_of(
    st.tuples(st.just("swap"), st.booleans(), st.integers(min_value=1, max_value=500 * E18)),
    st.tuples(st.just("add"), st.integers(1, 300 * E18), st.integers(1, 300 * E18)),
    st.tuples(st.just("remove"), st.integers(1, 100), st.just(0)),
)


def shares_for(base_desired, quote_desired, reserve_base, reserve_quote, supply):
    quote_optimal = base_desired * reserve_quote // reserve_base
    if quote_optimal <= quote_desired:
        amount_base, amount_quote = base_desired, quote_optimal
    else:
        amount_base, amount_quote = quote_desired * reserve_base // reserve_quote, quote_desired
    return min(amount_base * supply // reserve_base, amount_quote * supply // reserve_quote)


def test_k_never_decreases_on_swaps_nor_per_share_on_liquidity_changes(chain):
    """Swaps never lower reserveBase * reserveQuote; adding or removing liquidity never lowers
    k per share squared (the value behind each LP share). One deployment; each example starts
    from a snapshot of it."""
    coin, usd, pool = deploy_pool(chain)
    lp = chain.accounts[1]
    deployed = chain.w3.testing.snapshot()

    @settings(max_examples=8, deadline=None, derandomize=True)
    @given(
        seed_base=st.integers(10**6, 10**22),
        seed_quote=st.integers(10**6, 10**22),
        ops=st.lists(operation, min_size=1, max_size=12),
    )
    def run(seed_base, seed_quote, ops):
        chain.w3.testing.revert(deployed)
        assert pool.functions.totalSupply().call() == 0
        chain.send(pool.functions.addLiquidity(seed_base, seed_quote, 0), sender=lp)
        for op in ops:
            rb, rq = reserves(pool)
            k, supply = rb * rq, pool.functions.totalSupply().call()
            if op[0] == "swap":
                _, base_in, amount = op
                token, r_in, r_out = (coin, rb, rq) if base_in else (usd, rq, rb)
                if amount_out(amount, r_in, r_out) == 0:
                    with chain.reverts(pool, "InsufficientLiquidity"):
                        pool.functions.swap(token.address, amount, 0, lp).transact({"from": lp})
                    continue
                chain.send(pool.functions.swap(token.address, amount, 0, lp), sender=lp)
                rb2, rq2 = reserves(pool)
                assert rb2 * rq2 >= k
            elif op[0] == "add":
                _, base_amount, quote_amount = op
                if shares_for(base_amount, quote_amount, rb, rq, supply) == 0:
                    with chain.reverts(pool, "InsufficientShares"):
                        pool.functions.addLiquidity(base_amount, quote_amount, 0).transact(
                            {"from": lp}
                        )
                    continue
                chain.send(pool.functions.addLiquidity(base_amount, quote_amount, 0), sender=lp)
            else:
                held = pool.functions.balanceOf(lp).call()
                if held * op[1] // 100 == 0:
                    continue
                chain.send(pool.functions.removeLiquidity(held * op[1] // 100, 0, 0), sender=lp)
            rb2, rq2 = reserves(pool)
            supply2 = pool.functions.totalSupply().call()
            assert rb2 * rq2 * supply**2 >= k * supply2**2
            assert coin.functions.balanceOf(pool.address).call() == rb2
            assert usd.functions.balanceOf(pool.address).call() == rq2

    run()
