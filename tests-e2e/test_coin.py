"""The coin service end to end, through the gateway only (and the development chain node, as a
wallet reaches it), on one platform.

The lottery: an admin opens a short round whose burn rule takes a real master's shares; three
wallets get tickets (one pays the treasury and names its transaction, one buys on the Lottery
contract itself, one burns shares it bought in the master's IPO); a reused transaction hash
and bad claims are refused; after the end date the admin's draw closes the round on chain and
pays the winner, and the proof endpoint alone lets anyone recompute the winning ticket, which
the contract says that winner holds.

Artist coins: an artist signed in with their wallet deploys their coin (a second deploy is
refused), seeds its pool against test USDC; a fan swaps USDC for coins through the quote and
a prepared transaction the fan's own key signs, stakes them; the artist funds a reward period
by sending coins to the operator (a reused transaction is refused), the fan's earned rewards
grow block by block; the fan unstakes and claims, and holds the coins back and more.

The development node mines a block per transaction and none otherwise, and a block's
timestamp is at least its parent's plus a second: a tiny transfer between the test's own
wallets moves the chain (and the rewards' clock) on, never a fixed sleep.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from audifi_auth.adapters.signing_keys import SigningKeys
from audifi_kit.testing import eventually_sync
from e2e_chain import Chain, error_of, new_wallet, sign_in_with_wallet
from e2e_masters import _register_and_open
from eth_account import Account
from eth_utils import keccak
from platform_processes import Platform, token

ARTIST, ADMIN = str(uuid.uuid4()), str(uuid.uuid4())
USDC = 10**6
PRICE = 5 * USDC  # a ticket: 5 USDC in the payment token's base units
SHARES_PER_TICKET = 5
# The sales window. What happens in it (a paid purchase, a buy on the contract and its
# indexing, a burn and its claim, the refusals) took about 2 s here, in 7 blocks. The contract
# reads the chain's clock, and on the development node every block is at least a second after
# the one before (a burst of blocks runs ahead of the wall clock): the window starts from the
# later of the two clocks, and is long enough for those 7 blocks and a loaded machine.
WINDOW = timedelta(seconds=15)


COIN = 10**18  # an artist coin: 18 decimals
REWARDS = 30_000 * COIN  # one reward period: 30 days


@pytest.fixture(scope="module")
def as_(signing_keys: SigningKeys):
    def headers(user: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(signing_keys, sub=user, roles=list(roles))}"}

    return headers


def _buy_shares_on_chain(
    platform: Platform, chain: Chain, ipo: dict, key: str, headers: dict, quantity: int
) -> None:
    """The master's IPO, paid in test USDC from the wallet: nft mints the shares to it."""
    gw = platform.gateway

    def reserved() -> dict | None:  # once nft heard from auth that this wallet is the fan's
        answer = httpx.post(
            f"{gw}/ipos/{ipo['id']}/purchase",
            json={"quantity": quantity, "method": "chain"},
            headers=headers,
        )
        return answer.json() if answer.status_code == 201 else None

    purchase = eventually_sync(reserved, within=30, every=0.5, what="the IPO purchase")
    pay_to = purchase["payTo"]
    sent = chain.send(
        key, chain.token.functions.transfer(pay_to["recipient"], int(pay_to["amount"]))
    )
    paid = httpx.post(
        f"{gw}/ipos/{ipo['id']}/purchases/{purchase['id']}/payment",
        json={"txHash": sent["transactionHash"].to_0x_hex()},
        headers=headers,
    )
    assert (paid.status_code, paid.json()["status"]) == (200, "paid"), paid.text


def _purchase(platform: Platform, chain: Chain, body: dict, headers: dict) -> httpx.Response:
    """POST /lottery/purchase; while the payment is not deep enough (PAYMENT_NOT_CONFIRMED:
    as deep as `confirmations`, `required`), the chain moves on by the blocks it lacks and the
    wallet asks again."""

    def answered() -> httpx.Response | None:
        answer = httpx.post(
            f"{platform.gateway}/lottery/purchase", json=body, headers=headers, timeout=60
        )
        if answer.status_code == 409 and error_of(answer)[1] == "PAYMENT_NOT_CONFIRMED":
            depth = answer.json()["error"]["details"]
            for _ in range(max(1, depth["required"] - depth["confirmations"])):
                chain.make_block()
            return None
        return answer

    return eventually_sync(answered, within=60, every=0.1, what="the payment confirmed")


def _draw(platform: Platform, chain: Chain, admin: dict, round_id: str, ends_at: datetime):
    """The admin's draw, asked until it answers: 409 ROUND_NOT_OVER until the end date has
    passed. The service makes the blocks the draw needs on this development chain itself (it
    mines only on transactions: the close's own block, the block after it)."""
    gw = platform.gateway

    def drawn() -> dict | None:
        answer = httpx.post(f"{gw}/lottery/rounds/{round_id}/draw", headers=admin, timeout=60)
        if answer.status_code == 409 and error_of(answer)[1] == "ROUND_NOT_OVER":
            return None
        if answer.status_code != 200:
            raise RuntimeError(f"the draw failed: {answer.status_code} {answer.text}")
        return answer.json()  # type: ignore[no-any-return]

    within = (ends_at - datetime.now(UTC)).total_seconds() + 60
    return eventually_sync(drawn, within=within, every=0.5, what="the round drawn")


def test_a_round_three_wallets_buy_a_reused_hash_is_refused_and_the_draw_is_provable(
    platform: Platform, as_
) -> None:
    gw, chain = platform.gateway, Chain(platform)
    admin, artist = as_(ADMIN, "admin"), as_(ARTIST, "artist")
    stranger = as_(str(uuid.uuid4()), "fan")

    # Before the round: the three wallets, signed in with their keys; Carol holds 10 shares of
    # the master the round takes (bought in its IPO, minted to her wallet by nft); Bob has
    # allowed the Lottery to take his payment.
    alice_key, bob_key, carol_key = (new_wallet(chain, 200 * USDC)[0] for _ in range(3))
    alice, bob, carol = (Account.from_key(k).address for k in (alice_key, bob_key, carol_key))
    as_alice, as_bob, as_carol = (
        sign_in_with_wallet(platform, k)[0] for k in (alice_key, bob_key, carol_key)
    )
    master, ipo = _register_and_open(platform, artist, "US-AUD-26-00311")
    master_token = uuid.UUID(master["id"]).int  # MasterShares' token id of a master
    assert int(master["chainId"]) == master_token
    _buy_shares_on_chain(platform, chain, ipo, carol_key, as_carol, 10)
    eventually_sync(
        lambda: chain.shares.functions.balanceOf(carol, master_token).call() == 10,
        within=60,
        every=0.2,
        what="Carol's shares minted",
    )
    chain.send(bob_key, chain.token.functions.approve(chain.lottery.address, 3 * PRICE))

    # The admin opens a round (a fan may not); its window is short, to draw it in this test.
    round_id = f"e2e-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    next_block = chain.w3.eth.get_block("latest")["timestamp"] + 1  # its earliest time
    ends_at = max(now, datetime.fromtimestamp(next_block, UTC)) + WINDOW
    terms = {
        "id": round_id,
        "ticketPrice": PRICE,
        "burnMasterId": master["id"],
        "sharesPerTicket": SHARES_PER_TICKET,
        "maxTicketsPerWallet": 10,
        "startDate": (now - timedelta(minutes=1)).isoformat(),
        "endDate": ends_at.isoformat(),
    }
    refused = httpx.post(f"{gw}/lottery/rounds", json=terms, headers=stranger)
    assert error_of(refused) == (403, "FORBIDDEN")
    created = httpx.post(f"{gw}/lottery/rounds", json=terms, headers=admin, timeout=60)
    assert created.status_code == 201, created.text
    window_opened = time.monotonic()
    current = httpx.get(f"{gw}/lottery/rounds/current", headers=as_alice).json()
    assert (current["id"], current["status"], current["ticketPrice"]) == (
        round_id,
        "active",
        str(PRICE),
    )
    assert current["seedHash"] == created.json()["seedHash"]
    pay_to, chain_round = current["payTo"], current["chainRoundId"]
    assert pay_to["token"] == chain.token.address and pay_to["lottery"] == chain.lottery.address
    confirmations = pay_to["confirmations"]
    assert confirmations >= 1

    # Alice pays the treasury for 2 tickets and names her transaction: checked, then issued.
    paid = chain.send(alice_key, chain.token.functions.transfer(pay_to["treasury"], 2 * PRICE))
    body = {
        "walletAddress": alice,
        "ticketCount": 2,
        "paymentMethod": "USDC",
        "transactionSignature": paid["transactionHash"].to_0x_hex(),
        "amountPaid": 2 * PRICE,
    }
    bought = _purchase(platform, chain, body, as_alice)
    assert bought.status_code == 200, bought.text
    assert bought.json() == {
        "success": True,
        "ticketsIssued": [1, 2],
        "totalTickets": 2,
        "transactionVerified": True,
        "roundId": round_id,
    }
    again = httpx.post(f"{gw}/lottery/purchase", json=body, headers=as_alice, timeout=60)
    assert error_of(again) == (409, "TX_HASH_USED")
    assert again.json()["error"]["details"]["ticketsIssued"] == [1, 2]

    # Bad requests change nothing.
    unpaid_hash = "0x" + os.urandom(32).hex()
    no_tickets = httpx.post(
        f"{gw}/lottery/purchase",
        json=body | {"ticketCount": 0, "transactionSignature": unpaid_hash},
        headers=stranger,
    )
    assert no_tickets.status_code == 400, no_tickets.text
    short = httpx.post(
        f"{gw}/lottery/purchase",
        json=body | {"transactionSignature": unpaid_hash, "amountPaid": PRICE},
        headers=stranger,
    )
    assert error_of(short) == (400, "AMOUNT_MISMATCH")

    # Bob buys 3 on the contract itself: the indexer turns its log into his tickets.
    chain.send(bob_key, chain.lottery.functions.buyTickets(chain_round, 3))
    # The indexer reads the chain CHAIN_CONFIRMATIONS blocks behind its head (`confirmations`
    # is that setting, at least 1; unset in these tests: the head itself).
    for _ in range(confirmations if confirmations > 1 else 0):
        chain.make_block()

    def bobs_tickets() -> dict | None:
        shown = httpx.get(f"{gw}/lottery/tickets/{bob}", headers=as_bob).json()
        return shown if shown["totalTickets"] == 3 else None

    bobs = eventually_sync(bobs_tickets, within=30, every=0.2, what="Bob's tickets indexed")
    assert bobs["ticketNumbers"] == [3, 4, 5] and bobs["roundId"] == round_id

    # Carol burns 10 shares of the round's master; a claim of her burn by another wallet is
    # refused, hers gives her 2 tickets.
    burnt = chain.send(carol_key, chain.shares.functions.burn(carol, master_token, 10))
    for _ in range(confirmations - 1):  # a burn counts this deep, as a payment does
        chain.make_block()
    claim = {
        "walletAddress": carol,
        "nftsBurned": [master["id"]],
        "transactionSignatures": [burnt["transactionHash"].to_0x_hex()],
        "ticketsClaimed": 2,
    }
    not_hers = httpx.post(
        f"{gw}/lottery/burn-claim", json=claim | {"walletAddress": alice}, headers=as_alice
    )
    assert error_of(not_hers) == (400, "BURN_NOT_YOURS")
    earned = httpx.post(f"{gw}/lottery/burn-claim", json=claim, headers=as_carol, timeout=60)
    assert earned.status_code == 200, earned.text
    assert (earned.json()["ticketsIssued"], earned.json()["sharesBurned"]) == ([6, 7], "10")
    assert chain.shares.functions.balanceOf(carol, master_token).call() == 0
    in_window = time.monotonic() - window_opened
    sold_until = chain.w3.eth.get_block("latest")["timestamp"]
    assert sold_until < ends_at.timestamp(), f"sales took {in_window:.1f}s: widen WINDOW"

    # What everyone sees before the draw: each wallet's tickets, the admin's sales, the pot.
    alices = httpx.get(f"{gw}/lottery/tickets/{alice}", headers=as_alice).json()
    assert (alices["ticketNumbers"], alices["entries"][0]["paymentMethod"]) == ([1, 2], "USDC")
    sales = httpx.get(f"{gw}/lottery/rounds/{round_id}/tickets", headers=admin).json()
    assert [(s["firstTicket"], s["count"], s["wallet"]) for s in sales] == [
        (1, 2, alice),
        (3, 3, bob),
        (6, 2, carol),
    ]
    assert [s["acquisitionMethod"] for s in sales] == ["purchase", "purchase", "burn"]

    def settled() -> dict | None:  # burns add tickets, not money: 5 paid tickets in the pot
        shown = httpx.get(f"{gw}/lottery/rounds/{round_id}", headers=admin).json()
        return shown if (shown["totalTicketsSold"], shown["prizePool"]) == (7, "25000000") else None

    eventually_sync(settled, within=30, every=0.2, what="the round's tickets and pot")
    too_soon = httpx.post(f"{gw}/lottery/rounds/{round_id}/draw", headers=admin)
    assert error_of(too_soon) == (409, "ROUND_NOT_OVER")
    balances = {w: chain.token.functions.balanceOf(w).call() for w in (alice, bob, carol)}

    # After the end date the admin's draw closes the round on chain and pays the winner.
    drawn = _draw(platform, chain, admin, round_id, ends_at)
    assert (drawn["status"], drawn["prizePool"], drawn["totalTicketsSold"]) == (
        "completed",
        "25000000",
        7,
    )
    proof_answer = httpx.get(f"{gw}/lottery/rounds/{round_id}/proof", headers=as_carol)
    assert proof_answer.status_code == 200, proof_answer.text
    proof = proof_answer.json()

    # An independent recomputation from the proof alone names the same ticket...
    seed = bytes.fromhex(proof["seed"].removeprefix("0x"))
    assert "0x" + keccak(seed).hex() == proof["seedHash"] == current["seedHash"]
    block_hash = bytes.fromhex(proof["drawBlockHash"].removeprefix("0x"))
    assert proof["ticketsSold"] == 7 and proof["chainRoundId"] == chain_round
    index = int.from_bytes(keccak(seed + block_hash), "big") % proof["ticketsSold"]
    assert (index, index + 1) == (proof["winningIndex"], proof["winningTicket"])
    # ...whose block hash is the chain's own, whose holder on chain is the winner, paid the pot.
    assert proof["drawBlock"] == proof["closeBlock"] + 1
    assert chain.w3.eth.get_block(proof["drawBlock"])["hash"] == block_hash
    winner = chain.lottery.functions.ticketHolder(chain_round, index).call()
    assert proof["winner"] == winner and proof["prize"] == "25000000"
    assert drawn["winner"] == {"wallet": winner, "ticketNumber": index + 1, "prize": "25000000"}
    assert chain.token.functions.balanceOf(winner).call() == balances[winner] + 25 * USDC
    for other in set(balances) - {winner}:
        assert chain.token.functions.balanceOf(other).call() == balances[other]


def test_an_artist_coin_from_deploy_to_a_fan_unstaking_with_rewards(platform: Platform) -> None:
    gw, chain = platform.gateway, Chain(platform)
    artist_key, artist_wallet = new_wallet(chain, 10_000 * USDC)
    fan_key, fan_wallet = new_wallet(chain, 1_000 * USDC)
    artist, artist_id = sign_in_with_wallet(platform, artist_key)
    fan, _ = sign_in_with_wallet(platform, fan_key)
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
    assert error_of(not_theirs) == (403, "FORBIDDEN")
    made = httpx.post(f"{base}/deploy", json=request, headers=artist, timeout=60)
    assert made.status_code == 201, made.text
    coin = made.json()
    assert (coin["artistId"], coin["status"], coin["symbol"]) == (artist_id, "live", "LUNA")
    assert coin["supply"] == str(10**6 * COIN) and coin["chainId"] == chain.w3.eth.chain_id
    assert coin["address"] and coin["pool"] and coin["staking"]
    again = httpx.post(f"{base}/deploy", json=request, headers=artist)
    assert error_of(again) == (409, "COIN_EXISTS")
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
        if answer.status_code == 409 and error_of(answer)[1] == "PAYMENT_NOT_CONFIRMED":
            chain.make_block()
            return None
        return answer

    funded = eventually_sync(funded_once_confirmed, within=30, every=0.25, what="funded")
    assert funded.status_code == 200, funded.text
    assert funded.json()["amount"] == str(REWARDS)
    reused = httpx.post(f"{base}/rewards", json=funding, headers=artist)
    assert error_of(reused) == (409, "TX_HASH_USED")

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
    assert error_of(too_much) == (400, "INSUFFICIENT_STAKE")
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
