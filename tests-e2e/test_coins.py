"""Artist coins end to end, through the gateway only (and the development chain node, as a
wallet reaches it): an artist signed in with their wallet deploys their coin (a second deploy
is refused), seeds its pool against test USDC; a fan swaps USDC for coins through the quote
and a prepared transaction the fan's own key signs, stakes them; the artist funds a reward
period by sending coins to the operator (a reused transaction is refused), the fan's earned
rewards grow block by block; the fan unstakes and claims, and holds the coins back and more.

The development node mines a block per transaction and none otherwise, and a block's
timestamp is at least its parent's plus a second: a tiny transfer between the test's own
wallets moves the chain (and the rewards' clock) on, never a fixed sleep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from audifi_kit.testing import eventually_sync
from eth_account import Account
from eth_account.messages import encode_defunct
from platform_processes import Platform

USDC = 10**6  # test USDC (DevUSD): 6 decimals
COIN = 10**18  # an artist coin: 18 decimals
REWARDS = 30_000 * COIN  # one reward period: 30 days


def _genesis_key(n: int) -> str:
    """eth-tester's funded genesis accounts have keys 1, 2, 3...; 1-9 sign for the platform's
    services (the deployer, nft, coin, payment...), 10 is nobody's: this test's funder."""
    return "0x" + n.to_bytes(32, "big").hex()


FUNDER = _genesis_key(10)
DEV_USD_OWNER = _genesis_key(4)  # payment's account, DevUSD's owner in the development chain


class Chain:
    """The development chain node as a wallet reaches it: JSON-RPC, the deployment's
    addresses, transactions signed with the test's own keys."""

    def __init__(self, platform: Platform) -> None:
        from audifi_kit.chain.platform import artifact
        from web3 import Web3

        self.w3 = Web3(Web3.HTTPProvider(platform.url("chain"), request_kwargs={"timeout": 30}))
        deployment = httpx.get(f"{platform.url('chain')}/deployment").json()
        self.usdc = self.w3.eth.contract(
            address=deployment["paymentToken"], abi=artifact("DevUSD").abi
        )
        self.coin_abi = artifact("ArtistCoin").abi

    def coin(self, address: str) -> Any:
        return self.w3.eth.contract(address=address, abi=self.coin_abi)

    def send(self, key: str, call: Any) -> Any:
        """A contract call signed by `key`, mined; its receipt."""
        account = Account.from_key(key)
        return self._signed(account, call.build_transaction(self._filled(account, {})))

    def pay(self, key: str, to: str, value: int) -> Any:
        """Native coin from `key`'s account to `to`, mined; its receipt."""
        account = Account.from_key(key)
        return self._signed(account, self._filled(account, {"to": to, "value": value}))

    def make_block(self) -> None:
        """One more block, as any wallet's transaction makes one."""
        self.pay(FUNDER, Account.from_key(FUNDER).address, 0)

    def sign_prepared(self, key: str, prepared: list[dict[str, Any]]) -> list[Any]:
        """What a wallet does with the service's prepared transactions, in order: keeps `to`,
        `data`, `value` and `gas` (estimating it only where the service could not: after an
        approval not yet mined), fills in nonce, chain id and gas price, signs and sends."""
        account = Account.from_key(key)
        receipts = []
        for p in prepared:
            assert (p["from"], p["chainId"]) == (account.address, self.w3.eth.chain_id), p
            tx = self._filled(account, {"to": p["to"], "data": p["data"], "value": int(p["value"])})
            tx["gas"] = int(p["gas"]) if p["gas"] is not None else self.w3.eth.estimate_gas(tx)
            receipts.append(self._signed(account, tx))
        return receipts

    def _filled(self, account: Any, tx: dict[str, Any]) -> dict[str, Any]:
        return {
            **tx,
            "from": account.address,
            "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": self.w3.eth.chain_id,
            "gasPrice": self.w3.eth.gas_price,
        }

    def _signed(self, account: Any, tx: dict[str, Any]) -> Any:
        if "gas" not in tx:
            tx["gas"] = self.w3.eth.estimate_gas(tx)
        signed = account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        assert receipt["status"] == 1, receipt
        return receipt


def _wallet(chain: Chain, usdc: int) -> tuple[str, str]:
    """A fresh wallet (its key and address): gas from the funder, `usdc` test USDC minted by
    DevUSD's owner."""
    account = Account.create()
    chain.pay(FUNDER, account.address, 10**17)
    chain.send(DEV_USD_OWNER, chain.usdc.functions.mint(account.address, usdc))
    return account.key.to_0x_hex(), account.address


def _sign_in_with_wallet(platform: Platform, key: str) -> tuple[dict[str, str], str]:
    """Signed in at auth with the wallet's signature: the bearer headers and the account id."""
    wallet = Account.from_key(key)
    challenge = httpx.post(
        f"{platform.gateway}/auth/request-challenge", json={"walletAddress": wallet.address}
    ).json()["challenge"]
    signature = wallet.sign_message(encode_defunct(text=challenge)).signature.hex()
    signed_in = httpx.post(
        f"{platform.gateway}/auth/verify-signature",
        json={"walletAddress": wallet.address, "signature": signature, "challenge": challenge},
    )
    assert signed_in.status_code == 200, signed_in.text
    headers = {"Authorization": f"Bearer {signed_in.json()['token']}"}
    me = httpx.get(f"{platform.gateway}/users/me", headers=headers)
    assert me.status_code == 200, me.text
    return headers, me.json()["id"]


def _error(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["error"]["code"]


def test_an_artist_coin_from_deploy_to_a_fan_unstaking_with_rewards(platform: Platform) -> None:
    gw, chain = platform.gateway, Chain(platform)
    artist_key, artist_wallet = _wallet(chain, 10_000 * USDC)
    fan_key, fan_wallet = _wallet(chain, 1_000 * USDC)
    artist, artist_id = _sign_in_with_wallet(platform, artist_key)
    fan, _ = _sign_in_with_wallet(platform, fan_key)
    base = f"{gw}/coins/{artist_id}"

    def until(path: str, ready: Callable[[dict], bool], what: str) -> dict:
        """GET `path` (as the fan) until `ready(body)`: the coin's indexer follows the chain
        in the background, so a block is made on top of the wallet's last one first."""
        chain.make_block()

        def answered() -> dict | None:
            answer = httpx.get(f"{base}{path}", headers=fan)
            assert answer.status_code == 200, answer.text
            return answer.json() if ready(answer.json()) else None

        return eventually_sync(answered, within=30, every=0.25, what=what)

    # Deploy: the artist's own account, their whole supply to their wallet; once only.
    request = {"name": "Luna Coin", "symbol": "LUNA", "walletAddress": artist_wallet}
    not_theirs = httpx.post(f"{base}/deploy", json=request, headers=fan)
    assert _error(not_theirs) == (403, "FORBIDDEN")
    made = httpx.post(f"{base}/deploy", json=request, headers=artist, timeout=60)
    assert made.status_code == 201, made.text
    coin = made.json()
    assert (coin["artistId"], coin["status"], coin["symbol"]) == (artist_id, "live", "LUNA")
    assert coin["supply"] == str(10**6 * COIN) and coin["chainId"] == chain.w3.eth.chain_id
    assert coin["address"] and coin["pool"] and coin["staking"]
    again = httpx.post(f"{base}/deploy", json=request, headers=artist)
    assert _error(again) == (409, "COIN_EXISTS")
    until(f"/balances/{artist_wallet}", lambda b: b["balance"] == str(10**6 * COIN), "supply")

    # The artist seeds the pool: 100,000 coins against 10,000 USDC (0.10 USDC a coin).
    seed = {
        "walletAddress": artist_wallet,
        "coinAmount": str(100_000 * COIN),
        "usdcAmount": str(10_000 * USDC),
    }
    liquidity = httpx.post(f"{base}/liquidity", json=seed, headers=artist)
    assert liquidity.status_code == 200, liquidity.text
    txs = liquidity.json()["transactions"]
    assert [t["description"] for t in txs] == ["Approve", "Approve", "Add liquidity to the pool"]
    chain.sign_prepared(artist_key, txs)
    pool = until("/pool", lambda p: p["reserveUsdc"] == str(10_000 * USDC), "the pool seeded")
    assert (pool["reserveCoin"], pool["price"], pool["feeBps"]) == (
        str(100_000 * COIN),
        "0.100000",
        30,
    )
    assert pool["address"] == coin["pool"] and int(pool["lpSupply"]) > 0

    # The fan buys with 100 USDC: the quote, then the swap prepared for and signed by the fan.
    quote = httpx.get(f"{base}/quote", params={"side": "buy", "amount": 100 * USDC}, headers=fan)
    assert quote.status_code == 200, quote.text
    q = quote.json()
    bought = int(q["amountOut"])
    assert 980 * COIN < bought < 990 * COIN  # ~1,000 coins less the 0.3 % fee and the impact
    swap = httpx.post(
        f"{base}/swap",
        json={"walletAddress": fan_wallet, "side": "buy", "amountIn": str(100 * USDC)},
        headers=fan,
    )
    assert swap.status_code == 200, swap.text
    assert swap.json()["quote"]["amountOut"] == q["amountOut"]
    assert int(swap.json()["quote"]["minAmountOut"]) == bought * 9_950 // 10_000  # 0.5 %
    chain.sign_prepared(fan_key, swap.json()["transactions"])
    mine = until(f"/balances/{fan_wallet}", lambda b: b["balance"] != "0", "the coins bought")
    assert int(mine["balance"]) == bought  # nobody traded in between: the quote held
    assert chain.coin(coin["address"]).functions.balanceOf(fan_wallet).call() == bought
    pool = until("/pool", lambda p: p["volume24hUsdc"] != "0", "the swap's volume")
    assert (pool["reserveUsdc"], pool["reserveCoin"], pool["volume24hUsdc"]) == (
        str(10_100 * USDC),
        str(100_000 * COIN - bought),
        str(100 * USDC),
    )

    # The fan stakes everything bought; before any reward period nothing is earned.
    staking = httpx.post(
        f"{base}/stake", json={"walletAddress": fan_wallet, "amount": str(bought)}, headers=fan
    )
    assert staking.status_code == 200, staking.text
    assert [t["description"] for t in staking.json()["transactions"]] == ["Approve", "Stake"]
    chain.sign_prepared(fan_key, staking.json()["transactions"])
    position = until(f"/stake?wallet={fan_wallet}", lambda p: p["staked"] == str(bought), "stake")
    assert (position["totalStaked"], position["earned"], position["aprBps"]) == (
        str(bought),
        "0",
        0,
    )
    held = until(f"/balances/{fan_wallet}", lambda b: b["staked"] == str(bought), "staked")
    assert held["balance"] == "0"

    # The artist funds 30,000 coins of rewards over 30 days: sent to the operator, checked on
    # chain (as many confirmations deep as coin asks: asked again after a block), once only.
    operator = httpx.get(base, headers=artist).json()["operator"]
    sent = chain.send(artist_key, chain.coin(coin["address"]).functions.transfer(operator, REWARDS))
    funding = {"transactionHash": sent["transactionHash"].to_0x_hex(), "amount": str(REWARDS)}

    def funded_once_confirmed() -> httpx.Response | None:
        answer = httpx.post(f"{base}/rewards", json=funding, headers=artist, timeout=60)
        if answer.status_code == 409 and _error(answer)[1] == "PAYMENT_NOT_CONFIRMED":
            chain.make_block()
            return None
        return answer

    funded = eventually_sync(funded_once_confirmed, within=30, every=0.25, what="funded")
    assert funded.status_code == 200, funded.text
    assert funded.json()["amount"] == str(REWARDS)
    reused = httpx.post(f"{base}/rewards", json=funding, headers=artist)
    assert _error(reused) == (409, "TX_HASH_USED")

    # The fan's rewards accrue by the chain's clock: some, then more, a block at a time.
    def earned_above(floor: int) -> Callable[[], dict | None]:
        def reading() -> dict | None:
            chain.make_block()  # earned is the latest block's: the chain's time moves on
            answer = httpx.get(f"{base}/stake", params={"wallet": fan_wallet}, headers=fan)
            assert answer.status_code == 200, answer.text
            return answer.json() if int(answer.json()["earned"]) > floor else None

        return reading

    first = eventually_sync(earned_above(0), within=30, every=0.25, what="rewards earned")
    later = eventually_sync(
        earned_above(int(first["earned"])), within=30, every=0.25, what="the rewards growing"
    )
    assert 0 < int(first["earned"]) < int(later["earned"]) < REWARDS
    rate = REWARDS // (30 * 24 * 3600)
    assert later["rewardRatePerSecond"] == str(rate)
    assert later["aprBps"] == rate * 365 * 24 * 3600 * 10_000 // bought
    assert later["periodFinish"] is not None

    # The fan unstakes everything and claims: the stake comes back, the rewards with it.
    too_much = httpx.post(
        f"{base}/unstake",
        json={"walletAddress": fan_wallet, "amount": str(bought + 1)},
        headers=fan,
    )
    assert _error(too_much) == (400, "INSUFFICIENT_STAKE")
    leaving = httpx.post(
        f"{base}/unstake", json={"walletAddress": fan_wallet, "amount": str(bought)}, headers=fan
    )
    assert leaving.status_code == 200, leaving.text
    assert [t["description"] for t in leaving.json()["transactions"]] == [
        "Unstake",
        "Claim the rewards earned",
    ]
    chain.sign_prepared(fan_key, leaving.json()["transactions"])
    after = until(
        f"/balances/{fan_wallet}",
        lambda b: b["staked"] == "0" and int(b["balance"]) > bought,
        "the stake back with its rewards",
    )
    assert int(after["balance"]) >= bought + int(later["earned"])
    assert chain.coin(coin["address"]).functions.balanceOf(fan_wallet).call() == int(
        after["balance"]
    )
    left = until(f"/stake?wallet={fan_wallet}", lambda p: p["staked"] == "0", "unstaked")
    assert (left["totalStaked"], left["earned"]) == ("0", "0")
