"""The platform's contracts on a chain: deployed once, each handed to the service operating it,
and a node's deployment checked against the node before a service signs anything."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from audifi_kit.chain.devnode import create_node_app, dev_private_key
from audifi_kit.chain.platform import (
    DEFAULT_ADMIN_ROLE,
    DEFAULT_ROLES,
    MINTER_ROLE,
    PLATFORM_CONTRACTS,
    Deployment,
    PlatformChain,
    load_deployment,
)
from audifi_kit.errors import BlockchainError
from audifi_kit.settings import Settings
from audifi_kit.testing import served
from eth_account import Account

FAN = Account.from_key("0x" + "a1" * 32).address
ROYALTIES = Account.from_key("0x" + "a2" * 32).address


@pytest.fixture
async def platform() -> AsyncIterator[PlatformChain]:
    """The embedded platform: one in-process EVM, the contracts deployed."""
    chain = PlatformChain(Settings())
    await chain.start()
    yield chain
    await chain.close()


@pytest.fixture
async def node() -> AsyncIterator[str]:
    """A development node (its own EVM, the platform deployed) over HTTP: its base URL."""
    async with served(create_node_app(Settings())) as url:
        yield url


def node_settings(url: str, deployment: str | None, service: str = "nft") -> Settings:
    return Settings(
        chain_rpc_url=url, chain_private_key=dev_private_key(service), chain_deployment=deployment
    )


async def open_ipo(platform: PlatformChain, master_id: int, cap: int = 100) -> None:
    nft = await platform.adapter("nft")
    shares = await platform.contract("nft", "MasterShares")
    await nft.transact(shares, "openIpo", master_id, cap, ROYALTIES, 500)


# -- embedded: deployed at start ---------------------------------------------------------------


async def test_start_deploys_every_platform_contract_on_the_embedded_chain(
    platform: PlatformChain,
) -> None:
    deployment = await platform.start()
    reader = await platform.adapter("deployer")

    assert set(deployment.contracts) == set(PLATFORM_CONTRACTS)
    for name in PLATFORM_CONTRACTS:
        code = await reader.w3.eth.get_code(deployment.address(name))
        assert len(code) > 0, f"no code at {name}"
    assert deployment.chain_id == await reader.w3.eth.chain_id
    assert deployment.payment_token == deployment.address("DevUSD")
    assert deployment.embedded is True
    assert deployment.operators == {
        s: (await platform.adapter(s)).address for s in set(DEFAULT_ROLES.values())
    }


async def test_start_twice_and_concurrently_deploys_once() -> None:
    platform = PlatformChain(Settings())
    try:
        first, second, third = await asyncio.gather(
            platform.start(), platform.start(), platform.start()
        )
        reader = await platform.adapter("deployer")
        height = await reader.w3.eth.block_number
        again = await platform.start()

        assert first is second is third is again is platform.deployment
        assert await reader.w3.eth.block_number == height  # the second start sent nothing
        created = []
        for number in range(1, height + 1):
            block = await reader.w3.eth.get_block(number, full_transactions=True)
            for tx in block["transactions"]:
                receipt = await reader.w3.eth.get_transaction_receipt(tx["hash"])
                if receipt["contractAddress"] is not None:
                    created.append(receipt["contractAddress"])
        assert sorted(created) == sorted(c.address for c in first.contracts.values())
    finally:
        await platform.close()


# -- who operates what --------------------------------------------------------------------------


async def test_nft_opens_ipos_and_mints_master_shares(platform: PlatformChain) -> None:
    nft = await platform.adapter("nft")
    shares = await platform.contract("nft", "MasterShares")

    await open_ipo(platform, 7, cap=10)
    receipt = await nft.transact(shares, "mint", FAN, 7, 3)

    assert receipt["status"] == 1
    assert await nft.call(shares, "balanceOf", FAN, 7) == 3
    assert await nft.call(shares, "mintedOf", 7) == 3


async def test_coin_cannot_mint_master_shares(platform: PlatformChain) -> None:
    await open_ipo(platform, 7)
    coin = await platform.adapter("coin")
    shares = await platform.contract("coin", "MasterShares")
    nonce = await coin.w3.eth.get_transaction_count(coin.address)

    with pytest.raises(BlockchainError) as refused:
        await coin.transact(shares, "mint", FAN, 7, 1)

    assert refused.value.details["error"] == "AccessControlUnauthorizedAccount"
    assert refused.value.details["args"] == {
        "account": coin.address.lower(),  # as the ABI decodes it
        "neededRole": "0x" + MINTER_ROLE.hex(),
    }
    assert await coin.w3.eth.get_transaction_count(coin.address) == nonce  # nothing was sent
    assert await coin.call(shares, "balanceOf", FAN, 7) == 0


async def test_the_deployer_keeps_no_role_on_master_shares(platform: PlatformChain) -> None:
    deployment = await platform.start()
    nft = await platform.adapter("nft")
    shares = await platform.contract("nft", "MasterShares")
    operator = deployment.operators["nft"]

    assert deployment.deployer != operator
    assert await nft.call(shares, "hasRole", DEFAULT_ADMIN_ROLE, deployment.deployer) is False
    assert await nft.call(shares, "hasRole", MINTER_ROLE, deployment.deployer) is False
    assert await nft.call(shares, "hasRole", DEFAULT_ADMIN_ROLE, operator) is True
    assert await nft.call(shares, "hasRole", MINTER_ROLE, operator) is True
    assert await nft.call(shares, "MINTER_ROLE") == MINTER_ROLE


async def test_each_ownable_contract_is_owned_by_its_operator(platform: PlatformChain) -> None:
    deployment = await platform.start()
    reader = await platform.adapter("deployer")
    owners = {}
    for name in ("RevenueDistributor", "ArtistCoinFactory", "Lottery", "DevUSD"):
        owners[name] = await reader.call(await platform.contract("deployer", name), "owner")

    assert owners == {
        "RevenueDistributor": deployment.operators["nft"],
        "ArtistCoinFactory": deployment.operators["coin"],
        "Lottery": deployment.operators["coin"],
        "DevUSD": deployment.operators["payment"],
    }
    assert {name: DEFAULT_ROLES[name] for name in owners} == {
        "RevenueDistributor": "nft",
        "ArtistCoinFactory": "coin",
        "Lottery": "coin",
        "DevUSD": "payment",
    }


async def test_who_operates_a_contract_is_configuration() -> None:
    """A deployment may hand a contract to another service than the default one."""
    env = {"AUDIFI_CHAIN_ROLES": "Lottery=nft, DevUSD=coin"}
    platform = PlatformChain(Settings.from_env(env))
    try:
        deployment = await platform.start()
        reader = await platform.adapter("deployer")
        nft = await platform.adapter("nft")
        shares = await platform.contract("nft", "MasterShares")
        owners = {
            name: await reader.call(await platform.contract("deployer", name), "owner")
            for name in ("Lottery", "DevUSD", "ArtistCoinFactory")
        }

        assert owners == {
            "Lottery": deployment.operators["nft"],
            "DevUSD": deployment.operators["coin"],
            "ArtistCoinFactory": deployment.operators["coin"],
        }
        assert "payment" not in deployment.operators  # it operates nothing here
        assert await nft.call(shares, "hasRole", MINTER_ROLE, nft.address) is True
    finally:
        await platform.close()


async def test_a_role_on_a_contract_nobody_operates_is_refused() -> None:
    with pytest.raises(BlockchainError) as refused:
        PlatformChain(Settings(chain_roles={"MilestoneEscrow": "nft"}))
    assert refused.value.details["contracts"] == ["MilestoneEscrow"]
    with pytest.raises(ValueError, match="AUDIFI_CHAIN_ROLES"):
        Settings.from_env({"AUDIFI_CHAIN_ROLES": "Lottery"})


async def test_payment_mints_dev_usd_and_coin_cannot(platform: PlatformChain) -> None:
    payment = await platform.adapter("payment")
    coin = await platform.adapter("coin")
    as_payment = await platform.contract("payment", "DevUSD")
    as_coin = await platform.contract("coin", "DevUSD")

    await payment.transact(as_payment, "mint", FAN, 250 * 10**6)
    with pytest.raises(BlockchainError) as refused:
        await coin.transact(as_coin, "mint", FAN, 1)

    assert refused.value.details["error"] == "OwnableUnauthorizedAccount"
    assert refused.value.details["args"] == {"account": coin.address.lower()}
    assert await payment.call(as_payment, "balanceOf", FAN) == 250 * 10**6
    assert await payment.call(as_payment, "symbol") == "dUSD"
    assert await payment.call(as_payment, "decimals") == 6


async def test_the_lottery_is_paid_in_dev_usd_and_burns_master_shares(
    platform: PlatformChain,
) -> None:
    deployment = await platform.start()
    coin = await platform.adapter("coin")
    lottery = await platform.contract("coin", "Lottery")

    assert await coin.call(lottery, "paymentToken") == deployment.address("DevUSD")
    assert await coin.call(lottery, "paymentToken") == deployment.payment_token
    assert await coin.call(lottery, "shares") == deployment.address("MasterShares")


# -- one account per service -------------------------------------------------------------------


async def test_nft_coin_and_payment_sign_with_distinct_accounts(platform: PlatformChain) -> None:
    deployment = await platform.start()
    addresses = {s: (await platform.adapter(s)).address for s in ("nft", "coin", "payment")}

    assert len(set(addresses.values()) | {deployment.deployer}) == 4
    assert addresses == {s: deployment.operators[s] for s in addresses}
    assert await platform.adapter("nft") is await platform.adapter("nft")


async def test_concurrent_transactions_of_nft_and_coin_do_not_collide(
    platform: PlatformChain,
) -> None:
    await open_ipo(platform, 9)
    nft = await platform.adapter("nft")
    coin = await platform.adapter("coin")
    shares = await platform.contract("nft", "MasterShares")
    factory = await platform.contract("coin", "ArtistCoinFactory")
    artists = [Account.from_key((100 + i).to_bytes(32, "big")).address for i in range(5)]

    sends = []
    for i, artist in enumerate(artists):
        sends.append(nft.transact(shares, "mint", FAN, 9, 1))
        sends.append(
            coin.transact(factory, "createCoin", artist, f"Artist {i}", f"ART{i}", 10**21, artist)
        )
    receipts = await asyncio.gather(*sends)

    assert all(r["status"] == 1 for r in receipts)
    txs = [await nft.w3.eth.get_transaction(r["transactionHash"]) for r in receipts]
    by_sender = {
        sender: sorted(tx["nonce"] for tx in txs if tx["from"] == sender)
        for sender in (nft.address, coin.address)
    }
    assert all(len(nonces) == len(set(nonces)) == 5 for nonces in by_sender.values())
    assert await nft.call(shares, "balanceOf", FAN, 9) == 5
    assert await coin.call(factory, "coinCount") == 5


# -- the deployment file -----------------------------------------------------------------------


async def test_a_deployment_survives_json_and_a_file(
    platform: PlatformChain, tmp_path: Path
) -> None:
    deployment = await platform.start()
    path = tmp_path / "deployment.json"
    path.write_bytes(deployment.to_json())

    assert Deployment.from_json(deployment.to_json()) == deployment
    assert Deployment.from_json(deployment.to_json().decode()) == deployment
    assert await load_deployment(str(path)) == deployment
    written = msgspec.json.decode(path.read_bytes())
    assert written["chainId"] == deployment.chain_id
    assert written["paymentToken"] == deployment.payment_token
    assert written["contracts"]["MasterShares"]["address"] == deployment.address("MasterShares")


@pytest.mark.parametrize(
    "content",
    [None, b"", b"not json {", b'{"chainId": "one"}', b"[1, 2, 3]", b"\xff\xfe"],
    ids=["missing", "empty", "garbage", "wrong-type", "not-an-object", "not-utf8"],
)
async def test_an_unreadable_deployment_file_is_a_blockchain_error(
    tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "deployment.json"
    if content is not None:
        path.write_bytes(content)

    with pytest.raises(BlockchainError) as refused:
        await load_deployment(str(path))

    assert type(refused.value) is BlockchainError
    assert refused.value.details["source"] == str(path)
    assert refused.value.details["action"] == "load deployment"


async def test_a_directory_or_an_unreachable_url_is_a_blockchain_error(tmp_path: Path) -> None:
    for source in (str(tmp_path), "http://127.0.0.1:9/deployment"):
        with pytest.raises(BlockchainError) as refused:
            await load_deployment(source)
        assert refused.value.details["source"] == source


@pytest.mark.parametrize("source", ["http://127.0.0.1:notaport/deployment", "http://", "bad\0path"])
async def test_a_malformed_deployment_location_is_a_blockchain_error(source: str) -> None:
    with pytest.raises(BlockchainError) as refused:
        await load_deployment(source)
    assert refused.value.details["action"] == "load deployment"


async def test_a_hand_written_lowercase_deployment_loads_checksummed(
    platform: PlatformChain, tmp_path: Path
) -> None:
    deployment = await platform.start()
    written = msgspec.json.decode(deployment.to_json())
    for contract in written["contracts"].values():
        contract["address"] = contract["address"].lower()
    written["paymentToken"] = written["paymentToken"].lower()
    path = tmp_path / "deployment.json"
    path.write_bytes(msgspec.json.encode(written))

    assert await load_deployment(str(path)) == deployment


async def test_a_deployment_with_a_malformed_address_is_refused(
    platform: PlatformChain, tmp_path: Path
) -> None:
    written = msgspec.json.decode((await platform.start()).to_json())
    written["contracts"]["Lottery"]["address"] = written["contracts"]["Lottery"]["address"][:10]
    path = tmp_path / "deployment.json"
    path.write_bytes(msgspec.json.encode(written))

    with pytest.raises(BlockchainError) as refused:
        await load_deployment(str(path))
    assert refused.value.message == "CHAIN_DEPLOYMENT could not be read"


async def test_a_deployment_names_a_contract_it_lacks(platform: PlatformChain) -> None:
    deployment = await platform.start()

    with pytest.raises(BlockchainError) as refused:
        deployment.address("Staking")

    assert refused.value.details["contract"] == "Staking"
    assert refused.value.details["deployed"] == sorted(PLATFORM_CONTRACTS)


# -- a node: the deployment is read and checked --------------------------------------------------


async def test_a_service_starts_on_a_node_from_its_deployment_url_and_mints(node: str) -> None:
    platform = PlatformChain(node_settings(node, node + "/deployment"))
    try:
        deployment = await platform.start()
        nft = await platform.adapter("nft")
        shares = await platform.contract("nft", "MasterShares")

        assert platform.embedded is None
        assert nft.address == deployment.operators["nft"]
        await platform.check()  # ready: raises otherwise
        await nft.transact(shares, "openIpo", 3, 50, ROYALTIES, 250)
        await nft.transact(shares, "mint", FAN, 3, 4)
        assert await nft.call(shares, "balanceOf", FAN, 3) == 4
    finally:
        await platform.close()


async def test_a_deployment_file_of_another_chain_is_refused(node: str, tmp_path: Path) -> None:
    served_deployment = await load_deployment(node + "/deployment")
    elsewhere = msgspec.structs.replace(served_deployment, chain_id=served_deployment.chain_id + 1)
    path = tmp_path / "deployment.json"
    path.write_bytes(elsewhere.to_json())
    platform = PlatformChain(node_settings(node, str(path)))
    try:
        with pytest.raises(BlockchainError) as refused:
            await platform.start()
    finally:
        await platform.close()

    assert "another chain" in refused.value.message
    assert refused.value.details == {
        "expected": served_deployment.chain_id + 1,
        "actual": served_deployment.chain_id,
    }
    assert platform.deployment is None


async def test_a_deployment_with_an_address_without_code_names_that_contract(
    node: str, tmp_path: Path
) -> None:
    # The node's own deployment, but with one address that points at nothing.
    deployment = await load_deployment(node + "/deployment")
    contracts = dict(deployment.contracts)
    nowhere = Account.from_key("0x" + "b7" * 32).address
    contracts["RevenueDistributor"] = msgspec.structs.replace(
        contracts["RevenueDistributor"], address=nowhere
    )
    path = tmp_path / "deployment.json"
    path.write_bytes(msgspec.structs.replace(deployment, contracts=contracts).to_json())
    intact = tmp_path / "intact.json"
    intact.write_bytes(deployment.to_json())

    broken = PlatformChain(node_settings(node, str(path)))
    checked = PlatformChain(node_settings(node, str(intact)))
    try:
        with pytest.raises(BlockchainError) as refused:
            await broken.start()
        assert await checked.start() == deployment
    finally:
        await broken.close()
        await checked.close()

    assert refused.value.details == {"contracts": ["RevenueDistributor"]}
    assert "no code" in refused.value.message


async def test_a_node_without_a_deployment_is_refused(node: str) -> None:
    platform = PlatformChain(node_settings(node, None))
    try:
        with pytest.raises(BlockchainError) as refused:
            await platform.start()
    finally:
        await platform.close()

    assert "CHAIN_DEPLOYMENT" in refused.value.message
    assert platform.deployment is None


async def test_a_node_mode_deployment_url_that_is_not_one_is_refused(node: str) -> None:
    platform = PlatformChain(node_settings(node, node + "/health"))
    try:
        with pytest.raises(BlockchainError) as refused:
            await platform.start()
    finally:
        await platform.close()

    assert refused.value.details["source"] == node + "/health"


async def test_a_fresh_chain_gets_the_same_addresses_every_time() -> None:
    """Deployed one transaction after another: a development chain's addresses are predictable
    (and a dev node that was restarted reuses them)."""
    addresses = []
    for _ in range(2):
        chain = PlatformChain(Settings())
        try:
            deployment = await chain.start()
            addresses.append({n: c.address for n, c in deployment.contracts.items()})
        finally:
            await chain.close()
    assert addresses[0] == addresses[1]


async def test_a_reset_node_is_refused_at_start_and_fails_readiness(tmp_path: Path) -> None:
    """A development node restarted deploys the same addresses again, in other blocks: the
    services that knew the old deployment refuse to start on it and stop being ready."""
    async with served(create_node_app(Settings())) as first:
        old = await load_deployment(first + "/deployment")
        running = PlatformChain(node_settings(first, first + "/deployment"))
        await running.start()
        await running.check()
    path = tmp_path / "old.json"
    path.write_bytes(old.to_json())
    port = int(first.rsplit(":", 1)[1])
    try:
        # The node restarted on its port: same chain id, same addresses, other blocks.
        async with served(create_node_app(Settings()), port=port) as reset:
            new = await load_deployment(reset + "/deployment")
            assert {n: c.address for n, c in new.contracts.items()} == {
                n: c.address for n, c in old.contracts.items()
            }
            with pytest.raises(BlockchainError) as not_ready:
                await running.check()
            assert "not on this chain any more" in not_ready.value.message

            restarted = PlatformChain(node_settings(reset, str(path)))
            try:
                with pytest.raises(BlockchainError) as refused:
                    await restarted.start()
                assert "not on this chain any more" in refused.value.message
            finally:
                await restarted.close()
    finally:
        await running.close()


async def test_a_contract_is_made_once_per_service_and_bound_to_its_signer(
    platform: PlatformChain,
) -> None:
    nft_shares = await platform.contract("nft", "MasterShares")
    coin_shares = await platform.contract("coin", "MasterShares")

    assert await platform.contract("nft", "MasterShares") is nft_shares
    assert coin_shares is not nft_shares and coin_shares.address == nft_shares.address
    # and still decodes that contract's errors for the service asking
    coin = await platform.adapter("coin")
    with pytest.raises(BlockchainError) as refused:
        await coin.transact(coin_shares, "mint", FAN, 1, 1)
    assert refused.value.details["error"] == "AccessControlUnauthorizedAccount"
