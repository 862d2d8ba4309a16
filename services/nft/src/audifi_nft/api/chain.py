"""What a client needs to use the platform's contracts itself (a wallet signing a lottery
purchase, a dApp reading holdings): the chain, the addresses and the ABIs.

Served by nft, which operates the platform's share contracts; the gateway serves them publicly
under `/api/v1/chain`.
"""

from __future__ import annotations

from typing import Any

from audifi_kit.chain.platform import CHAIN_STATE_KEY, PlatformChain, artifact
from audifi_kit.errors import NotFound
from audifi_kit.http.auth import PUBLIC_OPT
from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import FromPath


def _chain(state: State) -> PlatformChain:
    chain: PlatformChain = state[CHAIN_STATE_KEY]
    return chain


class ChainController(Controller):
    path = "/chain"
    tags = ["chain"]
    opt = {PUBLIC_OPT: True}  # public knowledge: addresses and ABIs

    @get("/", summary="The chain and the platform contracts' addresses")
    async def deployment(self, state: State) -> dict[str, Any]:
        return _chain(state).public()

    @get("/contracts/{name:str}", summary="One platform contract: its address and ABI")
    async def contract(self, state: State, name: FromPath[str]) -> dict[str, Any]:  # type: ignore[valid-type]
        chain = _chain(state)
        contracts = chain.public()["contracts"]
        if name not in contracts:
            raise NotFound(f"No platform contract {name!r}", details={"known": sorted(contracts)})
        art = artifact(name, chain.settings)
        return {"name": name, "address": contracts[name], "abi": list(art.abi)}
