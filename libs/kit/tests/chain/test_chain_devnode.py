"""The development node: the embedded EVM as a JSON-RPC node over HTTP, the platform deployed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from audifi_kit.chain import ChainAdapter
from audifi_kit.chain.devnode import create_node_app, dev_private_key
from audifi_kit.chain.platform import (
    EMBEDDED_ACCOUNTS,
    MINTER_ROLE,
    Deployment,
    PlatformChain,
    artifact,
    load_deployment,
)
from audifi_kit.settings import Settings
from audifi_kit.testing import served
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, keccak

UNAUTHORIZED = function_signature_to_4byte_selector(
    "AccessControlUnauthorizedAccount(address,bytes32)"
)
COIN_CREATED = keccak(text="ArtistCoinCreated(address,address,string,string,uint256,address)")
ARTIST = Account.from_key("0x" + "c3" * 32).address


@pytest.fixture(scope="module")
def node() -> Iterator[str]:
    """One node for the module, served by its own thread and event loop (each test has its own
    loop): the tests here only read, or write what no other test reads."""
    started = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()
        async with served(create_node_app(Settings())) as url:
            state["url"] = url
            started.set()
            await state["stop"].wait()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:
            state["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=run, name="devnode", daemon=True)
    thread.start()
    started.wait(timeout=60)
    if "url" not in state:
        raise RuntimeError("the development node did not start") from state.get("error")
    yield state["url"]
    state["loop"].call_soon_threadsafe(state["stop"].set)
    thread.join(timeout=30)
    assert not thread.is_alive() and "error" not in state


@pytest.fixture
async def rpc(node: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=node, timeout=10) as client:
        yield client


async def call(
    rpc: httpx.AsyncClient, method: str, *params: Any, call_id: Any = 1
) -> dict[str, Any]:
    response = await rpc.post(
        "/", json={"jsonrpc": "2.0", "id": call_id, "method": method, "params": params}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    answer: dict[str, Any] = response.json()
    assert answer["jsonrpc"] == "2.0" and answer["id"] == call_id
    return answer


def is_hex(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("0x") and int(value, 16) >= 0


async def test_chain_id_and_block_number_are_hex_quantities(
    rpc: httpx.AsyncClient, node: str
) -> None:
    deployment = await load_deployment(node + "/deployment")

    chain_id = (await call(rpc, "eth_chainId"))["result"]
    height = (await call(rpc, "eth_blockNumber", call_id="height"))["result"]

    assert is_hex(chain_id) and int(chain_id, 16) == deployment.chain_id
    assert is_hex(height) and int(height, 16) >= max(c.block for c in deployment.contracts.values())


async def test_a_batch_is_answered_in_order_with_its_ids(rpc: httpx.AsyncClient, node: str) -> None:
    deployment = await load_deployment(node + "/deployment")
    batch = [
        {"jsonrpc": "2.0", "id": "first", "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber"},
        {"jsonrpc": "2.0", "id": 3, "params": []},  # no method: only this one is refused
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "eth_getCode",
            "params": [deployment.address("MasterShares"), "latest"],
        },
    ]

    response = await rpc.post("/", json=batch)

    answers = response.json()
    assert isinstance(answers, list)
    assert [a["id"] for a in answers] == ["first", 2, 3, 4]
    assert int(answers[0]["result"], 16) == deployment.chain_id
    assert is_hex(answers[1]["result"])
    assert answers[2]["error"]["code"] == -32600 and "result" not in answers[2]
    assert len(answers[3]["result"]) > 2


async def test_malformed_json_is_a_parse_error(rpc: httpx.AsyncClient) -> None:
    response = await rpc.post(
        "/", content=b'{"jsonrpc": "2.0", "method": ', headers={"content-type": "application/json"}
    )

    assert response.status_code == 200
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": "Parse error"},
    }


@pytest.mark.parametrize(
    "request_body",
    [{"jsonrpc": "2.0", "id": 5}, {"jsonrpc": "2.0", "id": 5, "method": 42}],
    ids=["no-method", "method-not-a-string"],
)
async def test_a_request_without_a_method_is_an_invalid_request(
    rpc: httpx.AsyncClient, request_body: dict[str, Any]
) -> None:
    response = await rpc.post("/", json=request_body)

    assert response.json() == {
        "jsonrpc": "2.0",
        "id": 5,
        "error": {"code": -32600, "message": "Invalid Request"},
    }


async def test_a_batch_member_that_is_not_an_object_is_an_invalid_request(
    rpc: httpx.AsyncClient,
) -> None:
    response = await rpc.post("/", json=[7, {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}])

    first, second = response.json()
    assert first == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "Invalid Request"},
    }
    assert is_hex(second["result"])


async def test_health_answers_ok(rpc: httpx.AsyncClient) -> None:
    response = await rpc.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_the_served_deployment_is_what_a_service_on_the_node_loads(
    rpc: httpx.AsyncClient, node: str
) -> None:
    response = await rpc.get("/deployment")
    platform = PlatformChain(
        Settings(
            chain_rpc_url=node,
            chain_private_key=dev_private_key("payment"),
            chain_deployment=node + "/deployment",
        )
    )
    try:
        loaded = await platform.start()
    finally:
        await platform.close()

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert Deployment.from_json(response.content) == loaded
    assert response.json()["contracts"]["Lottery"]["address"] == loaded.address("Lottery")
    assert response.json()["chainId"] == loaded.chain_id


async def test_a_reverting_call_answers_code_3_with_the_custom_error(
    rpc: httpx.AsyncClient, node: str
) -> None:
    deployment = await load_deployment(node + "/deployment")
    coin = deployment.operators["coin"]
    data = function_signature_to_4byte_selector("mint(address,uint256,uint256)") + abi_encode(
        ["address", "uint256", "uint256"], [ARTIST, 1, 1]
    )
    tx = {"from": coin, "to": deployment.address("MasterShares"), "data": "0x" + data.hex()}

    answer = await call(rpc, "eth_call", tx, "latest", call_id=11)

    error = answer["error"]
    assert "result" not in answer
    assert error["code"] == 3
    assert "execution reverted" in error["message"]
    revert = bytes.fromhex(error["data"].removeprefix("0x"))
    assert error["data"].startswith("0x") and revert[:4] == UNAUTHORIZED
    account, role = abi_decode(["address", "bytes32"], revert[4:])
    assert (account.lower(), role) == (coin.lower(), MINTER_ROLE)


async def test_dev_keys_are_the_embedded_accounts_of_each_service(node: str) -> None:
    deployment = await load_deployment(node + "/deployment")

    for service in ("nft", "coin", "payment"):
        assert Account.from_key(dev_private_key(service)).address == deployment.operators[service]
    assert Account.from_key(dev_private_key("deployer")).address == deployment.deployer
    keys = {dev_private_key(service) for service in EMBEDDED_ACCOUNTS}
    assert len(keys) == len(EMBEDDED_ACCOUNTS)


async def test_coin_creates_an_artist_coin_through_the_node_and_its_log_is_served(
    rpc: httpx.AsyncClient, node: str
) -> None:
    deployment = await load_deployment(node + "/deployment")
    adapter = await ChainAdapter.connect(
        Settings(chain_rpc_url=node, chain_private_key=dev_private_key("coin"))
    )
    try:
        assert adapter.address == deployment.operators["coin"]
        assert adapter.chain_id == deployment.chain_id
        factory = adapter.contract(
            artifact("ArtistCoinFactory"), deployment.address("ArtistCoinFactory")
        )
        receipt = await adapter.transact(
            factory, "createCoin", ARTIST, "Night Owls", "OWL", 10**24, ARTIST
        )
        coin_address = await adapter.call(factory, "coinOf", ARTIST)
    finally:
        await adapter.close()

    address = deployment.address("ArtistCoinFactory")
    logs = (
        await call(
            rpc,
            "eth_getLogs",
            {"address": address, "fromBlock": hex(receipt["blockNumber"]), "toBlock": "latest"},
        )
    )["result"]

    assert len(logs) == 1
    log = logs[0]
    assert log["address"].lower() == address.lower()
    assert log["topics"][0] == "0x" + COIN_CREATED.hex()
    assert int(log["topics"][1], 16) == int(ARTIST, 16)
    assert int(log["topics"][2], 16) == int(coin_address, 16)
    assert log["transactionHash"] == receipt["transactionHash"].to_0x_hex()
    assert int(log["blockNumber"], 16) == receipt["blockNumber"]
    name, symbol, supply, recipient = abi_decode(
        ["string", "string", "uint256", "address"], bytes.fromhex(log["data"][2:])
    )
    assert (name, symbol, supply, recipient.lower()) == (
        "Night Owls",
        "OWL",
        10**24,
        ARTIST.lower(),
    )
