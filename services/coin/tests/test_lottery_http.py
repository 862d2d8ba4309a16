"""The lottery served for real: the coin app on PostgreSQL, tokens verified against a real JWKS,
the Lottery contract's in-memory twin as its chain and a clock the tests move. What a fan and
an admin see: status, JSON body, error code.

One app serves the module. Each test opens its own round in a sales window of its own (the
clock moved weeks on), so it is the current round for that test whatever ran before.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import pytest_asyncio
from audifi_coin.adapters.lottery_memory import LOTTERY, TOKEN, TREASURY, InMemoryLotteryChain
from audifi_coin.app import create_app
from audifi_coin.domain.draw import commitment
from audifi_coin.lottery import seed_for
from audifi_events import encode
from audifi_events.payment import OrderPaid, Product
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.messages import Message
from audifi_kit.settings import Settings
from audifi_kit.testing import TokenSigner, drop_databases, eventually, served
from eth_utils import keccak, to_checksum_address
from litestar import Litestar, get
from litestar.routes import HTTPRoute

pytestmark = pytest.mark.asyncio(loop_scope="module")

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)
PRICE = 5_000_000  # 5 USDC (6 decimals)
WEI = 2 * 10**15  # 0.002 ETH
MASTER = "4f1c6a3e-0d2b-4c8e-9a7f-3b5d1e2c4a60"
KEY = bytes(range(32))
ADMIN, FAN = str(uuid.uuid4()), str(uuid.uuid4())
FORMULA = (
    "winningIndex = uint256(keccak256(seed ++ drawBlockHash)) mod ticketsSold; "
    "winningTicket = winningIndex + 1"
)


class Clock:
    """The rounds' time and the twin chain's (blocks' timestamps), moved by the tests."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Coin:
    app: Litestar
    http: httpx.AsyncClient
    signer: TokenSigner
    twin: InMemoryLotteryChain
    clock: Clock
    current_before_any_round: httpx.Response
    bus: InProcessBus

    def auth(self, sub: str = FAN, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.signer.token(sub, roles=roles or ('fan',))}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.auth(ADMIN, "admin")

    @property
    def fan(self) -> dict[str, str]:
        return self.auth(FAN)

    async def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.http.get(path, headers=self.fan if headers is None else headers)

    async def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.http.post(
            path, json=body, headers=self.fan if headers is None else headers
        )

    async def sold(self, round_id: str) -> int:
        answer = await self.get(f"/lottery/rounds/{round_id}")
        assert answer.status_code == 200, answer.text
        return int(answer.json()["totalTicketsSold"])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def coin(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Coin]:
    signer = TokenSigner()

    @get("/.well-known/jwks.json", sync_to_thread=False)
    def jwks() -> dict[str, Any]:
        return signer.jwks()

    prefix = f"audifi_c{uuid.uuid4().hex[:8]}_"
    clock = Clock(T0)
    twin = InMemoryLotteryChain(clock=clock)
    try:
        async with served(Litestar([jwks])) as auth:
            settings = Settings(
                database_url=postgres_url,
                db_prefix=prefix,
                var_dir=tmp_path_factory.mktemp("coin"),
                jwks_url=f"{auth}/.well-known/jwks.json",
                pool_size=3,
                extra={"AUDIFI_LOTTERY_SEED_KEY": KEY.hex()},
            )
            bus = InProcessBus()
            app = create_app(settings, bus, lottery_chain=twin, clock=clock)
            async with served(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
                first = await http.get(
                    "/lottery/rounds/current",
                    headers={"Authorization": f"Bearer {signer.token(FAN)}"},
                )
                yield Coin(app, http, signer, twin, clock, first, bus)
    finally:
        await drop_databases(postgres_url, prefix)


_epochs = itertools.count(1)


def terms(round_id: str, start: datetime, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": round_id,
        "ticketPrice": PRICE,
        "nativeTicketPrice": str(WEI),
        "burnMasterId": MASTER,
        "sharesPerTicket": 5,
        "maxTicketsPerWallet": 10,
        "startDate": start.isoformat(),
        "endDate": (start + timedelta(days=7)).isoformat(),
    }
    body.update(changes)
    return body


@dataclass
class Round:
    id: str
    start: datetime
    end: datetime
    request: dict[str, Any]
    body: dict[str, Any]


@pytest_asyncio.fixture(loop_scope="module")
async def opened(coin: Coin) -> Round:
    """A round of this test's own, selling now: the clock moved to a window no other test's
    round sells in."""
    start = T0 + timedelta(days=30 * next(_epochs))
    coin.clock.now = start + timedelta(hours=1)
    round_id = f"r{start:%Y%m%d}-{uuid.uuid4().hex[:6]}"
    body = terms(round_id, start)
    answer = await coin.post("/lottery/rounds", body, coin.admin)
    assert answer.status_code == 201, answer.text
    return Round(round_id, start, start + timedelta(days=7), body, answer.json())


def wallet() -> str:
    return to_checksum_address("0x" + os.urandom(20).hex())


def funded(coin: Coin) -> str:
    w = wallet()
    coin.twin.fund(w, usdc=1_000 * PRICE, native=100 * WEI)
    return w


def purchase(w: str, count: int, tx: str, amount: Any = None, **changes: Any) -> dict[str, Any]:
    body = {
        "walletAddress": w,
        "ticketCount": count,
        "paymentMethod": "USDC",
        "transactionSignature": tx,
        "amountPaid": count * PRICE if amount is None else amount,
    }
    body.update(changes)
    return body


def error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    found: dict[str, Any] = answer.json()["error"]
    assert found["code"] == code, answer.text
    return found


# -- routes ------------------------------------------------------------------------------------


async def test_both_controllers_register_their_routes_side_by_side(coin: Coin) -> None:
    routes = {
        (method, route.path)
        for route in coin.app.routes
        if isinstance(route, HTTPRoute) and route.path.startswith("/lottery")
        for method in route.methods
        if method not in ("OPTIONS", "HEAD")
    }
    assert routes == {
        ("POST", "/lottery/purchase"),
        ("POST", "/lottery/burn-claim"),
        ("POST", "/lottery/orders"),
        ("GET", "/lottery/orders/{order_id:uuid}"),
        ("GET", "/lottery/tickets/{wallet_address:str}"),
        ("GET", "/lottery/rounds/current"),
        ("GET", "/lottery/rounds"),
        ("POST", "/lottery/rounds"),
        ("GET", "/lottery/rounds/{round_id:str}"),
        ("GET", "/lottery/rounds/{round_id:str}/proof"),
        ("GET", "/lottery/rounds/{round_id:str}/tickets"),
        ("POST", "/lottery/rounds/{round_id:str}/draw"),
        ("POST", "/lottery/rounds/{round_id:str}/pot"),
    }
    allowed = await coin.http.options("/lottery/rounds")
    assert allowed.status_code == 204
    assert {"GET", "POST"} <= set(allowed.headers["allow"].split(", "))


async def test_every_route_needs_a_signed_in_caller(coin: Coin) -> None:
    for method, path in [
        ("GET", "/lottery/rounds/current"),
        ("GET", "/lottery/rounds"),
        ("GET", f"/lottery/tickets/{wallet()}"),
        ("POST", "/lottery/purchase"),
        ("POST", "/lottery/rounds"),
    ]:
        answer = await coin.http.request(method, path, json={} if method == "POST" else None)
        error(answer, 401, "UNAUTHORIZED")


async def test_before_any_round_there_is_no_current_round(coin: Coin) -> None:
    found = error(coin.current_before_any_round, 404, "ROUND_NOT_FOUND")
    assert found["message"] == "No lottery round is running"


# -- rounds ------------------------------------------------------------------------------------


async def test_an_admin_creates_a_round_that_fans_see_as_current(coin: Coin) -> None:
    start = T0 + timedelta(days=30 * next(_epochs))
    coin.clock.now = start + timedelta(minutes=5)
    round_id = f"w{start:%Y%m%d}"
    body = terms(round_id, start)

    error(await coin.post("/lottery/rounds", body, coin.fan), 403, "FORBIDDEN")
    bad = error(
        await coin.post(
            "/lottery/rounds", terms(round_id, start, endDate=start.isoformat()), coin.admin
        ),
        400,
        "VALIDATION_ERROR",
    )
    assert bad["message"] == "endDate must come after startDate"
    bad = error(
        await coin.post("/lottery/rounds", terms(round_id, start, sharesPerTicket=0), coin.admin),
        400,
        "VALIDATION_ERROR",
    )
    assert "a burn rule needs both burnMasterId and sharesPerTicket" in bad["message"]
    for wrong, field in [
        ({"ticketPrice": 5.0}, "ticketPrice"),
        ({"ticketPrice": "5 USDC"}, "ticketPrice"),
        ({"ticketPrice": -1}, "ticketPrice"),
        ({"nativeTicketPrice": True}, "nativeTicketPrice"),
        ({"startDate": "2031-03-03T12:00:00"}, "startDate"),
        ({"id": "round 1"}, "id"),
        ({"id": "x" * 51}, "id"),
        ({"id": "current"}, "id"),
        ({"burnMasterId": "not-a-uuid"}, "burnMasterId"),
        ({"maxTicketsPerWallet": -1}, "maxTicketsPerWallet"),
        ({"prizePool": "1"}, None),
    ]:
        answer = await coin.post("/lottery/rounds", terms(round_id, start, **wrong), coin.admin)
        found = error(answer, 400, "VALIDATION_ERROR")
        if field is not None:
            assert found["details"]["fields"][0]["field"] == field, answer.text
    # a round that has ended already is refused before anything is recorded or sent
    past = error(
        await coin.post("/lottery/rounds", terms(round_id, start - timedelta(days=30)), coin.admin),
        400,
        "VALIDATION_ERROR",
    )
    assert past["details"]["field"] == "endDate"
    error(await coin.get(f"/lottery/rounds/{round_id}"), 404, "ROUND_NOT_FOUND")

    created = await coin.post("/lottery/rounds", body, coin.admin)
    assert created.status_code == 201, created.text
    view = created.json()
    seed_hash = "0x" + commitment(seed_for(KEY, round_id)).hex()
    assert view == {
        "id": round_id,
        "prizePool": "0",
        "startDate": start.isoformat().replace("+00:00", "Z"),
        "endDate": (start + timedelta(days=7)).isoformat().replace("+00:00", "Z"),
        "totalTicketsSold": 0,
        "status": "active",
        "drawingDate": (start + timedelta(days=7)).isoformat().replace("+00:00", "Z"),
        "ticketPrice": str(PRICE),
        "nativeTicketPrice": str(WEI),
        "burnMasterId": MASTER,
        "sharesPerTicket": 5,
        "maxTicketsPerWallet": 10,
        "seedHash": seed_hash,
        "chainRoundId": view["chainRoundId"],
        "payTo": {
            "chainId": 31337,
            "lottery": LOTTERY,
            "treasury": TREASURY,
            "token": TOKEN,
            "confirmations": 1,
        },
        "currency": "USDC",
        "decimals": 6,
        "winner": None,
    }
    chain_round = coin.twin.rounds[view["chainRoundId"]]
    assert chain_round.seed_hash.hex() == seed_hash[2:]

    # the same request again answers the same round (no second chain round); other terms: 409
    opened_on_chain = len(coin.twin.rounds)
    again = await coin.post("/lottery/rounds", body, coin.admin)
    assert (again.status_code, again.json()) == (201, view)
    same_instant = terms(
        round_id,
        start.astimezone(timezone(timedelta(hours=2))),
        ticketPrice=str(PRICE),
    )
    assert (await coin.post("/lottery/rounds", same_instant, coin.admin)).json() == view
    assert len(coin.twin.rounds) == opened_on_chain
    other = error(
        await coin.post(
            "/lottery/rounds", terms(round_id, start, maxTicketsPerWallet=3), coin.admin
        ),
        409,
        "ROUND_EXISTS",
    )
    assert other["details"] == {"roundId": round_id}

    current = await coin.get("/lottery/rounds/current")
    assert (current.status_code, current.json()) == (200, view)
    one = await coin.get(f"/lottery/rounds/{round_id}")
    assert (one.status_code, one.json()) == (200, view)
    listed = await coin.get("/lottery/rounds")
    assert listed.status_code == 200 and listed.json()[0] == view
    error(await coin.get("/lottery/rounds/no-such-round"), 404, "ROUND_NOT_FOUND")
    # nothing to prove or draw yet
    error(await coin.get(f"/lottery/rounds/{round_id}/proof"), 409, "ROUND_NOT_DRAWN")
    error(
        await coin.post(f"/lottery/rounds/{round_id}/draw", None, coin.admin), 409, "ROUND_NOT_OVER"
    )
    error(await coin.post(f"/lottery/rounds/{round_id}/draw", None, coin.fan), 403, "FORBIDDEN")


# -- purchases ---------------------------------------------------------------------------------


async def test_a_fan_pays_the_treasury_and_gets_numbered_tickets(coin: Coin, opened: Round) -> None:
    alice, bob = funded(coin), funded(coin)
    paid = coin.twin.pay(alice, 3 * PRICE)
    answer = await coin.post("/lottery/purchase", purchase(alice.lower(), 3, paid))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "success": True,
        "ticketsIssued": [1, 2, 3],
        "totalTickets": 3,
        "transactionVerified": True,
        "roundId": opened.id,
    }
    # amountPaid as a string of digits; the wallet's total counts both purchases
    again = coin.twin.pay(alice, 2 * PRICE)
    answer = await coin.post("/lottery/purchase", purchase(alice, 2, again, str(2 * PRICE)))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["ticketsIssued"], answer.json()["totalTickets"]) == ([4, 5], 5)
    # in the native coin, wei as a string (above JSON's exact integers for big sums)
    native = coin.twin.pay(bob, 2 * WEI, method="ETH")
    body = purchase(bob, 2, native, str(2 * WEI), paymentMethod="ETH")
    answer = await coin.post("/lottery/purchase", body)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["ticketsIssued"], answer.json()["totalTickets"]) == ([6, 7], 2)

    # a retry with the same Idempotency-Key answers the purchase again, not TX_HASH_USED
    key = {"Idempotency-Key": f"buy-{uuid.uuid4()}"}
    body = purchase(bob, 1, coin.twin.pay(bob, PRICE))
    first = await coin.post("/lottery/purchase", body, coin.fan | key)
    assert first.status_code == 200, first.text
    retried = await coin.post("/lottery/purchase", body, coin.fan | key)
    assert (retried.status_code, retried.json()) == (200, first.json())
    assert retried.headers["idempotent-replayed"] == "true"
    assert first.json()["ticketsIssued"] == [8]

    current = (await coin.get("/lottery/rounds/current")).json()
    assert (current["totalTicketsSold"], current["prizePool"]) == (8, str(6 * PRICE))
    assert coin.twin.rounds[current["chainRoundId"]].count == 8


async def test_what_does_not_add_up_is_refused_and_issues_nothing(
    coin: Coin, opened: Round
) -> None:
    alice, bob = funded(coin), funded(coin)
    used = coin.twin.pay(alice, 2 * PRICE)
    assert (await coin.post("/lottery/purchase", purchase(alice, 2, used))).status_code == 200
    sold = await coin.sold(opened.id)
    assert sold == 2

    # the same transaction again: 409, the whole envelope, naming the tickets it issued
    answer = await coin.post("/lottery/purchase", purchase(alice, 2, used))
    assert answer.status_code == 409
    assert answer.json() == {
        "error": {
            "code": "TX_HASH_USED",
            "message": "This transaction already issued tickets",
            "details": {"txHash": used, "roundId": opened.id, "ticketsIssued": [1, 2]},
        },
        "requestId": answer.headers["x-request-id"],
    }
    assert answer.json()["requestId"]

    paid = coin.twin.pay(alice, 2 * PRICE)
    refusals: list[tuple[dict[str, Any], int, str]] = [
        (purchase(alice, 2, paid, 3 * PRICE), 400, "AMOUNT_MISMATCH"),
        (purchase(alice, 0, paid, 0), 400, "VALIDATION_ERROR"),
        (purchase(alice, 10_001, paid), 400, "VALIDATION_ERROR"),
        (purchase(alice, 9, paid), 400, "TICKET_CAP_EXCEEDED"),  # holds 2, the cap is 10
        (purchase(alice, 2, paid, 2.0 * PRICE), 400, "VALIDATION_ERROR"),
        (purchase(alice, 2, paid, True), 400, "VALIDATION_ERROR"),
        (purchase(alice, 2, paid, -2 * PRICE), 400, "VALIDATION_ERROR"),
        (purchase(alice, 2, paid, "10 USDC"), 400, "VALIDATION_ERROR"),
        (purchase(alice, 2.0, paid), 400, "VALIDATION_ERROR"),
        (purchase(alice, 2, paid, paymentMethod="SOL"), 400, "VALIDATION_ERROR"),
        (purchase(alice, 2, paid, nftBurned="x"), 400, "VALIDATION_ERROR"),
        (purchase("0x1234", 2, paid), 400, "VALIDATION_ERROR"),
        (purchase(alice, 2, "0xabc"), 400, "VALIDATION_ERROR"),
        (purchase(bob, 2, paid), 400, "WALLET_MISMATCH"),
        (purchase(alice, 2, paid, paymentMethod="ETH"), 400, "AMOUNT_MISMATCH"),
        (purchase(alice, 2, "0x" + "ab" * 32), 404, "PAYMENT_NOT_FOUND"),
        (purchase(alice, 2, coin.twin.pay(alice, 2 * PRICE, ok=False)), 400, "PAYMENT_FAILED"),
        (
            purchase(alice, 2, coin.twin.pay(alice, 2 * PRICE, to=wallet())),
            400,
            "PAYMENT_MISMATCH",
        ),
    ]
    for body, status, code in refusals:
        found = error(await coin.post("/lottery/purchase", body), status, code)
        assert await coin.sold(opened.id) == sold, (body, found)
    assert coin.twin.rounds[-1].count == sold
    found = error(
        await coin.post("/lottery/purchase", purchase(alice, 2, paid, 2.5 * PRICE)),
        400,
        "VALIDATION_ERROR",
    )
    assert found["details"]["fields"][0]["field"] == "amountPaid"
    found = error(
        await coin.post("/lottery/purchase", purchase(alice, 0, paid, 0)), 400, "VALIDATION_ERROR"
    )
    assert found["details"]["fields"][0]["field"] == "ticketCount"

    # the refused transaction is still good for what it paid
    answer = await coin.post("/lottery/purchase", purchase(alice, 2, paid))
    assert answer.status_code == 200, answer.text
    assert answer.json()["ticketsIssued"] == [3, 4]


async def test_a_fan_claims_tickets_for_the_shares_burnt(coin: Coin, opened: Round) -> None:
    carol, dave = wallet(), wallet()
    coin.twin.grant_shares(carol, MASTER, 20)
    coin.twin.grant_shares(dave, MASTER, 20)
    burnt = [coin.twin.burn(carol, MASTER, 5), coin.twin.burn(carol, MASTER, 5)]
    claim = {
        "walletAddress": carol,
        "nftsBurned": [MASTER.upper()],
        "transactionSignatures": burnt,
        "ticketsClaimed": 2,
    }
    wrong_master = claim | {"nftsBurned": [str(uuid.uuid4())]}
    found = error(await coin.post("/lottery/burn-claim", wrong_master), 400, "VALIDATION_ERROR")
    assert found["details"] == {"field": "nftsBurned[0]", "burnMasterId": MASTER}
    error(
        await coin.post("/lottery/burn-claim", claim | {"ticketsClaimed": 3}), 400, "BURN_MISMATCH"
    )
    assert await coin.sold(opened.id) == 0

    answer = await coin.post("/lottery/burn-claim", claim)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "success": True,
        "ticketsIssued": [1, 2],
        "totalTickets": 2,
        "transactionVerified": True,
        "roundId": opened.id,
        "sharesBurned": "10",
    }
    error(await coin.post("/lottery/burn-claim", claim), 409, "TX_HASH_USED")

    # carol burns dave's shares (an approved operator may): not hers to claim, nor his here
    theirs = coin.twin.burn(carol, MASTER, 5, holder=dave)
    body = {"walletAddress": carol, "transactionSignatures": [theirs], "ticketsClaimed": 1}
    error(await coin.post("/lottery/burn-claim", body), 400, "BURN_NOT_YOURS")
    paid = coin.twin.pay(funded(coin), PRICE)
    body = {"walletAddress": carol, "transactionSignatures": [paid], "ticketsClaimed": 1}
    error(await coin.post("/lottery/burn-claim", body), 400, "NO_BURN")
    error(
        await coin.post("/lottery/burn-claim", body | {"transactionSignatures": []}),
        400,
        "VALIDATION_ERROR",
    )
    assert await coin.sold(opened.id) == 2


async def test_a_wallet_reads_its_tickets_in_the_current_round(coin: Coin, opened: Round) -> None:
    alice, bob = funded(coin), funded(coin)
    coin.twin.grant_shares(alice, MASTER, 5)
    bought = [coin.twin.pay(alice, 2 * PRICE), coin.twin.pay(bob, PRICE)]
    assert (await coin.post("/lottery/purchase", purchase(alice, 2, bought[0]))).status_code == 200
    assert (await coin.post("/lottery/purchase", purchase(bob, 1, bought[1]))).status_code == 200
    burnt = coin.twin.burn(alice, MASTER, 5)
    claim = {"walletAddress": alice, "transactionSignatures": [burnt], "ticketsClaimed": 1}
    assert (await coin.post("/lottery/burn-claim", claim)).status_code == 200

    answer = await coin.get(f"/lottery/tickets/{alice.lower()}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    issued = [e.pop("issuedIn") for e in body["entries"]]
    assert body == {
        "walletAddress": alice,
        "roundId": opened.id,
        "totalTickets": 3,
        "ticketNumbers": [1, 2, 4],
        "entries": [
            {
                "roundId": opened.id,
                "ticketNumbers": [1, 2],
                "acquisitionMethod": "purchase",
                "paymentMethod": "USDC",
                "transactionSignature": bought[0],
                "potAdded": str(2 * PRICE),
            },
            {
                "roundId": opened.id,
                "ticketNumbers": [4],
                "acquisitionMethod": "burn",
                "paymentMethod": None,
                "transactionSignature": burnt,
                "potAdded": "0",
            },
        ],
    }
    assert all(h.startswith("0x") and len(h) == 66 for h in issued)

    nobody = wallet()
    answer = await coin.get(f"/lottery/tickets/{nobody}")
    assert answer.status_code == 200
    assert answer.json() == {
        "walletAddress": nobody,
        "roundId": opened.id,
        "totalTickets": 0,
        "ticketNumbers": [],
        "entries": [],
    }
    found = error(await coin.get("/lottery/tickets/0xnot-a-wallet"), 400, "VALIDATION_ERROR")
    assert found["details"]["fields"][0]["field"] == "walletAddress"


# -- the pot and the draw ----------------------------------------------------------------------


async def test_the_draw_pays_a_winner_anyone_can_recompute(coin: Coin, opened: Round) -> None:
    buyers = [funded(coin) for _ in range(3)]
    for n, buyer in enumerate(buyers, start=1):
        paid = coin.twin.pay(buyer, n * PRICE)
        answer = await coin.post("/lottery/purchase", purchase(buyer, n, paid))
        assert answer.status_code == 200, answer.text

    # the admin tops up the pot, and reads the sales
    path = f"/lottery/rounds/{opened.id}"
    error(await coin.post(f"{path}/pot", {"amount": "1000000"}, coin.fan), 403, "FORBIDDEN")
    error(await coin.post(f"{path}/pot", {"amount": 0}, coin.admin), 400, "VALIDATION_ERROR")
    error(await coin.post(f"{path}/pot", {"amount": 1.5}, coin.admin), 400, "VALIDATION_ERROR")
    error(
        await coin.post("/lottery/rounds/nope/pot", {"amount": 1}, coin.admin),
        404,
        "ROUND_NOT_FOUND",
    )
    topped = await coin.post(f"{path}/pot", {"amount": "1000000"}, coin.admin)
    assert topped.status_code == 200, topped.text
    pot = 6 * PRICE + 1_000_000
    assert topped.json()["prizePool"] == str(pot)

    error(await coin.get(f"{path}/tickets", coin.fan), 403, "FORBIDDEN")
    sales = await coin.get(f"{path}/tickets", coin.admin)
    assert sales.status_code == 200, sales.text
    assert [(s["firstTicket"], s["count"], s["wallet"]) for s in sales.json()] == [
        (1, 1, buyers[0]),
        (2, 2, buyers[1]),
        (4, 3, buyers[2]),
    ]
    assert all(
        (s["acquisitionMethod"], s["paymentMethod"], s["potAdded"])
        == ("purchase", "USDC", str(s["count"] * PRICE))
        for s in sales.json()
    )

    # not before the end date; then drawn, once
    error(await coin.post(f"{path}/draw", None, coin.admin), 409, "ROUND_NOT_OVER")
    coin.clock.now = opened.end + timedelta(minutes=1)
    retried = await coin.post("/lottery/rounds", opened.request, coin.admin)  # ended: still it
    assert retried.status_code == 201 and retried.json()["id"] == opened.id, retried.text
    before = {b: coin.twin.token.get(b, 0) for b in buyers}
    drawn = await coin.post(f"{path}/draw", None, coin.admin)
    assert drawn.status_code == 200, drawn.text
    view = drawn.json()
    assert view["status"] == "completed"
    assert view["totalTicketsSold"] == 6 and view["prizePool"] == str(pot)
    winner = view["winner"]
    assert winner["prize"] == str(pot) and winner["wallet"] in buyers
    assert view["drawingDate"] == coin.clock.now.isoformat().replace("+00:00", "Z")
    again = await coin.post(f"{path}/draw", None, coin.admin)
    assert (again.status_code, again.json()) == (200, view)

    # the proof alone names the winner
    answer = await coin.get(f"{path}/proof")
    assert answer.status_code == 200, answer.text
    proof = answer.json()
    assert set(proof) == {
        "roundId",
        "chainId",
        "lottery",
        "chainRoundId",
        "seedHash",
        "seed",
        "closeBlock",
        "drawBlock",
        "drawBlockHash",
        "ticketsSold",
        "winningIndex",
        "winningTicket",
        "winner",
        "prize",
        "formula",
    }
    assert (proof["roundId"], proof["chainId"], proof["lottery"]) == (opened.id, 31337, LOTTERY)
    assert proof["formula"] == FORMULA and proof["drawBlock"] == proof["closeBlock"] + 1
    for name in ("seedHash", "seed", "drawBlockHash"):
        assert proof[name] == proof[name].lower() and len(proof[name]) == 66
    seed = bytes.fromhex(proof["seed"][2:])
    assert "0x" + keccak(seed).hex() == proof["seedHash"] == opened.body["seedHash"]
    mixed = keccak(seed + bytes.fromhex(proof["drawBlockHash"][2:]))
    index = int.from_bytes(mixed, "big") % proof["ticketsSold"]
    assert (proof["ticketsSold"], proof["winningIndex"], proof["winningTicket"]) == (
        6,
        index,
        index + 1,
    )
    holder = next(
        s["wallet"]
        for s in sales.json()
        if s["firstTicket"] <= index + 1 < s["firstTicket"] + s["count"]
    )
    assert proof["winner"] == holder == winner["wallet"]
    assert winner["ticketNumber"] == index + 1 and proof["prize"] == str(pot)
    assert proof["drawBlockHash"] == "0x" + coin.twin.block_hash(proof["drawBlock"]).hex()
    # the winner's wallet was paid the pot on chain; nobody else's moved
    assert {b: coin.twin.token.get(b, 0) - before[b] for b in buyers} == {
        b: pot if b == holder else 0 for b in buyers
    }

    # the past round with its winner, among every round, newest first
    listed = (await coin.get("/lottery/rounds")).json()
    assert next(r for r in listed if r["id"] == opened.id) == view
    assert [r["id"] for r in listed].index(opened.id) == 0
    error(await coin.post(f"{path}/pot", {"amount": 1}, coin.admin), 409, "ROUND_COMPLETED")


# -- tickets by card ---------------------------------------------------------------------------


async def test_tickets_bought_by_card_are_issued_when_payment_says_paid(
    coin: Coin, opened: Round
) -> None:
    w = wallet()
    made = await coin.post("/lottery/orders", {"walletAddress": w, "ticketCount": 2})
    assert made.status_code == 201, made.text
    order = made.json()
    assert (order["status"], order["amountCents"], order["currency"]) == ("pending", 1000, "USD")
    assert order["roundId"] == opened.id and order["ticketsIssued"] == []
    others = await coin.get(f"/lottery/orders/{order['id']}", coin.auth(str(uuid.uuid4())))
    error(others, 404, "ORDER_NOT_FOUND")  # another fan's order is not theirs to read

    paid = OrderPaid(
        order_id=order["id"],
        product=Product(service="coin", kind="lottery_tickets", reference=opened.id),
        buyer_id=FAN,
        seller_id="lottery",
        quantity=2,
        amount_cents=1000,
        currency="USD",
        payment_intent_id="pi_test_1",
        paid_at=coin.clock.now,
        ledger_transaction_id=None,
    )
    for attempt in (1, 2):  # payment's verdict, delivered twice
        await coin.bus.publish(
            [
                Message(
                    message_id=f"payment-test-{order['id']}-{attempt}",
                    routing_key=OrderPaid.routing_key,
                    body=encode(paid),
                    schema_version=OrderPaid.schema_version,
                )
            ]
        )

    async def issued() -> dict[str, Any] | None:
        seen = (await coin.get(f"/lottery/orders/{order['id']}")).json()
        return seen if seen["status"] == "issued" else None

    done = await eventually(issued, what="the card order's tickets issued")
    assert done["ticketsIssued"] == [1, 2]
    mine = (await coin.get(f"/lottery/tickets/{w}")).json()
    assert mine["ticketNumbers"] == [1, 2] and mine["entries"][0]["paymentMethod"] == "CARD"
    assert await coin.sold(opened.id) == 2  # the redelivered verdict issued nothing more
