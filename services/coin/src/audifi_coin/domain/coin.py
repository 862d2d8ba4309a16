"""AudiFi artist coins: one fixed-supply ERC-20 per artist, its liquidity pool against the
payment token (USDC) and its staking contract, and what the chain says of them.

`ArtistCoin` records the deployment the service carried out (the coin from the factory, then
its Pool and Staking, each step once: a retry resumes where a crash stopped) and, from the
indexer, every log of those three contracts (balances, stakes, the pool's reserves, LP supply,
swaps, reward periods): positions come from the chain, never from the service's arithmetic on
what it asked for. Each log is applied under its key and reverted by the same key when its
block leaves the chain (`apply_log` / `revert_log`: the effect of a log is a pure function of
it, so a revert is the same effect with the opposite sign).

Amounts are base units: the coin has 18 decimals (OpenZeppelin's ERC-20), USDC 6.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from audifi_kit.errors import Conflict, NotFound, ValidationFailed
from eventsourcing.domain import Aggregate, event

COIN_DECIMALS = 18
QUOTE_DECIMALS = 6
ONE_COIN = 10**COIN_DECIMALS
DEFAULT_SUPPLY = 1_000_000 * ONE_COIN
MAX_SUPPLY = 10**12 * ONE_COIN
STAKING_DURATION = timedelta(days=30)
REORG_WINDOW = 10_000  # blocks; each coin's indexer keeps as many (`keep_blocks`)
SWAPS_KEPT = timedelta(days=2)  # swaps remembered for the 24-hour volume
SYMBOL = re.compile(r"[A-Z]{3,8}")  # matched whole (fullmatch): no trailing newline slips by
MAX_NAME = 50
ZERO = "0x" + "00" * 20

COIN_NAMESPACE = uuid.UUID("6e2d1f4a-8b3c-4d5e-9f60-7a1b2c3d4e5f")
ADDRESS_NAMESPACE = uuid.UUID("c8f0a1b2-3d4e-4f50-8a6b-1c2d3e4f5a6b")

DEPLOYING, DEPLOYED, LIVE = "deploying", "deployed", "live"
CUSTODY_OPS = ("stake", "unstake", "claim", "fund", "withdraw")


class CoinNotFound(NotFound):
    code = "COIN_NOT_FOUND"
    default_message = "This artist has no coin"


class CoinExists(Conflict):
    code = "COIN_EXISTS"
    default_message = "This artist has a coin already: one coin per artist"


class RewardFundingUsed(Conflict):
    code = "TX_HASH_USED"
    default_message = "This transaction already funded a reward period"


class InsufficientCustody(ValidationFailed):
    code = "INSUFFICIENT_BALANCE"
    default_message = "Custody holds fewer coins than that for this account"


class CoinNotLive(Conflict):
    code = "COIN_NOT_LIVE"
    default_message = "The coin's pool and staking are not deployed yet"


def coin_uuid(artist_id: str) -> UUID:
    return uuid.uuid5(COIN_NAMESPACE, artist_id)


def address_uuid(address: str) -> UUID:
    return uuid.uuid5(ADDRESS_NAMESPACE, address.lower())


@dataclass(frozen=True, slots=True)
class CoinTerms:
    name: str
    symbol: str
    supply: int  # base units (18 decimals)
    recipient: str  # who receives the whole supply: the artist's wallet, or custody

    def check(self) -> None:
        problems = []
        if not SYMBOL.fullmatch(self.symbol):
            problems.append("symbol must be 3 to 8 upper-case letters (A-Z)")
        if not self.name.strip() or len(self.name) > MAX_NAME:
            problems.append(f"name must be 1 to {MAX_NAME} characters")
        if not ONE_COIN <= self.supply <= MAX_SUPPLY:
            problems.append(f"supply must be from 1 to {MAX_SUPPLY // ONE_COIN:,} coins")
        if problems:
            raise ValidationFailed("; ".join(problems), details={"problems": problems})


def log_effect(role: str, event_name: str, args: dict[str, Any]) -> dict[str, Any]:
    """What a log of the coin (`role` "coin"), its pool ("pool") or its staking ("staking")
    changes, as signed deltas: `balances` {address: delta} of the coin, `staked` {account:
    delta}, `reserve_base`, `reserve_quote`, `lp_supply` (the pool's LP shares minted or
    burnt), `volume_quote` (a swap's USDC side), `rewards` (a reward period funded). A swap's
    args carry `baseIn` (the coin was sold), which the indexer adds from `tokenIn`."""
    e: dict[str, Any] = {}
    if event_name == "Transfer" and role == "pool":  # LP shares minted or burnt
        if args["from"].lower() == ZERO:
            e["lp_supply"] = int(args["value"])
        elif args["to"].lower() == ZERO:
            e["lp_supply"] = -int(args["value"])
    elif event_name == "Transfer" and role == "coin":
        src, dst, value = args["from"], args["to"], int(args["value"])
        balances: dict[str, int] = {}
        if src.lower() != ZERO:
            balances[src] = balances.get(src, 0) - value
        if dst.lower() != ZERO:
            balances[dst] = balances.get(dst, 0) + value
        e["balances"] = balances
    elif event_name == "Staked":
        e["staked"] = {args["account"]: int(args["amount"])}
    elif event_name == "Unstaked":
        e["staked"] = {args["account"]: -int(args["amount"])}
    elif event_name == "LiquidityAdded":
        e["reserve_base"] = int(args["amountBase"])
        e["reserve_quote"] = int(args["amountQuote"])
    elif event_name == "LiquidityRemoved":
        e["reserve_base"] = -int(args["amountBase"])
        e["reserve_quote"] = -int(args["amountQuote"])
    elif event_name == "Swapped":
        amount_in, amount_out = int(args["amountIn"]), int(args["amountOut"])
        if args["baseIn"]:
            e["reserve_base"], e["reserve_quote"] = amount_in, -amount_out
            e["volume_quote"] = amount_out
        else:
            e["reserve_quote"], e["reserve_base"] = amount_in, -amount_out
            e["volume_quote"] = amount_in
    elif event_name == "RewardAdded":
        e["rewards"] = int(args["reward"])
        e["period_finish"] = int(args["periodFinish"])
    return e


class ArtistCoin(Aggregate):
    @event("Requested")
    def __init__(
        self, *, artist_id: str, terms: dict[str, Any], requested_by: str, at: datetime
    ) -> None:
        self.artist_id = artist_id
        self.name: str = terms["name"]
        self.symbol: str = terms["symbol"]
        self.supply: int = terms["supply"]
        self.recipient: str = terms["recipient"]
        self.requested_by = requested_by
        self.requested_at = at
        self.address: str | None = None
        self.pool: str | None = None
        self.staking: str | None = None
        self.deploy_block: int | None = None
        self.deploy_txs: dict[str, str] = {}
        # What the indexer saw (the chain's word):
        self.applied: dict[str, dict[str, Any]] = {}  # log key -> its effect
        self.balances: dict[str, int] = {}
        self.staked: dict[str, int] = {}
        self.reserve_base = 0
        self.reserve_quote = 0
        self.lp_supply = 0
        self.swaps: list[tuple[str, int, str]] = []  # (log key, quote volume, at ISO)
        self.rewards_added = 0
        self.period_finish = 0
        self.fundings: dict[str, dict[str, Any]] = {}  # artist's transfer -> amount, notify tx
        # Custody: what AudiFi's custody signer holds and has staked for accounts without a
        # wallet (the artist's supply, deployed without one), and its operations for them.
        self.custody: dict[str, int] = {}
        self.custody_staked: dict[str, int] = {}
        self.custody_ops: dict[str, dict[str, Any]] = {}

    @property
    def terms(self) -> CoinTerms:
        return CoinTerms(self.name, self.symbol, self.supply, self.recipient)

    @property
    def status(self) -> str:
        if self.address is None:
            return DEPLOYING
        if self.pool is None or self.staking is None:
            return DEPLOYED
        return LIVE

    @property
    def total_staked(self) -> int:
        return sum(self.staked.values())

    @property
    def holders(self) -> int:
        """Addresses holding any of the coin, the pool and staking contracts not counted."""
        contracts = {a.lower() for a in (self.pool, self.staking) if a}
        return sum(1 for a, b in self.balances.items() if b > 0 and a.lower() not in contracts)

    def volume_since(self, since: datetime) -> int:
        return sum(v for _, v, at in self.swaps if datetime.fromisoformat(at) >= since)

    def contracts(self) -> dict[str, str]:
        return {
            name: address
            for name, address in (
                ("coin", self.address),
                ("pool", self.pool),
                ("staking", self.staking),
            )
            if address is not None
        }

    # -- deployment (the service's steps, from their receipts) ---------------------------------

    @event("Deployed")
    def deployed(
        self, *, address: str, block: int, tx_hash: str, custody_for: str | None = None
    ) -> None:
        """`custody_for`: the account the supply is held for when custody received it."""
        self.address = address
        self.deploy_block = block
        self.deploy_txs["coin"] = tx_hash
        if custody_for is not None:
            self.custody[custody_for] = self.supply

    @event("PoolCreated")
    def pool_created(self, *, address: str, tx_hash: str) -> None:
        self.pool = address
        self.deploy_txs["pool"] = tx_hash

    @event("StakingCreated")
    def staking_created(self, *, address: str, tx_hash: str) -> None:
        self.staking = address
        self.deploy_txs["staking"] = tx_hash

    # -- reward periods the artist funded (their coins sent to the operator) -------------------

    def claim_funding(self, tx_hash: str, amount: int, at: datetime) -> bool:
        """The artist's transfer `tx_hash` of `amount` coins to the operator, verified, taken
        for a reward period once. False: taken before and not yet handed to staking (a retry
        after a crash: the operator hands it on; it holds those coins only once, so staking's
        pull of a second hand-over would fail). RewardFundingUsed if it funded one already."""
        known = self.fundings.get(tx_hash)
        if known is not None:
            if known["notify_tx"] is not None:
                raise RewardFundingUsed(details={"txHash": tx_hash})
            return False
        self._funding_claimed(tx_hash=tx_hash, amount=amount, at=at)
        return True

    @event("RewardFundingClaimed")
    def _funding_claimed(self, *, tx_hash: str, amount: int, at: datetime) -> None:
        self.fundings[tx_hash] = {"amount": amount, "notify_tx": None}

    def funded(self, *, tx_hash: str, notify_tx: str, at: datetime) -> None:
        """The claimed transfer was handed to staking in `notify_tx`."""
        if tx_hash not in self.fundings:
            raise Conflict("No such reward funding was claimed", code="FUNDING_NOT_CLAIMED")
        self._funded(tx_hash=tx_hash, notify_tx=notify_tx, at=at)

    @event("RewardFunded")
    def _funded(self, *, tx_hash: str, notify_tx: str, at: datetime) -> None:
        self.fundings[tx_hash]["notify_tx"] = notify_tx

    # -- custody: the signer's operations for an account without a wallet --------------------

    def start_custody_op(
        self,
        op_id: str,
        kind: str,
        account: str,
        amount: int,
        at: datetime,
        to: str | None = None,
    ) -> bool:
        """An operation the custody signer carries out for `account`: `stake`, `unstake`,
        `claim` (rewards), `fund` (a reward period from the account's coins) or `withdraw`
        (to a wallet). Its source is debited now (so two at once cannot spend one balance);
        `custody_op_done` credits its destination, `custody_op_failed` gives the source back.
        False: the operation exists already (a retry)."""
        if op_id in self.custody_ops:
            return False
        if kind not in CUSTODY_OPS:
            raise ValidationFailed(f"Unknown custody operation {kind!r}")
        if kind in ("stake", "fund", "withdraw"):
            held = self.custody.get(account, 0)
            if held < amount:
                raise InsufficientCustody(
                    details={"held": str(held), "amount": str(amount), "accountId": account}
                )
        if kind == "unstake":
            staked = self.custody_staked.get(account, 0)
            if staked < amount:
                raise InsufficientCustody(
                    "Custody has staked less than that for this account",
                    details={"staked": str(staked), "amount": str(amount)},
                )
        self._custody_op_started(
            op_id=op_id, kind=kind, account=account, amount=amount, to=to, at=at
        )
        return True

    @event("CustodyOpStarted")
    def _custody_op_started(
        self, *, op_id: str, kind: str, account: str, amount: int, to: str | None, at: datetime
    ) -> None:
        self.custody_ops[op_id] = {
            "kind": kind,
            "account": account,
            "amount": amount,
            "to": to,
            "status": "started",
            "tx_hash": None,
            "raw": None,
        }
        self._move_custody(kind, account, amount, source=True, sign=-1)

    @event("CustodyOpSigned")
    def custody_op_signed(self, *, op_id: str, tx_hash: str, raw: str) -> None:
        """The signed transaction, recorded before it is sent: a retry sends it again."""
        self.custody_ops[op_id].update(tx_hash=tx_hash, raw=raw, status="sent")

    def custody_op_done(self, op_id: str, *, tx_hash: str, received: int, at: datetime) -> bool:
        """Mined: `received` is what reached custody (a claim's reward; else the amount)."""
        op = self.custody_ops[op_id]
        if op["status"] in ("done", "failed"):
            return False
        self._custody_op_done(op_id=op_id, tx_hash=tx_hash, received=received, at=at)
        return True

    @event("CustodyOpDone")
    def _custody_op_done(self, *, op_id: str, tx_hash: str, received: int, at: datetime) -> None:
        op = self.custody_ops[op_id]
        op.update(status="done", tx_hash=tx_hash, raw=None)
        self._move_custody(op["kind"], op["account"], received, source=False, sign=1)

    def custody_op_failed(self, op_id: str, *, reason: str, at: datetime) -> bool:
        op = self.custody_ops[op_id]
        if op["status"] in ("done", "failed"):
            return False
        self._custody_op_failed(op_id=op_id, reason=reason, at=at)
        return True

    @event("CustodyOpFailed")
    def _custody_op_failed(self, *, op_id: str, reason: str, at: datetime) -> None:
        op = self.custody_ops[op_id]
        op.update(status="failed", reason=reason, raw=None)
        self._move_custody(op["kind"], op["account"], op["amount"], source=True, sign=1)

    def _move_custody(
        self, kind: str, account: str, amount: int, *, source: bool, sign: int
    ) -> None:
        """The book an operation takes from (`source`) or gives to."""
        book = {
            ("stake", True): self.custody,
            ("stake", False): self.custody_staked,
            ("unstake", True): self.custody_staked,
            ("unstake", False): self.custody,
            ("claim", False): self.custody,
            ("fund", True): self.custody,
            ("withdraw", True): self.custody,
        }.get((kind, source))
        if book is not None:
            book[account] = book.get(account, 0) + sign * amount

    def require_live(self) -> None:
        if self.status != LIVE:
            raise CoinNotLive(details={"artistId": self.artist_id, "status": self.status})

    # -- the chain's logs ----------------------------------------------------------------------

    def apply_log(
        self,
        key: str,
        role: str,
        event_name: str,
        args: dict[str, Any],
        at: datetime,
        block: int | None = None,
    ) -> bool:
        """A log of the coin, its pool or its staking (mined in `block`), once per key.
        False: known already or nothing to record. What a log did is remembered for
        `REORG_WINDOW` blocks (as many as the indexer keeps: a deeper reorganisation stops
        it), a swap for two days (the 24-hour volume): the coin's state stays bounded."""
        if key in self.applied:
            return False
        effect = log_effect(role, event_name, args)
        if not effect:
            return False
        if block is not None:
            effect["block"] = block
        self._log_applied(key=key, effect=effect, at=at)
        return True

    @event("LogApplied")
    def _log_applied(self, *, key: str, effect: dict[str, Any], at: datetime) -> None:
        self.applied[key] = effect
        self._effect(effect, 1)
        if "volume_quote" in effect:
            self.swaps.append((key, effect["volume_quote"], at.isoformat()))
        if "block" in effect:
            self._forget_before(effect["block"] - REORG_WINDOW, at - SWAPS_KEPT)

    def _forget_before(self, block: int, swapped: datetime) -> None:
        """Logs older than the reorganisation window can no longer be taken back: what they
        did is in the balances, and need not be remembered (a reward period's is kept: the
        latest period's end is worked out from them)."""
        old = [
            k
            for k, e in self.applied.items()
            if e.get("block", block) < block and "period_finish" not in e
        ]
        for k in old:
            del self.applied[k]
        cutoff = swapped.isoformat()
        self.swaps = [s for s in self.swaps if s[2] >= cutoff]

    def revert_log(self, key: str, at: datetime) -> bool:
        """The log's block left the chain: its effect undone."""
        if key not in self.applied:
            return False
        self._log_reverted(key=key, at=at)
        return True

    @event("LogReverted")
    def _log_reverted(self, *, key: str, at: datetime) -> None:
        effect = self.applied.pop(key)
        self._effect(effect, -1)
        self.swaps = [s for s in self.swaps if s[0] != key]

    def _effect(self, effect: dict[str, Any], sign: int) -> None:
        for address, delta in effect.get("balances", {}).items():
            self.balances[address] = self.balances.get(address, 0) + sign * delta
            if self.balances[address] == 0:
                del self.balances[address]
        for account, delta in effect.get("staked", {}).items():
            self.staked[account] = self.staked.get(account, 0) + sign * delta
            if self.staked[account] == 0:
                del self.staked[account]
        self.reserve_base += sign * effect.get("reserve_base", 0)
        self.reserve_quote += sign * effect.get("reserve_quote", 0)
        self.lp_supply += sign * effect.get("lp_supply", 0)
        self.rewards_added += sign * effect.get("rewards", 0)
        if "period_finish" in effect:  # the latest period still on the chain
            self.period_finish = max(
                (e["period_finish"] for e in self.applied.values() if "period_finish" in e),
                default=0,
            )


class CoinAddress(Aggregate):
    """Which artist's coin a contract address (the coin, its pool, its staking) belongs to."""

    @event("Linked")
    def __init__(self, *, address: str, artist_id: str, role: str) -> None:
        self.address = address
        self.artist_id = artist_id
        self.role = role
