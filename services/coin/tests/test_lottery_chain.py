"""The lottery on the chain: the coin app served over HTTP on the embedded EVM with the real
Lottery contract, PostgreSQL and its indexer, wallets signing their own transactions.

A round's story as its buyers see it: a paid transaction checked and ticketed, a purchase on
the contract itself and a burn of master shares both become tickets, a reused hash and a
payment a reorganisation dropped issue nothing, and after the end date the draw pays the
winner on chain and anyone recomputes the winner from the proof endpoint alone.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from coin_support import USDC, Served, serving
from eth_utils import keccak

ADMIN, FAN = str(uuid.uuid4()), str(uuid.uuid4())
PRICE = 5 * USDC
MASTER = uuid.uuid4()


@pytest.fixture
async def coin(postgres_url: str, tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(postgres_url, tmp_path, confirmations=2) as served:
        yield served


async def test_a_round_on_chain_from_purchases_to_a_draw_anyone_can_recompute(
    coin: Served,
) -> None:
    start = coin.now[0] - timedelta(minutes=5)
    end = coin.now[0] + timedelta(hours=1)
    created = await coin.client.post(
        "/lottery/rounds",
        json={
            "id": "chain-round-1",
            "ticketPrice": PRICE,
            "nativeTicketPrice": 0,
            "burnMasterId": str(MASTER),
            "sharesPerTicket": 5,
            "maxTicketsPerWallet": 10,
            "startDate": start.isoformat(),
            "endDate": end.isoformat(),
        },
        headers=coin.headers(ADMIN, "admin"),
    )
    assert created.status_code == 201, created.text
    current = (await coin.client.get("/lottery/rounds/current", headers=coin.headers(FAN))).json()
    pay_to = current["payTo"]
    chain_round = current["chainRoundId"]
    dev_usd = await coin.contract("DevUSD")
    lottery = await coin.contract("Lottery")

    # Alice pays the treasury and names her transaction: checked, then ticketed on chain.
    alice = await coin.wallet(usdc=100 * USDC)
    paid = await alice.send(dev_usd, "transfer", pay_to["treasury"], 2 * PRICE)
    tx = paid["transactionHash"].to_0x_hex()
    body = {
        "walletAddress": alice.address,
        "ticketCount": 2,
        "paymentMethod": "USDC",
        "transactionSignature": tx,
        "amountPaid": 2 * PRICE,
    }
    early = await coin.client.post("/lottery/purchase", json=body, headers=coin.headers(FAN))
    assert early.status_code == 409 and early.json()["error"]["code"] == "PAYMENT_NOT_CONFIRMED"
    coin.mine()
    bought = await coin.client.post("/lottery/purchase", json=body, headers=coin.headers(FAN))
    assert bought.status_code == 200, bought.text
    assert bought.json()["ticketsIssued"] == [1, 2] and bought.json()["transactionVerified"]
    again = await coin.client.post("/lottery/purchase", json=body, headers=coin.headers(FAN))
    assert again.status_code == 409 and again.json()["error"]["code"] == "TX_HASH_USED"

    # Bob buys on the contract itself: the indexer turns its log into his tickets.
    bob = await coin.wallet(usdc=100 * USDC)
    await bob.send(dev_usd, "approve", lottery.address, 3 * PRICE)
    await bob.send(lottery, "buyTickets", chain_round, 3)
    coin.mine(2)
    bobs = await coin.until(f"/lottery/tickets/{bob.address}", lambda b: b["totalTickets"] == 3)
    assert bobs["ticketNumbers"] == [3, 4, 5]

    # Carol burns 10 of the round's master's shares and claims their 2 tickets.
    carol = await coin.wallet(shares=20, master=MASTER)
    master_shares = await coin.contract("MasterShares")
    burnt = await carol.send(master_shares, "burn", carol.address, MASTER.int, 10)
    coin.mine()
    claim = {
        "walletAddress": carol.address,
        "nftsBurned": [str(MASTER)],
        "transactionSignatures": [burnt["transactionHash"].to_0x_hex()],
        "ticketsClaimed": 2,
    }
    earned = await coin.client.post("/lottery/burn-claim", json=claim, headers=coin.headers(FAN))
    assert earned.status_code == 200, earned.text
    assert earned.json()["ticketsIssued"] == [6, 7]

    # Dave's payment is dropped by a reorganisation before it is confirmed: no ticket.
    dave = await coin.wallet(usdc=100 * USDC)
    assert coin.chain.embedded is not None
    fork = coin.chain.embedded.take_snapshot()
    dropped = await dave.send(dev_usd, "transfer", pay_to["treasury"], PRICE)
    daves = {
        "walletAddress": dave.address,
        "ticketCount": 1,
        "paymentMethod": "USDC",
        "transactionSignature": dropped["transactionHash"].to_0x_hex(),
        "amountPaid": PRICE,
    }
    pending = await coin.client.post("/lottery/purchase", json=daves, headers=coin.headers(FAN))
    assert pending.json()["error"]["code"] == "PAYMENT_NOT_CONFIRMED"
    coin.chain.embedded.revert_to_snapshot(fork)
    coin.mine(3)
    gone = await coin.client.post("/lottery/purchase", json=daves, headers=coin.headers(FAN))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "PAYMENT_NOT_FOUND"
    daves_tickets = await coin.client.get(
        f"/lottery/tickets/{dave.address}", headers=coin.headers(FAN)
    )
    assert daves_tickets.json()["totalTickets"] == 0

    # After the end date the admin draws; the winner is paid on chain.
    settled = await coin.until(
        "/lottery/rounds/current",
        lambda b: b["totalTicketsSold"] == 7 and b["prizePool"] == str(5 * PRICE),
    )
    assert settled["status"] == "active"
    coin.travel(end + timedelta(minutes=1))
    balances = {
        w.address: await dev_usd.functions.balanceOf(w.address).call() for w in (alice, bob, carol)
    }
    drawn = await coin.client.post(
        "/lottery/rounds/chain-round-1/draw", headers=coin.headers(ADMIN, "admin")
    )
    assert drawn.status_code == 200, drawn.text
    assert drawn.json()["status"] == "completed"
    proof = (
        await coin.client.get("/lottery/rounds/chain-round-1/proof", headers=coin.headers(FAN))
    ).json()

    # An independent recomputation from the proof alone names the same ticket...
    seed = bytes.fromhex(proof["seed"][2:])
    assert keccak(seed).hex() == proof["seedHash"][2:]
    block_hash = bytes.fromhex(proof["drawBlockHash"][2:])
    index = int.from_bytes(keccak(seed + block_hash), "big") % proof["ticketsSold"]
    assert (index, index + 1) == (proof["winningIndex"], proof["winningTicket"])
    # ...the block hash is the chain's own, and the winner holds that ticket and got the pot.
    w3 = (await coin.chain.adapter("deployer")).w3
    assert (await w3.eth.get_block(proof["drawBlock"]))["hash"] == block_hash
    assert proof["drawBlock"] == proof["closeBlock"] + 1
    holder = await lottery.functions.ticketHolder(chain_round, index).call()
    assert proof["winner"] == holder and proof["prize"] == str(5 * PRICE)
    assert await dev_usd.functions.balanceOf(holder).call() == balances[holder] + 5 * PRICE
