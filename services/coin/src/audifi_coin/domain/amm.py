"""The pool's arithmetic (Pool.sol: Uniswap V2's constant product with a 0.3 % fee) and the
staking APR, for quotes and views: the same integer rounding as the contract, so a quote is
what a swap at those reserves pays out.
"""

from __future__ import annotations

from dataclasses import dataclass

FEE_BPS = 30  # 0.3 %
BPS = 10_000
SECONDS_PER_YEAR = 365 * 24 * 3600
MAX_SLIPPAGE_BPS = 5_000


def amount_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    """Pool.getAmountOut: what `amount_in` buys against these reserves, after the fee."""
    if amount_in < 0:
        raise ValueError("amount_in cannot be negative")
    if reserve_in == 0 or reserve_out == 0:
        return 0
    with_fee = amount_in * (BPS - FEE_BPS)
    return with_fee * reserve_out // (reserve_in * BPS + with_fee)


@dataclass(frozen=True, slots=True)
class Quote:
    amount_in: int
    amount_out: int
    fee: int  # of amount_in, in the token sold
    price_impact_bps: int  # how much worse than the pool's price before the trade
    min_amount_out: int  # with the slippage asked for

    @property
    def fillable(self) -> bool:
        return self.amount_out > 0


def quote(amount_in: int, reserve_in: int, reserve_out: int, *, slippage_bps: int = 50) -> Quote:
    """A swap of `amount_in` at these reserves: what comes out, the fee, the price impact
    (the execution price against the spot price, fee included, in basis points) and the least
    the caller accepts with `slippage_bps`."""
    if not 0 <= slippage_bps <= MAX_SLIPPAGE_BPS:
        raise ValueError(f"slippage must be from 0 to {MAX_SLIPPAGE_BPS} basis points")
    out = amount_out(amount_in, reserve_in, reserve_out)
    fee = amount_in * FEE_BPS // BPS
    if out == 0 or amount_in == 0:
        impact = 0
    else:
        # spot: reserve_out / reserve_in; executed: out / amount_in (both per unit sold)
        impact = BPS - (out * reserve_in * BPS) // (amount_in * reserve_out)
    return Quote(
        amount_in=amount_in,
        amount_out=out,
        fee=fee,
        price_impact_bps=max(0, impact),
        min_amount_out=out * (BPS - slippage_bps) // BPS,
    )


def price(
    reserve_base: int, reserve_quote: int, base_decimals: int, quote_decimals: int
) -> str | None:
    """The pool's spot price of one whole coin in the quote token, as decimal text (6
    places), or None before liquidity."""
    if reserve_base == 0 or reserve_quote == 0:
        return None
    scaled = reserve_quote * 10**base_decimals * 10**6 // (reserve_base * 10**quote_decimals)
    whole, part = divmod(scaled, 10**6)
    return f"{whole}.{part:06d}"


def apr_bps(reward_rate: int, total_staked: int, *, active: bool) -> int | None:
    """The yearly reward per staked coin the funded period pays, in basis points (rewards and
    stakes are the same coin, so no price enters). None: nothing staked to divide by; 0 when
    no period runs."""
    if not active:
        return 0
    if total_staked == 0:
        return None
    return reward_rate * SECONDS_PER_YEAR * BPS // total_staked
