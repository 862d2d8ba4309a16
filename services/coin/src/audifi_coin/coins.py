"""Artist coins' service layer: what a request asks, free of the web.

`Coins` deploys an artist's coin (the factory's `createCoin`, then its Pool against the
payment token and its Staking, each step recorded from its receipt so a retry resumes), reads
what the indexer recorded (balances, stakes, reserves, volume) for views and quotes, and
prepares the transactions a user signs in their own wallet (`PreparedTx`: to, data, value,
gas; the wallet adds nonce and fees): adding liquidity, swapping with a slippage bound,
staking, unstaking, claiming. The artist funds a reward period by sending coins to the
operator, which the service checks on chain (once per transaction) before the operator calls
`notifyRewardAmount`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from audifi_kit.chain.adapter import SignedTx
from audifi_kit.errors import BlockchainError, Conflict, Forbidden, ValidationFailed
from audifi_kit.eventstore import EventStore
from audifi_kit.values import user_id
from eth_utils import is_hex_address, to_checksum_address

from audifi_coin.application import CoinApplication
from audifi_coin.domain import amm
from audifi_coin.domain.coin import (
    COIN_DECIMALS,
    DEFAULT_SUPPLY,
    QUOTE_DECIMALS,
    STAKING_DURATION,
    ArtistCoin,
    CoinTerms,
)

BUY, SELL = "buy", "sell"  # buy: pay USDC for the coin; sell: the coin for USDC


@dataclass(frozen=True, slots=True)
class PreparedTx:
    """An unsigned transaction for the user's wallet: sign and send it as it is (the wallet
    fills in nonce and fees). `gas` is the node's estimate with a margin, or None when it
    depends on an earlier transaction of the same list (an approval) being mined first."""

    description: str
    chain_id: int
    sender: str
    to: str
    data: str
    value: int
    gas: int | None


@dataclass(frozen=True, slots=True)
class Created:
    address: str
    tx_hash: str
    block: int


@dataclass(frozen=True, slots=True)
class StakeFacts:
    earned: int
    reward_rate: int
    period_finish: int
    chain_time: int


class CoinChain(Protocol):
    """The factory, the per-coin Pool and Staking, and the payment token, as the service
    needs them (adapters/coin_chain.py)."""

    async def custody(self) -> str: ...

    async def chain_id(self) -> int: ...

    async def create_coin(self, artist_id: str, terms: CoinTerms) -> Created: ...

    async def create_pool(self, coin: str, symbol: str) -> Created: ...

    async def create_staking(self, coin: str, duration: int) -> Created: ...

    async def prepare(
        self, sender: str, steps: list[tuple[str, str, str, list[Any]]]
    ) -> list[PreparedTx]: ...

    async def allowance(self, token: str, owner: str, spender: str) -> int: ...

    async def stake_facts(self, staking: str, account: str) -> StakeFacts: ...

    async def check_funding(self, coin: str, tx_hash: str, amount: int) -> None: ...

    async def notify_reward(self, staking: str, coin: str, amount: int) -> str: ...

    def payment_token(self) -> str: ...

    async def custody_submit(
        self,
        kind: str,
        coin: ArtistCoin,
        amount: int,
        to: str | None,
        before_send: Callable[[SignedTx], Awaitable[None]],
    ) -> str: ...

    async def custody_outcome(
        self, kind: str, tx_hash: str, *, wait: bool = True
    ) -> CustodyOutcome | None: ...

    async def custody_resend(self, raw: str) -> None: ...


@dataclass(frozen=True, slots=True)
class CustodyOutcome:
    ok: bool
    received: int | None  # a claim's reward (from its log); None: the operation's amount
    reason: str | None = None


class Coins:
    def __init__(
        self,
        store: EventStore[CoinApplication] | Any,
        chain: CoinChain,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        started: Callable[[ArtistCoin], Any] | None = None,
    ) -> None:
        """`started(coin)`: told when a coin's contracts are all deployed (its indexer)."""
        self.store = store
        self.chain = chain
        self.clock = clock
        self.started = started

    @property
    def app(self) -> CoinApplication:
        return self.store.app  # type: ignore[no-any-return]

    async def coin(self, artist_id: str) -> ArtistCoin:
        return await self.store.call(self.app.coin, artist_id)  # type: ignore[no-any-return]

    # -- deployment ----------------------------------------------------------------------------

    async def deploy(
        self,
        artist_id: str,
        *,
        name: str,
        symbol: str,
        supply: int | None,
        wallet: str | None,
        actor_id: str,
        actor_is_admin: bool,
    ) -> ArtistCoin:
        """The artist's coin (by the artist or an admin), its whole supply to `wallet` (the
        artist's own) or, without one, to the platform's custody; then its pool and staking."""
        artist_id = user_id(artist_id, field="artistId")  # an account's id, as tokens carry it
        if actor_id != artist_id and not actor_is_admin:
            raise Forbidden("Only the artist (or an admin) deploys the artist's coin")
        recipient = _wallet(wallet, "walletAddress") if wallet else await self.chain.custody()
        terms = CoinTerms(name, symbol, DEFAULT_SUPPLY if supply is None else supply, recipient)
        coin: ArtistCoin = await self.store.call(
            self.app.request_coin,
            artist_id=artist_id,
            terms=terms,
            requested_by=actor_id,
            at=self.clock(),
        )
        return await self.resume(coin)

    async def resume(self, coin: ArtistCoin) -> ArtistCoin:
        """The deployment's next steps, each once (a step done and not recorded is found)."""
        artist_id = coin.artist_id
        if coin.address is None:
            made = await self.chain.create_coin(artist_id, coin.terms)
            coin = await self._record(artist_id, "coin", made)
        assert coin.address is not None
        if coin.pool is None:
            coin = await self._record(
                artist_id, "pool", await self.chain.create_pool(coin.address, coin.symbol)
            )
        if coin.staking is None:
            duration = int(STAKING_DURATION.total_seconds())
            coin = await self._record(
                artist_id, "staking", await self.chain.create_staking(coin.address, duration)
            )
        if self.started is not None:
            self.started(coin)
        return coin

    # -- custody: the signer acts for an account without a wallet ----------------------------

    async def custody_op(
        self,
        artist_id: str,
        *,
        op_id: str,
        kind: str,
        amount: int,
        actor_id: str,
        is_admin: bool,
        to: str | None = None,
    ) -> dict[str, Any]:
        """What AudiFi's custody signer does for the artist whose coins it holds (deployed
        without a wallet): stake, unstake, claim rewards, fund a reward period, withdraw to a
        wallet. Exactly once per `op_id`: the signed transaction is recorded before it is
        sent, so a retry after a crash sends that one again (or finds it mined)."""
        if actor_id != artist_id and not is_admin:
            raise Forbidden("Only the artist (or an admin) moves the artist's coins in custody")
        coin = await self.coin(artist_id)
        coin.require_live()
        if kind == "withdraw":
            to = _wallet(to, "walletAddress")
        if kind != "claim":
            _positive(amount, "amount")
        await self.store.call(
            self.app.change_coin,
            artist_id,
            "start_custody_op",
            op_id,
            kind,
            artist_id,
            amount,
            self.clock(),
        )
        return await self._run_custody(artist_id, op_id, to)

    async def _run_custody(self, artist_id: str, op_id: str, to: str | None) -> dict[str, Any]:
        coin = await self.coin(artist_id)
        op = coin.custody_ops[op_id]
        if op["status"] in ("done", "failed"):
            return {"op_id": op_id, **op}
        tx_hash = op["tx_hash"]
        outcome = None
        if tx_hash:  # signed by an earlier attempt: mined, or sent again (the same one)
            outcome = await self.chain.custody_outcome(op["kind"], tx_hash, wait=False)
            if outcome is None and op["raw"]:
                await self.chain.custody_resend(op["raw"])
                outcome = await self.chain.custody_outcome(op["kind"], tx_hash)
        if outcome is None:

            async def record(signed: SignedTx) -> None:
                await self.store.call(
                    self.app.change_coin,
                    artist_id,
                    "custody_op_signed",
                    op_id=op_id,
                    tx_hash=signed.tx_hash,
                    raw=signed.raw,
                )

            try:
                tx_hash = await self.chain.custody_submit(
                    op["kind"], coin, op["amount"], to, record
                )
            except BlockchainError as refused:  # refused before it was sent (the estimate)
                await self.store.call(
                    self.app.change_coin,
                    artist_id,
                    "custody_op_failed",
                    op_id,
                    reason=refused.message,
                    at=self.clock(),
                )
                raise
            outcome = await self.chain.custody_outcome(op["kind"], tx_hash)
        assert outcome is not None and tx_hash is not None
        if outcome.ok:
            received = op["amount"] if outcome.received is None else outcome.received
            await self.store.call(
                self.app.change_coin,
                artist_id,
                "custody_op_done",
                op_id,
                tx_hash=tx_hash,
                received=received,
                at=self.clock(),
            )
        else:
            await self.store.call(
                self.app.change_coin,
                artist_id,
                "custody_op_failed",
                op_id,
                reason=outcome.reason or "reverted",
                at=self.clock(),
            )
        coin = await self.coin(artist_id)
        return {"op_id": op_id, **coin.custody_ops[op_id]}

    async def _record(self, artist_id: str, role: str, made: Created) -> ArtistCoin:
        custody_for = None
        if role == "coin":
            coin = await self.coin(artist_id)
            if coin.recipient.lower() == (await self.chain.custody()).lower():
                custody_for = artist_id  # deployed without a wallet: held for the artist
        return await self.store.call(  # type: ignore[no-any-return]
            self.app.coin_contract_created,
            artist_id,
            role=role,
            address=made.address,
            tx_hash=made.tx_hash,
            block=made.block,
            custody_for=custody_for,
        )

    # -- reading -------------------------------------------------------------------------------

    async def quote(
        self, artist_id: str, side: str, amount_in: int, slippage_bps: int
    ) -> amm.Quote:
        coin = await self.coin(artist_id)
        coin.require_live()
        if side not in (BUY, SELL):
            raise ValidationFailed("side must be buy or sell", details={"field": "side"})
        if amount_in < 1:
            raise ValidationFailed("amount must be at least 1", details={"field": "amount"})
        reserve_in, reserve_out = (
            (coin.reserve_quote, coin.reserve_base)
            if side == BUY
            else (coin.reserve_base, coin.reserve_quote)
        )
        try:
            q = amm.quote(amount_in, reserve_in, reserve_out, slippage_bps=slippage_bps)
        except ValueError as exc:
            raise ValidationFailed(str(exc), details={"field": "slippageBps"}) from None
        if not q.fillable:
            raise Conflict(
                "The pool cannot fill this: no liquidity yet, or the amount is too small",
                code="INSUFFICIENT_LIQUIDITY",
                details={"reserveIn": str(reserve_in), "reserveOut": str(reserve_out)},
            )
        return q

    def volume_24h(self, coin: ArtistCoin) -> int:
        return coin.volume_since(self.clock() - timedelta(hours=24))

    async def stake_position(self, artist_id: str, wallet: str) -> dict[str, Any]:
        coin = await self.coin(artist_id)
        coin.require_live()
        assert coin.staking is not None
        wallet = _wallet(wallet, "walletAddress")
        facts = await self.chain.stake_facts(coin.staking, wallet)
        active = facts.chain_time < facts.period_finish
        return {
            "wallet": wallet,
            "staked": coin.staked.get(wallet, 0),
            "total_staked": coin.total_staked,
            "earned": facts.earned,
            "reward_rate": facts.reward_rate,
            "period_finish": facts.period_finish,
            "apr_bps": amm.apr_bps(facts.reward_rate, coin.total_staked, active=active),
        }

    # -- transactions for the user's wallet ----------------------------------------------------

    async def prepare_liquidity(
        self, artist_id: str, *, wallet: str, coins: int, usdc: int, actor_id: str, is_admin: bool
    ) -> list[PreparedTx]:
        """The pool's setup (its first deposit sets the price) and later adds, by the artist:
        approve both tokens, then addLiquidity (min shares 0 for the first, else 1 %)."""
        if actor_id != artist_id and not is_admin:
            raise Forbidden("Only the artist (or an admin) adds liquidity through AudiFi")
        coin = await self.coin(artist_id)
        coin.require_live()
        wallet = _wallet(wallet, "walletAddress")
        _positive(coins, "coinAmount")
        _positive(usdc, "usdcAmount")
        assert coin.pool is not None and coin.address is not None
        token = self.chain.payment_token()
        steps = await self._approvals(wallet, [(coin.address, coins), (token, usdc)], coin.pool)
        steps.append(
            ("Add liquidity to the pool", "Pool", coin.pool, ["addLiquidity", coins, usdc, 0])
        )
        return await self.chain.prepare(wallet, steps)

    async def prepare_swap(
        self,
        artist_id: str,
        *,
        wallet: str,
        side: str,
        amount_in: int,
        slippage_bps: int = 50,
        min_amount_out: int | None = None,
    ) -> tuple[amm.Quote, list[PreparedTx]]:
        """A swap at the pool's current reserves: refused on chain if less than the bound
        (`min_amount_out`, else the quote less `slippage_bps`) would come out."""
        wallet = _wallet(wallet, "walletAddress")
        q = await self.quote(artist_id, side, amount_in, slippage_bps)
        coin = await self.coin(artist_id)
        assert coin.pool is not None and coin.address is not None
        token_in = self.chain.payment_token() if side == BUY else coin.address
        bound = q.min_amount_out if min_amount_out is None else min_amount_out
        steps = await self._approvals(wallet, [(token_in, amount_in)], coin.pool)
        steps.append(
            (
                f"Swap ({side})",
                "Pool",
                coin.pool,
                ["swap", to_checksum_address(token_in), amount_in, bound, wallet],
            )
        )
        return q, await self.chain.prepare(wallet, steps)

    async def prepare_stake(self, artist_id: str, *, wallet: str, amount: int) -> list[PreparedTx]:
        coin = await self.coin(artist_id)
        coin.require_live()
        wallet = _wallet(wallet, "walletAddress")
        _positive(amount, "amount")
        assert coin.staking is not None and coin.address is not None
        held = coin.balances.get(wallet, 0)
        if held < amount:
            raise ValidationFailed(
                "The wallet holds fewer coins than that",
                code="INSUFFICIENT_BALANCE",
                details={"held": str(held), "amount": str(amount)},
            )
        steps = await self._approvals(wallet, [(coin.address, amount)], coin.staking)
        steps.append(("Stake", "Staking", coin.staking, ["stake", amount]))
        return await self.chain.prepare(wallet, steps)

    async def prepare_unstake(
        self, artist_id: str, *, wallet: str, amount: int, claim: bool = True
    ) -> list[PreparedTx]:
        coin = await self.coin(artist_id)
        coin.require_live()
        wallet = _wallet(wallet, "walletAddress")
        _positive(amount, "amount")
        assert coin.staking is not None
        staked = coin.staked.get(wallet, 0)
        if staked < amount:
            raise ValidationFailed(
                "The wallet has staked less than that",
                code="INSUFFICIENT_STAKE",
                details={"staked": str(staked), "amount": str(amount)},
            )
        steps = [("Unstake", "Staking", coin.staking, ["unstake", amount])]
        if claim:
            steps.append(("Claim the rewards earned", "Staking", coin.staking, ["claim"]))
        return await self.chain.prepare(wallet, steps)  # type: ignore[arg-type]

    async def _approvals(
        self, wallet: str, tokens: list[tuple[str, int]], spender: str
    ) -> list[tuple[str, str, str, list[Any]]]:
        steps: list[tuple[str, str, str, list[Any]]] = []
        for token, amount in tokens:
            if await self.chain.allowance(token, wallet, spender) < amount:
                steps.append(("Approve", "ERC20", token, ["approve", spender, amount]))
        return steps

    # -- rewards -------------------------------------------------------------------------------

    async def fund_rewards(
        self, artist_id: str, *, tx_hash: str, amount: int, actor_id: str, is_admin: bool
    ) -> str:
        """A reward period funded with `amount` coins the artist sent to the operator in
        `tx_hash` (checked on chain, once): the operator hands them to staking's
        `notifyRewardAmount`, spread over the next 30 days."""
        if actor_id != artist_id and not is_admin:
            raise Forbidden("Only the artist (or an admin) funds the coin's rewards")
        coin = await self.coin(artist_id)
        coin.require_live()
        _positive(amount, "amount")
        assert coin.staking is not None and coin.address is not None
        tx_hash = tx_hash.lower()
        known = coin.fundings.get(tx_hash)
        if known is None or known["notify_tx"] is None:
            await self.chain.check_funding(coin.address, tx_hash, amount)
        await self.store.call(
            self.app.claim_funding, artist_id, tx_hash=tx_hash, amount=amount, at=self.clock()
        )
        notify_tx = await self.chain.notify_reward(coin.staking, coin.address, amount)
        await self.store.call(
            self.app.funding_done, artist_id, tx_hash=tx_hash, notify_tx=notify_tx, at=self.clock()
        )
        return notify_tx


def units(amount: int, decimals: int) -> str:
    whole, part = divmod(amount, 10**decimals)
    return f"{whole}.{part:0{decimals}d}".rstrip("0").rstrip(".")


def coin_price(coin: ArtistCoin) -> str | None:
    return amm.price(coin.reserve_base, coin.reserve_quote, COIN_DECIMALS, QUOTE_DECIMALS)


def _wallet(value: str | None, field: str) -> str:
    if not isinstance(value, str) or not is_hex_address(value):
        raise ValidationFailed(
            f"{field} must be a 0x-prefixed 20-byte address", details={"field": field}
        )
    return to_checksum_address(value)


def _positive(value: int, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationFailed(
            f"{field} must be a whole number of base units above 0", details={"field": field}
        )
