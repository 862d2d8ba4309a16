"""A development chain node: the embedded EVM over JSON-RPC, the platform contracts deployed.

`audifi up --distributed` (`make up`) runs one process per service; without CHAIN_RPC_URL they
would each start their own in-process EVM and see different chains. The supervisor starts this
node first instead (`audifi chain node`) and gives every service CHAIN_RPC_URL, CHAIN_DEPLOYMENT
(the node's `/deployment`) and its own development key (`dev_private_key`), the genesis account
it would have signed with in one process. Like Hardhat's or Anvil's, those keys are public
knowledge: this node is for development and tests only.

Routes: `POST /` JSON-RPC 2.0 (single or batch, as a node answers it, reverts included),
`GET /deployment` (the Deployment JSON), `GET /health`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post

from audifi_kit.chain.embedded import EmbeddedChain
from audifi_kit.chain.platform import EMBEDDED_ACCOUNTS, PlatformChain
from audifi_kit.http.factory import while_serving
from audifi_kit.settings import Settings

JSON = "application/json"
PARSE_ERROR = {"code": -32700, "message": "Parse error"}
INVALID_REQUEST = {"code": -32600, "message": "Invalid Request"}


def _rpc_value(value: Any) -> Any:
    """eth-tester's Python values as JSON-RPC has them: quantities and bytes as 0x-hex."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(k): _rpc_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rpc_value(v) for v in value]
    return str(value)


def dev_private_key(service: str) -> str:
    """The development key of `service`: eth-tester's genesis account it signs with embedded
    (eth-tester's default keys are 1, 2, 3, ... as 32-byte integers)."""
    return "0x" + (EMBEDDED_ACCOUNTS[service] + 1).to_bytes(32, "big").hex()


def create_node_app(settings: Settings, chain: EmbeddedChain | None = None) -> Litestar:
    embedded = chain or EmbeddedChain()
    # The node deploys on its own EVM whatever CHAIN_RPC_URL says: it *is* the node.
    platform = PlatformChain(
        Settings(
            var_dir=settings.var_dir,
            contracts_dir=settings.contracts_dir,
            chain_roles=settings.chain_roles,
        ),
        embedded=embedded,
    )
    # web3's tester middleware turns JSON-RPC params into eth-tester's and its answers back
    # (what it does for web3's own tester provider); `_rpc` encodes them as a node would.
    w3 = embedded.web3()
    w3.middleware_onion.clear()

    async def answer(call: Any) -> dict[str, Any]:
        call_id = call.get("id") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(call.get("method"), str):
            return {"jsonrpc": "2.0", "id": call_id, "error": INVALID_REQUEST}
        request = await w3.provider.request_func(w3, w3.middleware_onion)
        try:  # the provider runs py-evm in a worker thread, one request at a time
            response = dict(await request(call["method"], call.get("params") or []))
        except Exception as exc:  # a malformed parameter: an RPC error, as a node answers
            response = {"error": {"code": -32602, "message": f"{type(exc).__name__}: {exc}"}}
        if "error" in response:
            return {"jsonrpc": "2.0", "id": call_id, "error": response["error"]}
        return {"jsonrpc": "2.0", "id": call_id, "result": _rpc_value(response.get("result"))}

    async def handle(body: bytes) -> bytes:
        try:
            payload = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return msgspec.json.encode({"jsonrpc": "2.0", "id": None, "error": PARSE_ERROR})
        if isinstance(payload, list):
            return msgspec.json.encode([await answer(call) for call in payload])
        return msgspec.json.encode(await answer(payload))

    @post("/", status_code=200)
    async def rpc(request: Request[Any, Any, Any]) -> Response[bytes]:
        return Response(await handle(await request.body()), media_type=JSON)

    @get("/deployment")
    async def deployment() -> Response[bytes]:
        return Response((await platform.start()).to_json(), media_type=JSON)

    @get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(
        [rpc, deployment, health], lifespan=[while_serving(platform.start, platform.close)]
    )
