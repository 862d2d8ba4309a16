"""Artist coins on the chain: the coin app served over HTTP on the embedded EVM with the real
factory, Pool and Staking, PostgreSQL and each coin's indexer; the artist and the fan sign
the transactions the service prepares with their own keys, as a wallet would.

The story: an artist deploys a coin and seeds its pool, a fan swaps with a quote and a
slippage bound, stakes, the artist funds rewards, the fan's earned rewards grow, the fan
unstakes; and what a user may get wrong is refused before anything moves.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from audifi_kit.chain.platform import artifact
from coin_support import USDC, Served, serving
from eth_utils import keccak

ARTIST, FAN, OTHER = (str(uuid.uuid4()) for _ in range(3))
COIN = 10**18


@pytest.fixture
async def coin(postgres_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(postgres_url, tmp_path, confirmations=1) as served:
        yield served


async def test_an_artist_coin_from_deploy_to_a_fan_unstaking_with_rewards(coin: Served) -> None:
    base = f"/coins/{ARTIST}"
    artist = await coin.wallet(usdc=10_000 * USDC)
    fan = await coin.wallet(usdc=1_000 * USDC)
    as_artist, as_fan = coin.headers(ARTIST, "artist"), coin.headers(FAN)

    # Deploy: by the artist only, one coin per artist, a symbol of 3-8 capitals.
    request = {"name": "Luna Coin", "symbol": "LUNA", "walletAddress": artist.address}
    forbidden = await coin.client.post(f"{base}/deploy", json=request, headers=as_fan)
    assert forbidden.status_code == 403
    lower = await coin.client.post(
        f"{base}/deploy", json=request | {"symbol": "luna"}, headers=as_artist
    )
    assert lower.status_code == 400 and "upper-case" in lower.json()["error"]["message"]
    made = await coin.client.post(f"{base}/deploy", json=request, headers=as_artist)
    assert made.status_code == 201, made.text
    view = made.json()
    assert (view["status"], view["symbol"], view["supply"]) == ("live", "LUNA", str(10**6 * COIN))
    again = await coin.client.post(f"{base}/deploy", json=request, headers=as_artist)
    assert again.status_code == 409 and again.json()["error"]["code"] == "COIN_EXISTS"
    held = await coin.until(
        f"{base}/balances/{artist.address}", lambda b: b["balance"] == str(10**6 * COIN)
    )
    assert held["balance"] == str(10**6 * COIN)

    # The artist seeds the pool: 100,000 coins against 10,000 USDC (0.10 USDC a coin).
    seed = {
        "walletAddress": artist.address,
        "coinAmount": 100_000 * COIN,
        "usdcAmount": 10_000 * USDC,
    }
    prepared = await coin.client.post(f"{base}/liquidity", json=seed, headers=as_artist)
    assert prepared.status_code == 200, prepared.text
    txs = prepared.json()["transactions"]
    assert [t["description"] for t in txs] == ["Approve", "Approve", "Add liquidity to the pool"]
    await artist.sign_prepared(txs)
    pool = await coin.until(f"{base}/pool", lambda p: p["reserveUsdc"] == str(10_000 * USDC))
    assert (pool["reserveCoin"], pool["price"]) == (str(100_000 * COIN), "0.100000")

    # The fan buys for 100 USDC: the quote, then the prepared swap signed by the fan.
    quote = await coin.client.get(
        f"{base}/quote", params={"side": "buy", "amount": str(100 * USDC)}, headers=as_fan
    )
    assert quote.status_code == 200, quote.text
    q = quote.json()
    assert q["feeBps"] == 30 and q["priceImpactBps"] >= 30
    out = int(q["amountOut"])
    assert 980 * COIN < out < 990 * COIN  # ~1,000 coins less the fee and the impact
    swap = await coin.client.post(
        f"{base}/swap",
        json={"walletAddress": fan.address, "side": "buy", "amountIn": 100 * USDC},
        headers=as_fan,
    )
    assert swap.status_code == 200, swap.text
    assert int(swap.json()["quote"]["minAmountOut"]) == out * 9_950 // 10_000
    await fan.sign_prepared(swap.json()["transactions"])
    mine = await coin.until(f"{base}/balances/{fan.address}", lambda b: b["balance"] != "0")
    assert int(mine["balance"]) == out  # nobody traded in between: the quote held
    volume = (await coin.client.get(f"{base}/pool", headers=as_fan)).json()["volume24hUsdc"]
    assert volume == str(100 * USDC)

    # A bound the pool cannot meet fails on chain and moves nothing.
    tight = await coin.client.post(
        f"{base}/swap",
        json={
            "walletAddress": fan.address,
            "side": "buy",
            "amountIn": 10 * USDC,
            "minAmountOut": str(200 * COIN),
        },
        headers=as_fan,
    )
    assert tight.status_code == 200
    approve, refused_swap = tight.json()["transactions"]
    await fan.sign_prepared([approve])
    slippage = "0x" + keccak(text="SlippageExceeded(uint256,uint256)")[:4].hex()
    with pytest.raises(Exception, match=slippage):  # the Pool's revert, by its selector
        await fan.sign_prepared([refused_swap])
    unchanged = await coin.until(f"{base}/balances/{fan.address}", lambda b: True)
    assert int(unchanged["balance"]) == out

    # The fan stakes half; staking more than held is refused.
    too_much = await coin.client.post(
        f"{base}/stake",
        json={"walletAddress": fan.address, "amount": str(out + 1)},
        headers=as_fan,
    )
    assert too_much.json()["error"]["code"] == "INSUFFICIENT_BALANCE"
    stake = out // 2
    staking = await coin.client.post(
        f"{base}/stake", json={"walletAddress": fan.address, "amount": str(stake)}, headers=as_fan
    )
    await fan.sign_prepared(staking.json()["transactions"])
    position = await coin.until(
        f"{base}/stake?wallet={fan.address}", lambda p: p["staked"] == str(stake)
    )
    assert position["aprBps"] == 0 and position["earned"] == "0"  # no reward period yet

    # The artist funds 30,000 coins of rewards over 30 days: sent to the operator, checked.
    operator = (await coin.client.get(base, headers=as_fan)).json()["operator"]
    luna = (await coin.chain.adapter("deployer")).contract(artifact("ArtistCoin"), view["address"])
    sent = await artist.send(luna, "transfer", operator, 30_000 * COIN)
    funding = {"transactionHash": sent["transactionHash"].to_0x_hex(), "amount": str(30_000 * COIN)}
    funded = await coin.client.post(f"{base}/rewards", json=funding, headers=as_artist)
    assert funded.status_code == 200, funded.text
    reused = await coin.client.post(f"{base}/rewards", json=funding, headers=as_artist)
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "TX_HASH_USED"

    # A day later the fan has earned; two days later, more. The APR is the period's.
    coin.travel(coin.now[0] + timedelta(days=1))
    coin.mine()
    day_one = (await coin.client.get(f"{base}/stake?wallet={fan.address}", headers=as_fan)).json()
    coin.travel(coin.now[0] + timedelta(days=1))
    coin.mine()
    day_two = (await coin.client.get(f"{base}/stake?wallet={fan.address}", headers=as_fan)).json()
    assert 0 < int(day_one["earned"]) < int(day_two["earned"])
    rate = 30_000 * COIN // (30 * 24 * 3600)
    assert day_two["rewardRatePerSecond"] == str(rate)
    assert day_two["aprBps"] == rate * 365 * 24 * 3600 * 10_000 // stake

    # Unstaking more than staked is refused; the fan unstakes all and claims.
    over = await coin.client.post(
        f"{base}/unstake",
        json={"walletAddress": fan.address, "amount": str(stake + 1)},
        headers=as_fan,
    )
    assert over.json()["error"]["code"] == "INSUFFICIENT_STAKE"
    leaving = await coin.client.post(
        f"{base}/unstake", json={"walletAddress": fan.address, "amount": str(stake)}, headers=as_fan
    )
    assert [t["description"] for t in leaving.json()["transactions"]] == [
        "Unstake",
        "Claim the rewards earned",
    ]
    await fan.sign_prepared(leaving.json()["transactions"])
    after = await coin.until(f"{base}/balances/{fan.address}", lambda b: b["staked"] == "0")
    assert int(after["balance"]) >= out + int(day_two["earned"])  # the stake back, and more


async def test_a_coin_without_a_wallet_is_held_in_custody_and_unknown_coins_are_404(
    coin: Served,
) -> None:
    made = await coin.client.post(
        f"/coins/{OTHER}/deploy",
        json={"name": "Sol", "symbol": "SOLAR", "supply": str(5_000 * COIN)},
        headers=coin.headers(OTHER, "artist"),
    )
    assert made.status_code == 201, made.text
    custody = made.json()["operator"]
    held = await coin.until(
        f"/coins/{OTHER}/balances/{custody}", lambda b: b["balance"] == str(5_000 * COIN)
    )
    assert held["balance"] == str(5_000 * COIN)
    missing = await coin.client.get(f"/coins/{uuid.uuid4()}", headers=coin.headers(FAN))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "COIN_NOT_FOUND"
    not_an_account = await coin.client.post(
        "/coins/not%01an-account/deploy",
        json={"name": "X", "symbol": "XYZ"},
        headers=coin.headers(str(uuid.uuid4()), "admin"),
    )
    assert not_an_account.status_code == 400, not_an_account.text
    for bad in ({"symbol": "SO"}, {"symbol": "SOLARWIND"}, {"symbol": "SOL4R"}, {"name": ""}):
        refused = await coin.client.post(
            f"/coins/{FAN}/deploy",
            json={"name": "X", "symbol": "XYZ"} | bad,
            headers=coin.headers(FAN, "artist"),
        )
        assert refused.status_code == 400, (bad, refused.text)


async def test_the_custody_signer_acts_for_an_artist_without_a_wallet(coin: Served) -> None:
    artist_id = str(uuid.uuid4())
    base, as_artist = f"/coins/{artist_id}", coin.headers(artist_id, "artist")
    made = await coin.client.post(
        f"{base}/deploy",
        json={"name": "Custody Coin", "symbol": "CUST", "supply": str(100_000 * COIN)},
        headers=as_artist,
    )
    assert made.status_code == 201, made.text
    book = (await coin.client.get(f"{base}/custody", headers=as_artist)).json()
    assert (book["held"], book["staked"]) == (str(100_000 * COIN), "0")
    assert (await coin.client.get(f"{base}/custody", headers=coin.headers(FAN))).status_code == 403

    async def act(action: str, amount: int = 0, key: str | None = None, **more: str) -> Any:
        headers = as_artist | ({"Idempotency-Key": key} if key else {})
        body = {"action": action, "amount": str(amount), **more}
        return await coin.client.post(f"{base}/custody", json=body, headers=headers)

    staked = await act("stake", 10_000 * COIN, key="stake-1")
    assert staked.status_code == 200, staked.text
    assert staked.json()["status"] == "done" and staked.json()["txHash"]
    again = await act("stake", 10_000 * COIN, key="stake-1")  # a retried request
    assert again.json()["opId"] == staked.json()["opId"]
    too_much = await act("withdraw", 100_000 * COIN, walletAddress=(await coin.wallet()).address)
    assert too_much.status_code == 400
    assert too_much.json()["error"]["code"] == "INSUFFICIENT_BALANCE"

    funded = await act("fund", 30_000 * COIN)
    assert funded.json()["status"] == "done", funded.text
    coin.travel(coin.now[0] + timedelta(days=1))
    coin.mine()
    claimed = await act("claim")
    assert claimed.json()["status"] == "done", claimed.text
    book = (await coin.client.get(f"{base}/custody", headers=as_artist)).json()
    reward = int(book["held"]) - (100_000 - 10_000 - 30_000) * COIN
    assert 0 < reward <= 1_000 * COIN  # a day of a 30-day period of 30,000 (the only staker)
    assert book["staked"] == str(10_000 * COIN)

    await act("unstake", 10_000 * COIN)
    wallet = await coin.wallet()
    sent = await act("withdraw", 5_000 * COIN, walletAddress=wallet.address)
    assert sent.json()["status"] == "done", sent.text
    mine = await coin.until(
        f"{base}/balances/{wallet.address}", lambda b: b["balance"] == str(5_000 * COIN)
    )
    assert mine["balance"] == str(5_000 * COIN)
    book = (await coin.client.get(f"{base}/custody", headers=as_artist)).json()
    assert book["held"] == str(65_000 * COIN + reward) and book["staked"] == "0"
    # the refused withdrawal recorded nothing: one operation per request that was carried out
    assert [op["action"] for op in book["operations"]] == [
        "stake",
        "fund",
        "claim",
        "unstake",
        "withdraw",
    ]
    assert {op["status"] for op in book["operations"]} == {"done"}
