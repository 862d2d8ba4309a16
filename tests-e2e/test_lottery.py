"""The lottery end to end, through the gateway only (and the development chain node, as a
wallet reaches it): an admin opens a short round whose burn rule takes a real master's
shares; three wallets get tickets (one pays the treasury and names its transaction, one buys
on the Lottery contract itself, one burns shares it bought in the master's IPO); a reused
transaction hash and bad claims are refused; after the end date the admin's draw closes the
round on chain and pays the winner, and the proof endpoint alone lets anyone recompute the
winning ticket, which the contract says that winner holds."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from audifi_auth.adapters.signing_keys import SigningKeys
from audifi_kit.testing import eventually_sync
from e2e_masters import _register_and_open
from eth_account import Account
from eth_account.messages import encode_defunct
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


@pytest.fixture(scope="module")
def as_(signing_keys: SigningKeys):
    def headers(user: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(signing_keys, sub=user, roles=list(roles))}"}

    return headers


class Chain:
    """The development chain node as a wallet or a dApp reaches it: JSON-RPC, the
    deployment's addresses, transactions signed with the test's own keys."""

    def __init__(self, platform: Platform) -> None:
        from audifi_kit.chain.platform import artifact
        from web3 import Web3

        self.w3 = Web3(Web3.HTTPProvider(platform.url("chain"), request_kwargs={"timeout": 30}))
        deployment = httpx.get(f"{platform.url('chain')}/deployment").json()
        addresses = {n: c["address"] for n, c in deployment["contracts"].items()}
        self.token = self.w3.eth.contract(
            address=deployment["paymentToken"], abi=artifact("DevUSD").abi
        )
        self.lottery = self.w3.eth.contract(
            address=addresses["Lottery"], abi=artifact("Lottery").abi
        )
        self.shares = self.w3.eth.contract(
            address=addresses["MasterShares"], abi=artifact("MasterShares").abi
        )

    def send(self, key: str, call: Any) -> Any:
        """A contract call signed by `key`, mined; its receipt."""
        account = Account.from_key(key)
        tx = call.build_transaction(
            {
                "from": account.address,
                "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
                "chainId": self.w3.eth.chain_id,
            }
        )
        return self._signed(account, tx)

    def pay(self, key: str, to: str, value: int) -> Any:
        """Native coin from `key`'s account to `to`, mined; its receipt."""
        account = Account.from_key(key)
        tx = {
            "from": account.address,
            "to": to,
            "value": value,
            "gas": 21_000,
            "gasPrice": self.w3.eth.gas_price,
            "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": self.w3.eth.chain_id,
        }
        return self._signed(account, tx)

    def make_block(self) -> int:
        """One more block, as any wallet's transaction makes one (the development node mines
        a block per transaction and none otherwise); the new head's number."""
        funder = Account.from_key(FUNDER)
        return int(self.pay(FUNDER, funder.address, 0)["blockNumber"])

    def _signed(self, account: Any, tx: dict) -> Any:
        signed = account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        assert receipt["status"] == 1
        return receipt


def _genesis_key(n: int) -> str:
    """eth-tester's funded genesis accounts have keys 1, 2, 3...; 1-9 sign for the platform's
    services (the deployer, nft, coin, payment...), 10 is nobody's: this test's funder."""
    return "0x" + n.to_bytes(32, "big").hex()


FUNDER = _genesis_key(10)
DEV_USD_OWNER = _genesis_key(4)  # payment's account, DevUSD's owner in the development chain


def _wallet(chain: Chain, usdc: int) -> str:
    """A fresh wallet's key: gas from the funder, `usdc` test USDC minted by DevUSD's owner."""
    account = Account.create()
    chain.pay(FUNDER, account.address, 10**17)
    if usdc:
        chain.send(DEV_USD_OWNER, chain.token.functions.mint(account.address, usdc))
    return account.key.to_0x_hex()


def _sign_in_with_wallet(platform: Platform, key: str) -> dict[str, str]:
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
    return {"Authorization": f"Bearer {signed_in.json()['token']}"}


def _error(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["error"]["code"]


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
        if answer.status_code == 409 and _error(answer)[1] == "PAYMENT_NOT_CONFIRMED":
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
        if answer.status_code == 409 and _error(answer)[1] == "ROUND_NOT_OVER":
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
    alice_key, bob_key, carol_key = (_wallet(chain, 200 * USDC) for _ in range(3))
    alice, bob, carol = (Account.from_key(k).address for k in (alice_key, bob_key, carol_key))
    as_alice, as_bob, as_carol = (
        _sign_in_with_wallet(platform, k) for k in (alice_key, bob_key, carol_key)
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
    assert _error(refused) == (403, "FORBIDDEN")
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
    assert _error(again) == (409, "TX_HASH_USED")
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
    assert _error(short) == (400, "AMOUNT_MISMATCH")

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
    assert _error(not_hers) == (400, "BURN_NOT_YOURS")
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
    assert _error(too_soon) == (409, "ROUND_NOT_OVER")
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
