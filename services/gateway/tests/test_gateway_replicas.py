"""A service with several replicas behind the gateway (AUDIFI_<NAME>_URL lists them): clients
are spread over them, and one that is down is passed over at once, for requests and sockets."""

from __future__ import annotations

import json

from audifi_gateway.upstreams import Upstreams
from audifi_kit.settings import Settings
from websockets.asyncio.client import connect


def ws_url(gateway: str, session: str, query: str) -> str:
    return f"{gateway.replace('http://', 'ws://')}/api/v1/vstudio/sessions/{session}/ws?{query}"


def test_replicas_take_turns_and_one_that_refused_waits_its_cooldown() -> None:
    now = [0.0]
    upstreams = Upstreams(
        Settings(urls={"vstudio": "http://a:1, http://b:2"}), cooldown=5, clock=lambda: now[0]
    )
    assert [upstreams.candidates("vstudio")[0] for _ in range(4)] == [
        "http://a:1",
        "http://b:2",
        "http://a:1",
        "http://b:2",
    ]
    upstreams.refused("http://a:1")
    assert [upstreams.candidates("vstudio") for _ in range(2)] == [
        ["http://b:2", "http://a:1"],  # a refused: b first, a only as a last resort
        ["http://b:2", "http://a:1"],
    ]
    now[0] = 5.0  # the cooldown over: a takes its turn again
    assert sorted(upstreams.candidates("vstudio")[0] for _ in range(2)) == [
        "http://a:1",
        "http://b:2",
    ]
    assert Settings(urls={"vstudio": "http://a:1,http://b:2"}).service_url("vstudio") == (
        "http://a:1"
    )


async def test_requests_and_sockets_reach_the_live_replica_when_the_other_is_down(
    start_gateway, upstream_settings, upstreams, signer, dead_port, client
) -> None:
    both = f"http://127.0.0.1:{dead_port},{upstreams['vstudio']}"
    token = signer.token("fan-3", roles=("fan",))
    async with start_gateway(upstream_settings(urls={"vstudio": both})) as gateway:
        for _ in range(4):  # whichever replica's turn it is: the live one answers
            async with connect(ws_url(gateway, "s-7", f"access_token={token}")) as socket:
                assert json.loads(await socket.recv())["sessionId"] == "s-7"
        health = (await client.get(f"{gateway}/api/v1/admin/health")).json()
        vstudio = health["services"]["vstudio"]
        assert (vstudio["replicas"], vstudio["replicasUp"]) == (2, 1)

    nft_both = f"http://127.0.0.1:{dead_port},{upstreams['nft']}"
    async with start_gateway(upstream_settings(urls={"nft": nft_both})) as gateway:
        for _ in range(4):  # a refused connection never carried the request: the next is asked
            card = await client.get(
                f"{gateway}/api/v1/masters/m-1/card", headers={"Authorization": f"Bearer {token}"}
            )
            assert card.status_code == 200, card.text
        health = (await client.get(f"{gateway}/api/v1/admin/health")).json()
        nft = health["services"]["nft"]
        assert (nft["replicas"], nft["replicasUp"]) == (2, 1)
