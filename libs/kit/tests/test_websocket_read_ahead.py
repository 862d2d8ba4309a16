"""The kit's WebSocket protocol reads a few small messages ahead of the app (uvicorn stopped
reading after each one): a burst still reaches the app whole and in order, big ones too."""

from __future__ import annotations

import asyncio
import json

from audifi_kit.testing import served
from litestar import Litestar, WebSocket, websocket
from websockets.asyncio.client import connect


async def test_a_burst_of_messages_reaches_a_slow_app_whole_and_in_order() -> None:
    gate = asyncio.Event()

    @websocket("/ws")
    async def slow(socket: WebSocket) -> None:
        await socket.accept()
        await gate.wait()  # the client sends everything before the app reads anything
        received = [await socket.receive_text() for _ in range(61)]
        await socket.send_text(json.dumps([len(m) for m in received]))
        await socket.send_text(json.dumps([m[:8] for m in received]))
        await socket.close()

    sent = [f"small-{i:02d}" for i in range(40)] + ["B" * 10_000]
    sent += [f"after-{i:02d}" for i in range(20)]
    async with served(Litestar([slow], logging_config=None)) as url:
        async with connect(url.replace("http", "ws") + "/ws", compression=None) as ws:
            for message in sent:
                await ws.send(message)
            gate.set()
            lengths = json.loads(await ws.recv())
            heads = json.loads(await ws.recv())
    assert lengths == [len(m) for m in sent]
    assert heads == [m[:8] for m in sent]
