"""The kit's WebSocket protocol (audifi_kit.server.WebSocketSansIO): it reads a few small
messages ahead of the app (uvicorn stopped reading after each one), and lets the app write a
frame prepared once straight to the socket (a room's frame to thousands of them)."""

from __future__ import annotations

import asyncio
import json

from audifi_kit.server import SEND_TEXT_NOW, prepared_text_frame
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


async def test_prepared_frames_of_every_length_arrive_in_order_with_ordinary_ones() -> None:
    after_close: list[bool] = []
    payloads = ["é" * 5, "x" * 125, "y" * 126, "z" * 65_535, "w" * 70_000]

    @websocket("/ws")
    async def room(socket: WebSocket) -> None:
        await socket.accept()
        send_now = socket.scope["extensions"][SEND_TEXT_NOW]
        for n, payload in enumerate(payloads):
            await socket.send_text(f"ordinary {n}")
            assert send_now(prepared_text_frame(payload.encode()))
        await socket.close()
        after_close.append(send_now(prepared_text_frame(b'"late"')))

    async with served(Litestar([room], logging_config=None)) as url:
        async with connect(url.replace("http", "ws") + "/ws", compression=None) as ws:
            received = [message async for message in ws]
    expected = [m for n, p in enumerate(payloads) for m in (f"ordinary {n}", p)]
    assert received == expected
    assert after_close == [False]  # a closed connection takes nothing more
