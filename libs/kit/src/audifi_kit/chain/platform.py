"""The platform's contracts on a chain: where they are, who operates them, and deploying them.

A `Deployment` names each platform contract's address on one chain and the account of the
service that operates it. Which service that is, is configuration (`roles`, contract ->
service: AUDIFI_CHAIN_ROLES over `DEFAULT_ROLES`): by default nft mints master shares and runs
dividend distributions, coin makes artist coins and runs the lottery, payment mints DevUSD (the
development stablecoin; on a public chain the payment token is a real one such as USDC).
MilestoneEscrow has no operator: each project names its own approver.

`PlatformChain` is what a service holds: the deployment and an adapter signing as that service.

* Embedded (no CHAIN_RPC_URL): one in-process EVM shared by every service of the process, the
  contracts deployed at start by genesis account 0, each operating service signing with its own
  genesis account (`EMBEDDED_ACCOUNTS`), so no two adapters share a nonce counter.
* A node (CHAIN_RPC_URL): the deployment is read from CHAIN_DEPLOYMENT (a JSON file or an
  http(s) URL serving it), written by `audifi chain deploy`, and the service signs with
  CHAIN_PRIVATE_KEY. At start the chain id and the code at every address are checked, so a
  deployment file from another chain (or a node that was reset) refuses to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import msgspec
from eth_utils import to_checksum_address
from web3.contract import AsyncContract

from audifi_kit.chain.adapter import ChainAdapter
from audifi_kit.chain.artifacts import Artifact
from audifi_kit.chain.embedded import EmbeddedChain
from audifi_kit.chain.reverts import blockchain_error
from audifi_kit.errors import BlockchainError
from audifi_kit.settings import Settings

log = logging.getLogger(__name__)

# The platform's shared contracts (per-artist coins, pools and staking are made later, by coin).
PLATFORM_CONTRACTS = (
    "DevUSD",
    "MasterShares",
    "RevenueDistributor",
    "ArtistCoinFactory",
    "MilestoneEscrow",
    "Lottery",
)
# Which service's account operates which contract (its owner, or its admin and minter) unless
# the settings say otherwise (`Settings.chain_roles`); the keys are the contracts that have one.
DEFAULT_ROLES: Mapping[str, str] = {
    "DevUSD": "payment",
    "MasterShares": "nft",
    "RevenueDistributor": "nft",
    "ArtistCoinFactory": "coin",
    "Lottery": "coin",
}
# Embedded: the genesis account each service signs with. 0 deploys; every other service of the
# process gets its own account too (a service that only reads never sends, but may one day).
EMBEDDED_ACCOUNTS: Mapping[str, int] = {
    "deployer": 0,
    "nft": 1,
    "coin": 2,
    "payment": 3,
    "vstudio": 4,
    "analytics": 5,
    "auth": 6,
    "notify": 7,
    "gateway": 8,
}
MASTER_SHARES_URI = "https://audifi.example/api/v1/masters/{id}/shares.json"
MINTER_ROLE = bytes.fromhex("9f2df0fed2c77648de5860a4cc508cd0818c85b8b8a1ab4ceeef8d981c8956a6")
DEFAULT_ADMIN_ROLE = bytes(32)
# Where a service app keeps its PlatformChain (app.state).
CHAIN_STATE_KEY = "chain"


class DeployedContract(msgspec.Struct, frozen=True, rename="camel"):
    address: str
    block: int
    tx_hash: str
    # The hash of `block`: a chain that was reset (or reorganised below the deployment) has
    # another block there, even where the addresses come out the same.
    block_hash: str = ""


class Deployment(msgspec.Struct, frozen=True, rename="camel"):
    """Where the platform's contracts are on one chain: what CHAIN_DEPLOYMENT points at."""

    chain_id: int
    deployer: str
    contracts: dict[str, DeployedContract]
    operators: dict[str, str]  # service -> its address
    payment_token: str  # the ERC-20 the platform is paid in on chain (DevUSD when embedded)
    embedded: bool = False

    def address(self, name: str) -> str:
        try:
            return self.contracts[name].address
        except KeyError:
            raise BlockchainError(
                f"{name} is not part of this deployment",
                details={"contract": name, "deployed": sorted(self.contracts)},
            ) from None

    @property
    def start_block(self) -> int:
        """The earliest block an indexer of the platform contracts needs to read."""
        return min((c.block for c in self.contracts.values()), default=0)

    def to_json(self) -> bytes:
        return msgspec.json.format(msgspec.json.encode(self), indent=2) + b"\n"

    @classmethod
    def from_json(cls, data: bytes | str) -> Deployment:
        return msgspec.json.decode(data, type=cls)


def operator_roles(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Contract -> the service operating it: `DEFAULT_ROLES` with `overrides` on top."""
    unknown = sorted(set(overrides or {}) - set(DEFAULT_ROLES))
    if unknown:
        raise BlockchainError(
            f"No operator role on {', '.join(unknown)}",
            details={"contracts": unknown, "operated": sorted(DEFAULT_ROLES)},
        )
    return {**DEFAULT_ROLES, **(overrides or {})}


def contracts_dir(settings: Settings | None = None) -> Path:
    """The compiled contracts (contracts-abi/build): AUDIFI_CONTRACTS_DIR, else found upward
    from the working directory or from this package's source (a checkout)."""
    configured = (settings.contracts_dir if settings else None) or os.environ.get(
        "AUDIFI_CONTRACTS_DIR"
    )
    if configured:
        return Path(configured)
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            candidate = folder / "contracts-abi" / "build"
            if (candidate / "MasterShares.json").is_file():
                return candidate
    raise BlockchainError(
        "The compiled contracts (contracts-abi/build) were not found; set AUDIFI_CONTRACTS_DIR",
        details={"action": "load contracts"},
    )


def artifact(name: str, settings: Settings | None = None) -> Artifact:
    path = contracts_dir(settings) / f"{name}.json"
    if not path.is_file():
        raise BlockchainError(
            f"No compiled contract {name} in {path.parent}", details={"contract": name}
        )
    return _load_artifact(path)


@functools.cache
def _load_artifact(path: Path) -> Artifact:
    """Read once per process: services ask for contracts on every call they make."""
    return Artifact.load(path)


async def deploy_platform(
    deployer: ChainAdapter,
    operators: Mapping[str, str],
    *,
    roles: Mapping[str, str] | None = None,
    payment_token: str | None = None,
    settings: Settings | None = None,
) -> Deployment:
    """Deploy the platform contracts with `deployer` and hand each to its operator.

    `roles` maps each operated contract to its service (unset: the settings' `chain_roles` over
    `DEFAULT_ROLES`); `operators` maps those services to the addresses they sign with. Without
    `payment_token` a DevUSD is deployed (owned by its operator) and used as the payment token.
    The deployer keeps no role: MasterShares' admin and minter roles go to its operator and the
    deployer renounces its own admin role; the Ownable contracts are created with their
    operator as owner.
    """
    if roles is None:
        roles = operator_roles(settings.chain_roles if settings else None)
    else:
        roles = operator_roles(roles)
    deploying = [name for name in roles if name != "DevUSD" or payment_token is None]
    missing = sorted({roles[name] for name in deploying} - set(operators))
    if missing:
        raise BlockchainError(
            f"No operator address for {', '.join(missing)}", details={"missing": missing}
        )

    def operator(contract: str) -> str:
        return operators[roles[contract]]

    arts = {name: artifact(name, settings) for name in PLATFORM_CONTRACTS}
    deployed: dict[str, DeployedContract] = {}
    handles: dict[str, AsyncContract] = {}

    async def put(name: str, *args: Any) -> None:
        contract, receipt = await deployer.deployment(arts[name], *args)
        deployed[name] = DeployedContract(
            address=contract.address,
            block=receipt["blockNumber"],
            tx_hash=receipt["transactionHash"].to_0x_hex(),
            block_hash=receipt["blockHash"].to_0x_hex(),
        )
        handles[name] = contract

    # One transaction after another, in a fixed order: the same deployer on a fresh chain gets
    # the same addresses every time (a development chain's are predictable).
    me = deployer.address
    await put("MasterShares", MASTER_SHARES_URI, me)
    await put("RevenueDistributor", operator("RevenueDistributor"))
    await put("ArtistCoinFactory", operator("ArtistCoinFactory"))
    await put("MilestoneEscrow")
    if payment_token is None:
        await put("DevUSD", operator("DevUSD"))
    token = payment_token or deployed["DevUSD"].address
    shares = handles["MasterShares"]
    await put("Lottery", token, shares.address, operator("Lottery"))
    minter = operator("MasterShares")
    await deployer.transact(shares, "grantRole", MINTER_ROLE, minter)
    await deployer.transact(shares, "grantRole", DEFAULT_ADMIN_ROLE, minter)
    if minter.lower() != me.lower():
        await deployer.transact(shares, "renounceRole", DEFAULT_ADMIN_ROLE, me)
    return Deployment(
        chain_id=deployer.chain_id,
        deployer=me,
        contracts=deployed,
        operators=dict(operators),
        payment_token=deployer.w3.to_checksum_address(token),
        embedded=deployer.embedded is not None,
    )


async def load_deployment(source: str) -> Deployment:
    """A deployment from a JSON file or an http(s) URL serving one, its addresses checksummed."""
    try:
        if source.startswith(("http://", "https://")):
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.get(source)
                response.raise_for_status()
                data: bytes = response.content
        else:
            data = await asyncio.to_thread(Path(source).read_bytes)
        return _checksummed(Deployment.from_json(data))
    except (
        OSError,
        ValueError,  # a malformed address, a NUL in the path
        httpx.HTTPError,
        httpx.InvalidURL,
        msgspec.DecodeError,
        msgspec.ValidationError,
    ) as exc:
        raise BlockchainError(
            "CHAIN_DEPLOYMENT could not be read",
            details={"action": "load deployment", "source": source, "reason": str(exc)},
        ) from None


def _checksummed(deployment: Deployment) -> Deployment:
    """The same deployment with every address in checksum form (ValueError if one is not one)."""
    return msgspec.structs.replace(
        deployment,
        deployer=to_checksum_address(deployment.deployer),
        payment_token=to_checksum_address(deployment.payment_token),
        contracts={
            name: msgspec.structs.replace(c, address=to_checksum_address(c.address))
            for name, c in deployment.contracts.items()
        },
        operators={s: to_checksum_address(a) for s, a in deployment.operators.items()},
    )


class PlatformChain:
    """The chain as the services of one process see it: one deployment, one adapter each.

    `start()` is idempotent and safe to call from every service's startup concurrently: the
    first call deploys (embedded) or loads and checks (node) the deployment.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        embedded: EmbeddedChain | None = None,
        roles: Mapping[str, str] | None = None,
    ) -> None:
        """`roles`: which service operates which contract when this chain deploys them
        (embedded); unset, the settings' `chain_roles` over `DEFAULT_ROLES`."""
        self.settings = settings
        self.roles = operator_roles(settings.chain_roles if roles is None else roles)
        self.embedded = None if settings.chain_rpc_url else (embedded or EmbeddedChain())
        # Embedded, every service signs with its own genesis account: CHAIN_PRIVATE_KEY (one
        # key) would make them share an account behind separate nonce counters.
        self._adapter_settings = (
            dataclasses.replace(settings, chain_private_key=None)
            if self.embedded is not None
            else settings
        )
        self.deployment: Deployment | None = None
        self._adapters: dict[str, ChainAdapter] = {}
        self._contracts: dict[tuple[str, str], AsyncContract] = {}
        self._lock = asyncio.Lock()

    async def start(self) -> Deployment:
        async with self._lock:
            if self.deployment is None:
                self.deployment = await self._start()
            return self.deployment

    async def _start(self) -> Deployment:
        if self.embedded is not None:
            deployer = await self._connect("deployer")
            operators = {
                s: (await self._connect(s)).address for s in sorted(set(self.roles.values()))
            }
            deployment = await deploy_platform(
                deployer, operators, roles=self.roles, settings=self.settings
            )
            log.info(
                "deployed the platform contracts on the embedded chain",
                extra={"contracts": {n: c.address for n, c in deployment.contracts.items()}},
            )
            return deployment
        if not self.settings.chain_deployment:
            raise BlockchainError(
                "CHAIN_DEPLOYMENT is required with CHAIN_RPC_URL (write it with "
                "`audifi chain deploy`)",
                details={"action": "start"},
            )
        deployment = await load_deployment(self.settings.chain_deployment)
        await self.verify(deployment)
        return deployment

    async def verify(self, deployment: Deployment) -> None:
        """The deployment belongs to this chain: same chain id, code at every address, and the
        blocks it was deployed in still there (not a node that was reset)."""
        reader = await self._connect("deployer")
        if deployment.chain_id != reader.chain_id:
            raise BlockchainError(
                "CHAIN_DEPLOYMENT is for another chain",
                details={"expected": deployment.chain_id, "actual": reader.chain_id},
            )
        try:
            codes = [await reader.w3.eth.get_code(c.address) for c in deployment.contracts.values()]
        except Exception as exc:
            raise blockchain_error(exc, reader.errors, action="verify deployment") from None
        empty = [n for n, code in zip(deployment.contracts, codes, strict=True) if not code]
        if empty:
            raise BlockchainError(
                "The chain has no code at the deployment's addresses (another chain, or a "
                "node that was reset): deploy again with `audifi chain deploy`",
                details={"contracts": empty},
            )
        await self._check_blocks(reader, deployment.contracts)

    @staticmethod
    async def _check_blocks(
        reader: ChainAdapter, contracts: Mapping[str, DeployedContract]
    ) -> None:
        moved = []
        try:
            for name, contract in contracts.items():
                if contract.block_hash:
                    block = await reader.w3.eth.get_block(contract.block)
                    if block["hash"].to_0x_hex() != contract.block_hash:
                        moved.append(name)
        except Exception as exc:
            raise blockchain_error(exc, reader.errors, action="verify deployment") from None
        if moved:
            raise BlockchainError(
                "The blocks the platform was deployed in are not on this chain any more (a "
                "node that was reset, or a reorganisation): deploy again",
                details={"contracts": moved},
            )

    async def adapter(self, service: str) -> ChainAdapter:
        """The adapter `service` signs with (embedded: its own genesis account)."""
        async with self._lock:
            return await self._connect(service)

    async def _connect(self, service: str) -> ChainAdapter:
        # A node: one key (CHAIN_PRIVATE_KEY) for the process, so one adapter and one nonce
        # counter whatever the service. Embedded: one genesis account per service.
        key = service if self.embedded is not None else "node"
        if key not in self._adapters:
            if self.embedded is not None and service not in EMBEDDED_ACCOUNTS:
                raise BlockchainError(
                    f"No embedded chain account for {service!r}", details={"service": service}
                )
            self._adapters[key] = await ChainAdapter.connect(
                self._adapter_settings,
                embedded=self.embedded,
                account_index=EMBEDDED_ACCOUNTS.get(service, 0),
            )
        return self._adapters[key]

    async def contract(self, service: str, name: str) -> AsyncContract:
        """Platform contract `name` bound to `service`'s adapter (its errors decodable); made
        once per service and contract, since services ask for it on every call."""
        found = self._contracts.get((service, name))
        if found is None:
            deployment = await self.start()
            adapter = await self.adapter(service)
            found = adapter.contract(artifact(name, self.settings), deployment.address(name))
            self._contracts[(service, name)] = found
        return found

    def public(self) -> dict[str, Any]:
        """What a client needs to talk to the contracts itself: chain id and addresses."""
        if self.deployment is None:
            raise BlockchainError("The chain is not started", details={"action": "public"})
        d = self.deployment
        return {
            "chainId": d.chain_id,
            "embedded": d.embedded,
            "paymentToken": d.payment_token,
            "contracts": {n: c.address for n, c in sorted(d.contracts.items())},
            "startBlock": d.start_block,
        }

    async def check(self) -> None:
        """Readiness (raises when not ready): started, and on a node, the node answers and still
        holds the block the platform was first deployed in."""
        deployment = self.deployment
        if deployment is None:
            raise BlockchainError("The chain is not started", details={"action": "ready"})
        if self.embedded is not None:
            return
        reader = await self.adapter("deployer")  # under the lock: one adapter per key
        first = min(deployment.contracts.items(), key=lambda item: item[1].block, default=None)
        if first is None or not first[1].block_hash:
            try:
                await reader.w3.eth.block_number
            except Exception as exc:
                raise blockchain_error(exc, reader.errors, action="ready") from None
            return
        await self._check_blocks(reader, dict([first]))

    async def close(self) -> None:
        for adapter in self._adapters.values():
            with contextlib.suppress(Exception):
                await adapter.close()
        self._adapters.clear()
        self._contracts.clear()
