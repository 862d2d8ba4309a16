"""AudiFi artist coins over HTTP (`/coins/{artistId}/...`; the gateway adds `/api/v1`).

The seed's routes (DOMAIN.md §5.1.1): `POST /coins/{artistId}/deploy`, `GET
/coins/{artistId}`, `POST /coins/{artistId}/stake`, `GET /coins/{artistId}/pool`; and the
actions it names without paths (decided here): `POST .../unstake`, `POST .../liquidity` (the
seed's `setupLiquidityPool`: the first deposit sets the price), `GET .../quote?side=&amount=`,
`POST .../swap`, `GET .../stake?wallet=` (a wallet's stake, earned rewards and the APR the
funded period implies), `POST .../rewards` (the artist funds a reward period).

How a user signs (decided): AudiFi never holds a user's key. A request that moves the user's
tokens answers `transactions`: unsigned transactions from the wallet it names (to, data,
value, gas; chainId), in order, which the wallet signs and sends (an approval first when the
contract may not yet spend that token). Balances, stakes and the pool's reserves are the
chain's, read through each coin's indexer.

Amounts are base units as decimal strings (the coin has 18 decimals, USDC 6); requests may
give them as integers or strings of digits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import uuid4

import msgspec
from audifi_kit.errors import BlockchainError, Conflict, Forbidden, NotFound, ValidationFailed
from audifi_kit.fields import EvmAddress, TxHash, text_type
from audifi_kit.http import Identity
from audifi_kit.http.idempotency import IDEMPOTENT_OPT
from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from audifi_coin.api.amounts import BaseUnits, base_units
from audifi_coin.api.dependencies import CoinContext, is_admin, provide_coin
from audifi_coin.api.lottery import checked_wallet
from audifi_coin.coins import PreparedTx, coin_price
from audifi_coin.domain import amm
from audifi_coin.domain.coin import COIN_DECIMALS, ArtistCoin

Name = text_type(".{1,50}", min_length=1, max_length=50, description="The coin's name")
Symbol = text_type(
    "[A-Za-z0-9]{1,16}", min_length=1, max_length=16, description="3 to 8 upper-case letters"
)
Slippage = Annotated[int, msgspec.Meta(ge=0, le=amm.MAX_SLIPPAGE_BPS)]


class DeployRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """`supply` in base units (18 decimals; default 1,000,000 coins), all of it to
    `walletAddress` (the artist's own wallet; without one, to AudiFi's custody)."""

    name: Name
    symbol: Symbol
    supply: BaseUnits | None = None
    wallet_address: EvmAddress | None = None


class LiquidityRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    wallet_address: EvmAddress
    coin_amount: BaseUnits
    usdc_amount: BaseUnits


class SwapRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """`side` buy: pay `amountIn` USDC for coins; sell: `amountIn` coins for USDC. The swap
    fails on chain if less than `minAmountOut` (default: the quote less `slippageBps`)."""

    wallet_address: EvmAddress
    side: Literal["buy", "sell"]
    amount_in: BaseUnits
    slippage_bps: Slippage = 50
    min_amount_out: BaseUnits | None = None


class StakeRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    wallet_address: EvmAddress
    amount: BaseUnits


class RewardsRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """The artist's transfer of `amount` coins to the operator (`operator` of GET
    /coins/{artistId}) that funds the next 30 days of staking rewards."""

    transaction_hash: TxHash
    amount: BaseUnits


class CustodyRequest(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """What AudiFi's custody signer does with the coins it holds for the artist (a coin
    deployed without a wallet): `stake`, `unstake`, `claim` (the rewards earned; no amount),
    `fund` (a reward period) or `withdraw` (`amount` to `walletAddress`)."""

    action: Literal["stake", "unstake", "claim", "fund", "withdraw"]
    amount: BaseUnits = 0
    wallet_address: EvmAddress | None = None


class CustodyOpView(msgspec.Struct, rename="camel", kw_only=True):
    op_id: str
    action: str
    amount: str
    status: str  # done, failed (started or sent only while it runs)
    tx_hash: str | None
    wallet_address: str | None = None
    reason: str | None = None


class CustodyView(msgspec.Struct, rename="camel", kw_only=True):
    account_id: str
    held: str
    staked: str
    operations: list[CustodyOpView]


class TxView(msgspec.Struct, rename="camel", kw_only=True):
    description: str
    chain_id: int
    from_: str = msgspec.field(name="from")
    to: str
    data: str
    value: str
    gas: str | None


class TransactionsView(msgspec.Struct, rename="camel", kw_only=True):
    """Sign and send these in order from `from`."""

    transactions: list[TxView]
    quote: dict[str, Any] | None = None


class CoinView(msgspec.Struct, rename="camel", kw_only=True):
    artist_id: str
    name: str
    symbol: str
    status: str  # deploying, deployed, live
    decimals: int
    supply: str
    address: str | None
    pool: str | None
    staking: str | None
    operator: str  # where the artist sends reward coins
    holders: int
    price: str | None  # USDC per whole coin at the pool's reserves
    chain_id: int


class PoolView(msgspec.Struct, rename="camel", kw_only=True):
    address: str | None
    reserve_coin: str
    reserve_usdc: str
    price: str | None
    lp_supply: str
    volume_24h_usdc: str = msgspec.field(name="volume24hUsdc")
    fee_bps: int


class QuoteView(msgspec.Struct, rename="camel", kw_only=True):
    side: str
    amount_in: str
    amount_out: str
    fee: str
    fee_bps: int
    price_impact_bps: int
    min_amount_out: str
    slippage_bps: int


class BalanceView(msgspec.Struct, rename="camel", kw_only=True):
    """A wallet's coins and stake as the chain says (through the coin's indexer)."""

    wallet_address: str
    balance: str
    staked: str


class StakeView(msgspec.Struct, rename="camel", kw_only=True):
    wallet_address: str
    staked: str
    total_staked: str
    earned: str
    reward_rate_per_second: str
    period_finish: datetime | None
    apr_bps: int | None  # None: nothing staked yet


def custody_op_view(op_id: str, op: dict[str, Any]) -> CustodyOpView:
    return CustodyOpView(
        op_id=op_id,
        action=op["kind"],
        amount=str(op["amount"]),
        status=op["status"],
        tx_hash=op["tx_hash"],
        wallet_address=op.get("to"),
        reason=op.get("reason"),
    )


def tx_view(tx: PreparedTx) -> TxView:
    return TxView(
        description=tx.description,
        chain_id=tx.chain_id,
        from_=tx.sender,
        to=tx.to,
        data=tx.data,
        value=str(tx.value),
        gas=None if tx.gas is None else str(tx.gas),
    )


def quote_view(side: str, q: amm.Quote, slippage_bps: int) -> QuoteView:
    return QuoteView(
        side=side,
        amount_in=str(q.amount_in),
        amount_out=str(q.amount_out),
        fee=str(q.fee),
        fee_bps=amm.FEE_BPS,
        price_impact_bps=q.price_impact_bps,
        min_amount_out=str(q.min_amount_out),
        slippage_bps=slippage_bps,
    )


async def coin_view(coin: ArtistCoin, context: CoinContext) -> CoinView:
    chain = context.coin_chain
    assert chain is not None
    operator = await chain.custody()
    return CoinView(
        artist_id=coin.artist_id,
        name=coin.name,
        symbol=coin.symbol,
        status=coin.status,
        decimals=COIN_DECIMALS,
        supply=str(coin.supply),
        address=coin.address,
        pool=coin.pool,
        staking=coin.staking,
        operator=operator,
        holders=coin.holders,
        price=coin_price(coin),
        chain_id=await chain.chain_id(),
    )


class CoinsController(Controller):
    path = "/coins/{artist_id:str}"
    tags = ["coins"]
    dependencies = {"coin": Provide(provide_coin)}

    @post(
        "/deploy",
        status_code=201,
        opt={IDEMPOTENT_OPT: True},
        raises=(Forbidden, ValidationFailed, Conflict, BlockchainError),
    )
    async def deploy(
        self,
        artist_id: FromPath[str],
        data: JSONBody[DeployRequest],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> CoinView:
        """The artist's coin (the artist or an admin), its pool against USDC and its staking:
        one per artist (409 COIN_EXISTS after)."""
        made = await coin.coins.deploy(
            artist_id,
            name=data.name,
            symbol=data.symbol,
            supply=None if data.supply is None else base_units(data.supply, field="supply"),
            wallet=data.wallet_address,
            actor_id=identity.user_id,
            actor_is_admin=is_admin(identity),
        )
        return await coin_view(made, coin)

    @get("", raises=(NotFound,))
    async def details(
        self,
        artist_id: FromPath[str],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> CoinView:
        return await coin_view(await coin.coins.coin(artist_id), coin)

    @get("/pool", raises=(NotFound,))
    async def pool(
        self,
        artist_id: FromPath[str],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> PoolView:
        """The pool's reserves, price, LP supply and 24-hour volume, as the chain says."""
        coins = coin.coins
        c = await coins.coin(artist_id)
        return PoolView(
            address=c.pool,
            reserve_coin=str(c.reserve_base),
            reserve_usdc=str(c.reserve_quote),
            price=coin_price(c),
            lp_supply=str(c.lp_supply),
            volume_24h_usdc=str(coins.volume_24h(c)),
            fee_bps=amm.FEE_BPS,
        )

    @get("/quote", raises=(NotFound, ValidationFailed, Conflict))
    async def quote(
        self,
        artist_id: FromPath[str],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
        side: FromQuery[Literal["buy", "sell"]],
        amount: Annotated[str, QueryParameter(pattern="^[0-9]{1,78}$")],
        slippage_bps: Annotated[int, QueryParameter(name="slippageBps", ge=0, le=5000)] = 50,
    ) -> QuoteView:
        """What `amount` (base units of what is sold: USDC to buy, coins to sell) gets at the
        pool's reserves now: the amount out, the 0.3 % fee, the price impact and the least a
        swap accepts with `slippageBps`."""
        q = await coin.coins.quote(artist_id, side, int(amount), slippage_bps)
        return quote_view(side, q, slippage_bps)

    @post("/liquidity", status_code=200, raises=(Forbidden, NotFound, ValidationFailed, Conflict))
    async def liquidity(
        self,
        artist_id: FromPath[str],
        data: JSONBody[LiquidityRequest],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> TransactionsView:
        """The artist's deposit into the pool (the first sets the price)."""
        txs = await coin.coins.prepare_liquidity(
            artist_id,
            wallet=data.wallet_address,
            coins=base_units(data.coin_amount, field="coinAmount", minimum=1),
            usdc=base_units(data.usdc_amount, field="usdcAmount", minimum=1),
            actor_id=identity.user_id,
            is_admin=is_admin(identity),
        )
        return TransactionsView(transactions=[tx_view(t) for t in txs])

    @post("/swap", status_code=200, raises=(NotFound, ValidationFailed, Conflict))
    async def swap(
        self,
        artist_id: FromPath[str],
        data: JSONBody[SwapRequest],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> TransactionsView:
        q, txs = await coin.coins.prepare_swap(
            artist_id,
            wallet=data.wallet_address,
            side=data.side,
            amount_in=base_units(data.amount_in, field="amountIn", minimum=1),
            slippage_bps=data.slippage_bps,
            min_amount_out=None
            if data.min_amount_out is None
            else base_units(data.min_amount_out, field="minAmountOut"),
        )
        view = quote_view(data.side, q, data.slippage_bps)
        return TransactionsView(
            transactions=[tx_view(t) for t in txs], quote=msgspec.to_builtins(view)
        )

    @post("/stake", status_code=200, raises=(NotFound, ValidationFailed, Conflict))
    async def stake(
        self,
        artist_id: FromPath[str],
        data: JSONBody[StakeRequest],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> TransactionsView:
        txs = await coin.coins.prepare_stake(
            artist_id,
            wallet=data.wallet_address,
            amount=base_units(data.amount, field="amount", minimum=1),
        )
        return TransactionsView(transactions=[tx_view(t) for t in txs])

    @post("/unstake", status_code=200, raises=(NotFound, ValidationFailed, Conflict))
    async def unstake(
        self,
        artist_id: FromPath[str],
        data: JSONBody[StakeRequest],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> TransactionsView:
        """Unstake `amount` and claim the rewards earned, as two transactions."""
        txs = await coin.coins.prepare_unstake(
            artist_id,
            wallet=data.wallet_address,
            amount=base_units(data.amount, field="amount", minimum=1),
        )
        return TransactionsView(transactions=[tx_view(t) for t in txs])

    @get("/balances/{wallet_address:str}", raises=(NotFound, ValidationFailed))
    async def balance(
        self,
        artist_id: FromPath[str],
        wallet_address: FromPath[str],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> BalanceView:
        """The seed's "token balance queries": a wallet's coins and its stake."""
        c = await coin.coins.coin(artist_id)
        wallet = checked_wallet(wallet_address)
        return BalanceView(
            wallet_address=wallet,
            balance=str(c.balances.get(wallet, 0)),
            staked=str(c.staked.get(wallet, 0)),
        )

    @get("/stake", raises=(NotFound, ValidationFailed, Conflict))
    async def stake_position(
        self,
        artist_id: FromPath[str],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
        wallet: FromQuery[str],
    ) -> StakeView:
        p = await coin.coins.stake_position(artist_id, wallet)
        finish = p["period_finish"]
        return StakeView(
            wallet_address=p["wallet"],
            staked=str(p["staked"]),
            total_staked=str(p["total_staked"]),
            earned=str(p["earned"]),
            reward_rate_per_second=str(p["reward_rate"]),
            period_finish=datetime.fromtimestamp(finish, UTC) if finish else None,
            apr_bps=p["apr_bps"],
        )

    @post(
        "/custody",
        status_code=200,
        opt={IDEMPOTENT_OPT: True},
        raises=(Forbidden, NotFound, ValidationFailed, Conflict, BlockchainError),
    )
    async def custody(
        self,
        artist_id: FromPath[str],
        data: JSONBody[CustodyRequest],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> CustodyOpView:
        """The custody signer's operation for the artist, carried out and mined before the
        answer (exactly once: send an `Idempotency-Key` to retry one safely)."""
        op = await coin.coins.custody_op(
            artist_id,
            op_id=str(uuid4()),
            kind=data.action,
            amount=base_units(data.amount, field="amount"),
            actor_id=identity.user_id,
            is_admin=is_admin(identity),
            to=data.wallet_address,
        )
        return custody_op_view(op["op_id"], op)

    @get("/custody", raises=(Forbidden, NotFound))
    async def custody_book(
        self,
        artist_id: FromPath[str],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> CustodyView:
        """What custody holds and has staked for the artist, and its operations."""
        if identity.user_id != artist_id and not is_admin(identity):
            raise Forbidden("Only the artist (or an admin) reads the artist's custody")
        c = await coin.coins.coin(artist_id)
        return CustodyView(
            account_id=artist_id,
            held=str(c.custody.get(artist_id, 0)),
            staked=str(c.custody_staked.get(artist_id, 0)),
            operations=[custody_op_view(i, op) for i, op in c.custody_ops.items()],
        )

    @post(
        "/rewards",
        status_code=200,
        opt={IDEMPOTENT_OPT: True},
        raises=(Forbidden, NotFound, ValidationFailed, Conflict, BlockchainError),
    )
    async def rewards(
        self,
        artist_id: FromPath[str],
        data: JSONBody[RewardsRequest],
        identity: NamedDependency[Identity],
        coin: NamedDependency[CoinContext],
    ) -> dict[str, str]:
        """A reward period funded with the coins the artist sent to the operator (checked
        on chain, each transaction once: 409 TX_HASH_USED after)."""
        tx = await coin.coins.fund_rewards(
            artist_id,
            tx_hash=data.transaction_hash,
            amount=base_units(data.amount, field="amount", minimum=1),
            actor_id=identity.user_id,
            is_admin=is_admin(identity),
        )
        return {"notifyTransaction": tx, "amount": str(base_units(data.amount, field="amount"))}
