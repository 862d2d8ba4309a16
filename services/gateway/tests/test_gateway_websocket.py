"""The V Studio WebSocket through the gateway, driven by a real `websockets` client."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from audifi_kit.testing import eventually
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


def ws_url(gateway: str, session: str = "s-1", query: str = "") -> str:
    url = f"{gateway.replace('http://', 'ws://')}/api/v1/vstudio/sessions/{session}/ws"
    return f"{url}?{query}" if query else url


async def test_frames_flow_both_ways_with_a_token_from_the_query(
    gateway, signer, studio_log
) -> None:
    token = signer.token("fan-9", roles=("fan",))
    url = ws_url(gateway, "s-42", f"access_token={token}&lang=en")
    async with connect(url, additional_headers={"X-Request-Id": "req-ws-1"}) as socket:
        hello = json.loads(await socket.recv())
        assert hello == {
            "type": "hello",
            "sessionId": "s-42",
            "authorization": f"Bearer {token}",
            "userId": "fan-9",
            "roles": "fan",
            "requestId": "req-ws-1",
            "query": "lang=en",  # the token travels as a header, never in the URL
        }
        await socket.send(json.dumps({"type": "vote", "decisionId": "d1", "choice": "A"}))
        assert await socket.recv() == 'echo:{"type": "vote", "decisionId": "d1", "choice": "A"}'
        await socket.send(b"\x00\x01\x02")
        assert await socket.recv() == b"\x02\x01\x00"
        await socket.close(code=4002, reason="leaving")

    async def vstudio_saw_the_close() -> bool:
        return studio_log.closes == [4002]

    await eventually(vstudio_saw_the_close)


async def test_a_close_from_vstudio_reaches_the_client_with_its_code(gateway, signer) -> None:
    headers = {"Authorization": f"Bearer {signer.token()}"}
    async with connect(ws_url(gateway), additional_headers=headers) as socket:
        await socket.recv()  # hello
        await socket.send("close-me:4001")
        with pytest.raises(ConnectionClosed) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "bye")


async def test_a_handshake_without_a_valid_token_is_refused(gateway, signer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(gateway)):
            pass
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["error"]["code"] == "UNAUTHORIZED"

    with pytest.raises(InvalidStatus) as expired:
        async with connect(ws_url(gateway, query=f"access_token={signer.token(ttl=-5)}")):
            pass
    assert expired.value.response.status_code == 401


async def test_a_websocket_to_another_path_is_refused(gateway, signer) -> None:
    url = f"{gateway.replace('http://', 'ws://')}/api/v1/masters/1/ws"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers={"Authorization": f"Bearer {signer.token()}"}):
            pass
    assert refused.value.response.status_code == 404


async def test_a_websocket_to_a_vstudio_that_is_down_is_refused_with_503(
    start_gateway, upstream_settings, signer, dead_port
) -> None:
    settings = upstream_settings(urls={"vstudio": f"http://127.0.0.1:{dead_port}"})
    async with start_gateway(settings) as gateway:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url(gateway, query=f"access_token={signer.token()}")):
                pass
    assert refused.value.response.status_code == 503


async def test_handshakes_beyond_the_limit_wait_their_turn_and_all_open(
    start_gateway, upstream_settings, gateway_config, signer
) -> None:
    """AUDIFI_WS_HANDSHAKES bounds the handshakes under way (a room of thousands opening must
    leave the loop to other requests): more wait, none is refused."""
    config = dataclasses.replace(gateway_config, ws_handshakes=2)
    async with start_gateway(upstream_settings(), config=config) as gateway:

        async def one(n: int) -> str:
            token = signer.token(f"fan-{n}", ttl=-5 if n % 4 == 1 else 300)
            headers = {"Authorization": f"Bearer {token}"}
            try:
                async with connect(ws_url(gateway, f"s-{n}"), additional_headers=headers) as ws:
                    return str(json.loads(await ws.recv())["userId"])
            except InvalidStatus as refused:  # a refusal gives its turn back
                return str(refused.response.status_code)

        opened = await asyncio.gather(*(one(n) for n in range(12)))
    assert opened == ["401" if n % 4 == 1 else f"fan-{n}" for n in range(12)]
