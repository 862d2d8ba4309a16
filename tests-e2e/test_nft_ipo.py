"""NFT end to end, through the gateway only (and the development chain node, as a wallet
reaches it): an artist registers a master with a real WAV and cover and opens its IPO (on
MasterShares first); a fan pays by card on the local Stripe's pay page, another in DevUSD on
chain; holdings follow the mints and a wallet-to-wallet transfer; a month's dividends are
funded on RevenueDistributor and claimed once with a proof; 200 buyers race for 100 shares."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from audifi_auth.adapters.signing_keys import SigningKeys
from audifi_kit.testing import eventually_sync
from e2e_masters import _register_and_open
from eth_account import Account
from eth_utils import keccak
from platform_processes import Platform, token
from web3.exceptions import ContractCustomError

ARTIST, FAN, ADMIN = (str(uuid.uuid4()) for _ in range(3))
PASS_ISRC = "US-AUD-26-00088"  # the master the story registers is the Revenue Pass
PLATFORM_ENV = {"NFT_REVENUE_PASS_MASTER": PASS_ISRC}


@pytest.fixture(scope="module")
def as_(signing_keys: SigningKeys):
    def headers(user: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(signing_keys, sub=user, roles=list(roles))}"}

    return headers


def test_a_fan_buys_ipo_shares_by_card_and_they_are_allocated(platform: Platform, as_) -> None:
    gw, artist, fan = platform.gateway, as_(ARTIST, "artist"), as_(FAN, "fan")
    master, ipo = _register_and_open(platform, artist, "US-AUD-26-00077", cap=100)
    assert master["ipfsHash"].startswith("bafkrei")
    assert ipo["status"] == "open"

    bought = httpx.post(f"{gw}/ipos/{ipo['id']}/purchase", json={"quantity": 3}, headers=fan)
    assert bought.status_code == 201, bought.text
    purchase = bought.json()
    assert (purchase["amountCents"], purchase["status"]) == (3750, "pending")

    _pay_by_card(platform, purchase, fan)

    def paid() -> dict | None:
        answer = httpx.get(f"{gw}/ipos/{ipo['id']}/purchases/{purchase['id']}", headers=fan)
        return answer.json() if answer.json().get("status") == "paid" else None

    done = eventually_sync(paid, within=30, what="the shares allocated")
    assert done["quantity"] == 3 and done["checkout"] is None
    shown = httpx.get(f"{gw}/masters/{master['id']}/ipo", headers=fan).json()
    assert (shown["allocated"], shown["available"]) == (3, 97)


# --- the whole story: card and chain buyers, holdings, a transfer, dividends claimed ---------


class Chain:
    """The development chain node, as a wallet or a dApp reaches it: JSON-RPC and the
    deployment's addresses, transactions signed with the test's own keys."""

    def __init__(self, platform: Platform) -> None:
        from audifi_kit.chain.platform import artifact
        from web3 import Web3

        self.w3 = Web3(Web3.HTTPProvider(platform.url("chain"), request_kwargs={"timeout": 30}))
        deployment = httpx.get(f"{platform.url('chain')}/deployment").json()
        self.addresses = {n: c["address"] for n, c in deployment["contracts"].items()}
        self.token = self.w3.eth.contract(
            address=deployment["paymentToken"], abi=artifact("DevUSD").abi
        )
        self.shares = self.contract("MasterShares")
        self.distributor = self.contract("RevenueDistributor")

    def contract(self, name: str):  # type: ignore[no-untyped-def]
        from audifi_kit.chain.platform import artifact

        return self.w3.eth.contract(address=self.addresses[name], abi=artifact(name).abi)

    def send(self, key: str, call) -> dict:  # type: ignore[no-untyped-def]
        account = Account.from_key(key)
        tx = call.build_transaction(
            {
                "from": account.address,
                "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
                "chainId": self.w3.eth.chain_id,
            }
        )
        return self._signed(account, tx)

    def transact(self, key: str, tx: dict) -> dict:
        """A prepared transaction (`to`, `data`, `value`), as a wallet signs and sends it."""
        account = Account.from_key(key)
        tx = {
            **tx,
            "from": account.address,
            "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": self.w3.eth.chain_id,
            "gasPrice": self.w3.eth.gas_price,
        }
        tx["gas"] = self.w3.eth.estimate_gas(tx)
        return self._signed(account, tx)

    def _signed(self, account, tx: dict) -> dict:  # type: ignore[no-untyped-def]
        signed = account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        assert receipt["status"] == 1
        return receipt


def _genesis_key(n: int) -> str:
    """eth-tester's funded genesis accounts have keys 1, 2, 3...; 1-9 sign for the platform's
    services (the deployer, nft, coin, payment...), 10 is nobody's: the test's fan."""
    return "0x" + n.to_bytes(32, "big").hex()


def _sign_in_with_wallet(platform: Platform, key: str) -> dict[str, str]:
    from eth_account.messages import encode_defunct

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


def _pay_by_card(platform: Platform, purchase: dict, headers: dict) -> None:
    gw = platform.gateway

    def checkout() -> dict | None:
        answer = httpx.post(
            f"{gw}/payments/checkout", json={"orderId": purchase["id"]}, headers=headers
        )
        return answer.json() if answer.status_code == 201 else None

    session = eventually_sync(checkout, within=30, what="the order opened at payment")
    paid = httpx.post(session["url"], data={"card_number": "4242 4242 4242 4242"})
    assert paid.status_code == 303


def test_card_and_chain_buyers_hold_transfer_and_claim_their_dividends(
    platform: Platform, as_
) -> None:
    gw, chain = platform.gateway, Chain(platform)
    artist, card_fan = as_(ARTIST, "artist"), as_(str(uuid.uuid4()), "fan")
    fan_key = _genesis_key(10)
    fan_wallet = Account.from_key(fan_key).address
    wallet_fan = _sign_in_with_wallet(platform, fan_key)  # auth tells nft: this wallet is theirs
    master, ipo = _register_and_open(platform, artist, PASS_ISRC)
    token_id = int(master["chainId"])

    # A card buyer: paid at the local Stripe, minted to custody (no wallet).
    bought = httpx.post(f"{gw}/ipos/{ipo['id']}/purchase", json={"quantity": 2}, headers=card_fan)
    assert bought.status_code == 201, bought.text
    _pay_by_card(platform, bought.json(), card_fan)

    # A chain buyer: pays DevUSD to the platform's address and names the transaction.
    chain_buy = httpx.post(
        f"{gw}/ipos/{ipo['id']}/purchase",
        json={"quantity": 4, "method": "chain"},
        headers=wallet_fan,
    )
    assert chain_buy.status_code == 201, chain_buy.text
    pay_to = chain_buy.json()["payTo"]
    assert pay_to["amount"] == "50000000"  # 4 x $12.50, 6 decimals
    payment_key = _genesis_key(4)  # DevUSD's owner in the development deployment
    chain.send(payment_key, chain.token.functions.mint(fan_wallet, 10**9))
    sent = chain.send(
        fan_key, chain.token.functions.transfer(pay_to["recipient"], int(pay_to["amount"]))
    )
    paid = httpx.post(
        f"{gw}/ipos/{ipo['id']}/purchases/{chain_buy.json()['id']}/payment",
        json={"txHash": sent["transactionHash"].to_0x_hex()},
        headers=wallet_fan,
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "paid"

    def holdings(headers: dict, expected: list) -> list | None:
        items = httpx.get(f"{gw}/user/holdings", headers=headers).json()["items"]
        lines = sorted((i["amount"], i["custody"]) for i in items)
        return lines if lines == expected else None

    eventually_sync(lambda: holdings(card_fan, [(2, True)]), within=60, what="custody holding")
    eventually_sync(lambda: holdings(wallet_fan, [(4, False)]), within=60, what="wallet holding")
    assert chain.shares.functions.mintedOf(token_id).call() == 6

    # Wallet to wallet, outside the platform: the holdings follow.
    friend = Account.create().address
    chain.send(
        fan_key,
        chain.shares.functions.safeTransferFrom(fan_wallet, friend, token_id, 1, b""),
    )
    eventually_sync(lambda: holdings(wallet_fan, [(3, False)]), within=60, what="the transfer")

    # A month of the Revenue Pass, a quarter to the holders: funded from the treasury on chain.
    admin = as_(ADMIN, "admin")
    upload = {
        "month": "2026-11",
        "totalRevenue": 10_000,
        "sources": [{"name": "streaming", "amount": 10_000}],
        "distributionBps": 2_500,
    }
    declared = httpx.post(f"{gw}/revenue-pass/distributions", json=upload, headers=admin)
    assert declared.status_code == 201, declared.text
    funded = httpx.post(
        f"{gw}/revenue-pass/distributions/2026-11/trigger", headers=admin, timeout=60
    )
    assert funded.status_code == 200, funded.text
    d = funded.json()
    # $25 over 6 shares, each holder's part floored: 12,500,000 (3 shares), 4,166,666 (1),
    # 8,333,333 (2, custody): 1 base unit left in the treasury.
    assert (d["perShareBaseUnits"], d["remainderBaseUnits"]) == ("4166666", "1")
    assert d["custodyBaseUnits"] == "8333333"

    proof = httpx.get(f"{gw}/distributions/{d['id']}/proof", headers=wallet_fan)
    assert proof.status_code == 200, proof.text
    leaf = proof.json()
    assert (leaf["account"], leaf["amount"]) == (fan_wallet, "12500000")
    before = chain.token.functions.balanceOf(fan_wallet).call()
    claim = chain.distributor.functions.claim(
        leaf["chainDistributionId"],
        leaf["index"],
        leaf["account"],
        int(leaf["amount"]),
        leaf["proof"],
    )
    chain.send(fan_key, claim)
    assert chain.token.functions.balanceOf(fan_wallet).call() == before + 12_500_000

    def claimed() -> dict | None:
        shown = httpx.get(f"{gw}/distributions/{d['id']}", headers=wallet_fan).json()
        return shown if shown["claimedCount"] == 1 else None

    assert eventually_sync(claimed, within=60, what="the claim")["claimedBaseUnits"] == "12500000"
    claims = httpx.get(f"{gw}/revenue-pass/claims/{fan_wallet.lower()}", headers=card_fan).json()
    assert claims["walletAddress"] == fan_wallet and claims["totalClaimed"] == "12500000"
    assert [(c["month"], c["amount"]) for c in claims["claimHistory"]] == [("2026-11", "12500000")]
    month = httpx.get(f"{gw}/revenue-pass/distributions/2026-11", headers=card_fan).json()
    assert (month["distributionAmount"], month["claimedCount"]) == (2_500, 1)
    with pytest.raises(ContractCustomError) as again:  # the contract refuses a second claim
        chain.send(fan_key, claim)
    already_claimed = "0x" + keccak(text="AlreadyClaimed(uint256,uint256)")[:4].hex()
    assert str(again.value.data).startswith(already_claimed)


def test_200_buyers_race_for_100_shares_and_exactly_100_are_sold_and_minted(
    platform: Platform, as_
) -> None:
    """Through the gateway: 200 fans want one share each of the last 100. Exactly 100 are
    reserved (the others refused before paying: 409 IPO_SOLD_OUT), all 100 paid by card and
    minted, and MasterShares' count on chain equals the allocations."""
    import asyncio

    gw, chain = platform.gateway, Chain(platform)
    master, ipo = _register_and_open(
        platform, as_(ARTIST, "artist"), "US-AUD-26-00099", cap=100, perAccountMax=1
    )
    fans = [as_(str(uuid.uuid4()), "fan") for _ in range(200)]

    async def race() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(timeout=60, limits=limits) as c:
            return await asyncio.gather(
                *(
                    c.post(f"{gw}/ipos/{ipo['id']}/purchase", json={"quantity": 1}, headers=fan)
                    for fan in fans
                )
            )

    answers = asyncio.run(race())
    won = [(fan, a.json()) for fan, a in zip(fans, answers, strict=True) if a.status_code == 201]
    refused = [a.json()["error"]["code"] for a in answers if a.status_code != 201]
    assert len(won) == 100 and refused == ["IPO_SOLD_OUT"] * 100

    async def pay_all() -> None:
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=20)) as c:

            async def pay(fan: dict, purchase: dict) -> None:
                for _ in range(300):  # payment opens the order once it heard nft's request
                    answer = await c.post(
                        f"{gw}/payments/checkout", json={"orderId": purchase["id"]}, headers=fan
                    )
                    if answer.status_code == 201:
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"order {purchase['id']} never opened")
                paid = await c.post(
                    answer.json()["url"], data={"card_number": "4242 4242 4242 4242"}
                )
                assert paid.status_code == 303

            await asyncio.gather(*(pay(fan, purchase) for fan, purchase in won))

    asyncio.run(pay_all())
    artist = as_(ARTIST, "artist")

    def all_minted() -> list | None:
        answer = httpx.get(f"{gw}/masters/{master['id']}/mints", headers=artist)
        assert answer.status_code == 200, answer.text  # not yet (a busy machine: 429, 503)
        items = answer.json()["items"]
        minted = [i for i in items if i["status"] == "minted"]
        return items if len(minted) == 100 else None

    # Asked every half second, as a client would poll: at 50 a second, minutes of polling
    # on a loaded machine ran into the artist's rate limit.
    items = eventually_sync(all_minted, within=240, every=0.5, what="100 allocations minted")
    assert len(items) == 100 and all(i["custody"] for i in items)
    assert chain.shares.functions.mintedOf(int(master["chainId"])).call() == 100
    shown = httpx.get(f"{gw}/masters/{master['id']}/ipo", headers=artist).json()
    assert (shown["allocated"], shown["available"], shown["status"]) == (100, 0, "closed")


# --- Coda Collective: a project funded by fans, paid out milestone by milestone --------------


def _project(gw: str, artist: dict, **terms) -> dict:
    body = {
        "title": "Live at the Roundhouse",
        "fundingGoal": 10_000,
        "currency": "USD",
        "fundingDeadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "revenueShareBps": 2_000,
        "milestones": [
            {"name": "Recording", "payoutAmount": 4_000},
            {"name": "Mixing and mastering", "payoutAmount": 6_000},
        ],
        **terms,
    }
    created = httpx.post(f"{gw}/projects", json=body, headers=artist)
    assert created.status_code == 201, created.text
    return created.json()


def _invest(platform: Platform, project: dict, fan: dict, amount: int) -> dict:
    funded = httpx.post(
        f"{platform.gateway}/projects/{project['id']}/fund", json={"amount": amount}, headers=fan
    )
    assert funded.status_code == 201, funded.text
    investment = funded.json()
    _pay_by_card(platform, investment, fan)
    return investment


def _available(gw: str, headers: dict) -> int:
    balances = httpx.get(f"{gw}/balances/me", headers=headers).json()["balances"]
    return sum(b["availableCents"] for b in balances if b["currency"] == "USD")


def test_fans_fund_a_project_by_card_milestones_pay_the_artist_and_a_missed_deadline_refunds(
    platform: Platform, as_
) -> None:
    gw = platform.gateway
    artist, admin = as_(ARTIST, "artist"), as_(ADMIN, "admin")
    fans = [as_(str(uuid.uuid4()), "fan") for _ in range(3)]
    short_fans = [as_(str(uuid.uuid4()), "fan") for _ in range(2)]  # each pays once a minute
    # A second project whose deadline passes while the first one's story runs.
    short = _project(
        gw,
        artist,
        title="Winter EP",
        fundingDeadline=(datetime.now(UTC) + timedelta(seconds=40)).isoformat(),
    )
    short_paid = [_invest(platform, short, fan, 1_500) for fan in short_fans]

    project = _project(gw, artist)
    pid = project["id"]
    over = httpx.post(f"{gw}/projects/{pid}/fund", json={"amount": 10_001}, headers=fans[0])
    assert (over.status_code, over.json()["error"]["details"]["left"]) == (409, 10_000)
    investments = [
        _invest(platform, project, fan, amount)
        for fan, amount in zip(fans, (3_000, 5_000, 2_000), strict=True)
    ]

    assert httpx.get(f"{gw}/projects/{pid}").status_code == 200  # the catalogue is public

    def in_progress() -> dict | None:  # asked as a signed-in fan: a budget of their own
        shown = httpx.get(f"{gw}/projects/{pid}", headers=fans[2]).json()
        return shown if shown["status"] == "in_progress" else None

    shown = eventually_sync(in_progress, within=60, every=0.5, what="the goal reached")
    assert (shown["amountRaised"], shown["escrowed"], shown["funders"]) == (10_000, 10_000, 3)

    recording, mixing = (m["id"] for m in shown["milestones"])
    proof = {"proofUrl": "https://files.example/roundhouse-takes.zip"}
    sent = httpx.post(f"{gw}/milestones/{recording}/submit-proof", json=proof, headers=artist)
    assert sent.status_code == 200, sent.text
    rejected = httpx.post(
        f"{gw}/milestones/{recording}/reject", json={"reason": "Two songs missing"}, headers=admin
    )
    assert rejected.json()["status"] == "locked"
    httpx.post(f"{gw}/milestones/{recording}/submit-proof", json=proof, headers=artist)
    assert httpx.post(f"{gw}/milestones/{recording}/approve", headers=admin).status_code == 200

    # The payout reaches the artist's balance once payment posts the milestone's hold.
    def artist_paid(cents: int):
        return lambda: _available(gw, artist) >= cents or None

    eventually_sync(artist_paid(3_800), within=60, every=0.5, what="the first payout")  # less 5%
    httpx.post(f"{gw}/milestones/{mixing}/submit-proof", json=proof, headers=artist)
    httpx.post(f"{gw}/milestones/{mixing}/approve", headers=admin)
    released = httpx.post(f"{gw}/projects/{pid}/finalize", headers=artist)
    assert (released.status_code, released.json()["status"]) == (200, "released")
    eventually_sync(artist_paid(3_800 + 5_700), within=60, every=0.5, what="the second payout")

    revenue = {"reference": "statement-2027-01", "amount": 50_000}
    assert httpx.post(f"{gw}/projects/{pid}/revenue", json=revenue, headers=admin).is_success
    claim = httpx.post(f"{gw}/investments/{investments[1]['id']}/claim-payout", headers=fans[1])
    assert claim.json()["amount"] == 5_000  # 20% of 50,000, half of it invested by this fan
    eventually_sync(
        lambda: _available(gw, fans[1]) == 5_000 or None, within=60, every=0.5, what="the claim"
    )

    def refunded() -> dict | None:
        seen = httpx.get(f"{gw}/projects/{short['id']}", headers=fans[2]).json()
        return seen if seen["status"] == "cancelled" else None

    ended = eventually_sync(refunded, within=90, every=0.5, what="the missed deadline")
    assert (ended["endedReason"], ended["refunded"], ended["escrowed"]) == ("deadline", 3_000, 0)
    for fan in short_fans:  # in full, into the fan's balance
        eventually_sync(
            lambda f=fan: _available(gw, f) >= 1_500 or None, within=60, every=0.5, what="refund"
        )
    assert [_available(gw, fan) for fan in short_fans] == [1_500, 1_500]
    assert [i["status"] for i in short_paid] == ["pending", "pending"]  # as answered at funding
    assert "balanced" in platform.verify_ledger()


# --- Coda Collective on chain: MilestoneEscrow in DevUSD, fans' own wallets ------------------


def _new_wallet(chain: Chain) -> str:
    """A fresh wallet with gas, from the test fan's genesis account; its key."""
    account = Account.create()
    funder = Account.from_key(_genesis_key(10))
    chain.transact(funder.key.to_0x_hex(), {"to": account.address, "value": 10**17})
    return account.key.to_0x_hex()


def _account_of(headers: dict[str, str]) -> str:
    import jwt

    return jwt.decode(headers["Authorization"][7:], options={"verify_signature": False})["sub"]


def test_fans_fund_a_project_on_chain_and_its_milestones_pay_the_artists_wallet(
    platform: Platform, as_
) -> None:
    gw, chain, admin = platform.gateway, Chain(platform), as_(ADMIN, "admin")
    artist_key = _new_wallet(chain)
    artist_wallet = Account.from_key(artist_key).address
    artist = _sign_in_with_wallet(platform, artist_key)  # auth tells nft: this wallet is theirs
    fan_keys = [_new_wallet(chain) for _ in range(3)]
    fans = [_sign_in_with_wallet(platform, key) for key in fan_keys]
    for key in fan_keys:  # test USDC, minted by DevUSD's owner
        chain.send(
            _genesis_key(4), chain.token.functions.mint(Account.from_key(key).address, 10**8)
        )
    usdc = 10**6

    def created() -> dict | None:  # an admin opens it for the artist, once nft knows the wallet
        answer = httpx.post(
            f"{gw}/projects",
            json={
                "title": "Songs from the Escrow",
                "fundingGoal": 100 * usdc,
                "currency": "USDC",
                "fundingMethod": "chain",
                "fundingDeadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
                "milestones": [
                    {"name": "Recording", "payoutAmount": 40 * usdc},
                    {"name": "Release", "payoutAmount": 60 * usdc},
                ],
                "artistId": _account_of(artist),
            },
            headers=admin,
        )
        return answer.json() if answer.status_code == 201 else None

    pid = eventually_sync(created, within=60, every=0.5, what="the project")["id"]

    for key, fan, amount in zip(fan_keys, fans, (30, 50, 20), strict=True):

        def prepared(fan: dict = fan, amount: int = amount) -> dict | None:  # escrow made
            answer = httpx.post(
                f"{gw}/projects/{pid}/fund",
                json={"amount": amount * usdc, "method": "chain"},
                headers=fan,
            )
            return answer.json() if answer.status_code == 201 else None

        funding = eventually_sync(prepared, within=60, every=0.5, what="the escrow")
        for tx in funding["transactions"]:  # the fan's wallet signs the approve, then the fund
            chain.transact(key, {"to": tx["to"], "data": tx["data"], "value": int(tx["value"])})

    def in_progress() -> dict | None:  # the chain's ProjectFunded logs, indexed
        shown = httpx.get(f"{gw}/projects/{pid}", headers=fans[0]).json()
        return shown if shown["status"] == "in_progress" else None

    shown = eventually_sync(in_progress, within=90, every=0.5, what="the goal reached")
    assert (shown["amountRaised"], shown["funders"], shown["escrowed"]) == (
        100 * usdc,
        3,
        100 * usdc,
    )
    escrow = chain.contract("MilestoneEscrow")
    assert shown["escrow"]["address"] == escrow.address
    for index, milestone in enumerate(shown["milestones"]):
        proof = {"proofUrl": f"https://files.example/escrow-{index}.zip"}
        sent = httpx.post(
            f"{gw}/milestones/{milestone['id']}/submit-proof", json=proof, headers=artist
        )
        assert sent.status_code == 200, sent.text
        assert httpx.post(f"{gw}/milestones/{milestone['id']}/approve", headers=admin).is_success

    def paid_out() -> bool:  # released on chain by nft's operator, to the artist's wallet
        return chain.token.functions.balanceOf(artist_wallet).call() == 100 * usdc

    eventually_sync(paid_out, within=90, every=0.5, what="the milestones released on chain")

    def finalized() -> dict | None:
        answer = httpx.post(f"{gw}/projects/{pid}/finalize", headers=artist)
        return answer.json() if answer.status_code == 200 else None

    assert eventually_sync(finalized, within=60, every=0.5)["status"] == "released"
    mine = httpx.get(f"{gw}/user/investments", headers=fans[1]).json()["items"]
    assert [(i["method"], i["amount"]) for i in mine] == [("chain", 50 * usdc)]
    assert "balanced" in platform.verify_ledger()  # no card money moved for it


# --- V Studio: shareholders vote live on the master they hold --------------------------------


def test_shareholders_vote_live_weighted_by_the_shares_nft_says_they_hold(
    platform: Platform, as_
) -> None:
    import asyncio
    import json

    import websockets

    gw = platform.gateway
    artist, admin = as_(ARTIST, "artist"), as_(ADMIN, "admin")
    fans = {3: as_(str(uuid.uuid4()), "fan"), 2: as_(str(uuid.uuid4()), "fan")}
    stranger = as_(str(uuid.uuid4()), "fan")
    master, ipo = _register_and_open(platform, artist, "US-AUD-26-00066")
    for quantity, fan in fans.items():  # card buyers: shares held in custody for them
        bought = httpx.post(
            f"{gw}/ipos/{ipo['id']}/purchase", json={"quantity": quantity}, headers=fan
        )
        assert bought.status_code == 201, bought.text
        _pay_by_card(platform, bought.json(), fan)

    def held(fan: dict, quantity: int) -> bool:
        items = httpx.get(f"{gw}/user/holdings", headers=fan).json()["items"]
        return sum(i["amount"] for i in items if i["masterId"] == master["id"]) == quantity

    for quantity, fan in fans.items():
        eventually_sync(lambda f=fan, q=quantity: held(f, q), within=90, every=0.5, what="minted")

    created = httpx.post(
        f"{gw}/vstudio/sessions",
        json={"masterId": master["id"], "title": "Finishing First Light"},
        headers=artist,
    )
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    not_theirs = httpx.post(
        f"{gw}/vstudio/sessions", json={"masterId": master["id"], "title": "Mine"}, headers=stranger
    )
    assert (not_theirs.status_code, not_theirs.json()["error"]["code"]) == (403, "FORBIDDEN")

    async def story() -> dict:
        url = f"{gw.replace('http://', 'ws://')}/vstudio/sessions/{sid}/ws"
        three, two = fans[3], fans[2]

        async def next_of(ws, kind: str, **fields) -> dict:  # type: ignore[no-untyped-def]
            async with asyncio.timeout(20):
                while True:
                    frame = json.loads(await ws.recv())
                    if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
                        return frame

        async with (
            httpx.AsyncClient(timeout=30) as c,
            websockets.connect(url, additional_headers=three) as ws3,
            websockets.connect(url, additional_headers=two) as ws2,
        ):
            for ws in (ws3, ws2):
                await ws.send(json.dumps({"type": "join", "userId": "ignored"}))
                await next_of(ws, "snapshot")
            opened = await c.post(
                f"{gw}/vstudio/sessions/{sid}/decisions",
                json={"question": "Which mix?", "options": ["Warm", "Bright"]},
                headers=artist,
            )
            assert opened.status_code == 201, opened.text
            did = opened.json()["decisionId"]
            for ws in (ws3, ws2):
                await next_of(ws, "decision_opened", decisionId=did)
            await ws3.send(json.dumps({"type": "vote", "decisionId": did, "choice": "Warm"}))
            assert (await next_of(ws3, "vote_ack"))["weight"] == 3  # its custody shares
            await ws2.send(json.dumps({"type": "vote", "decisionId": did, "choice": "Bright"}))
            assert (await next_of(ws2, "vote_ack"))["weight"] == 2
            for ws in (ws3, ws2):
                await next_of(ws, "vote_update", decisionId=did, results={"Warm": 3, "Bright": 2})
            outsider = await c.post(
                f"{gw}/vstudio/sessions/{sid}/vote",
                json={"decisionId": did, "choice": "Bright"},
                headers=stranger,
            )
            assert (outsider.status_code, outsider.json()["error"]["code"]) == (
                403,
                "NOT_A_SHAREHOLDER",
            )
            locked = await c.post(f"{gw}/vstudio/sessions/{sid}/lock", headers=artist)
            assert locked.status_code == 200, locked.text
            for ws in (ws3, ws2):
                closed = await next_of(ws, "decision_closed", decisionId=did)
                await next_of(ws, "session_locked", sessionId=sid)
            return closed

    closed = asyncio.run(story())
    assert (closed["winner"], closed["tie"]) == ("Warm", False)

    def final() -> dict | None:  # nft heard the lock
        shown = httpx.get(f"{gw}/masters/{master['id']}", headers=admin).json()
        return shown if shown["creativeState"] == "final" else None

    assert eventually_sync(final, within=60, every=0.5)["lockedBySession"] == sid
