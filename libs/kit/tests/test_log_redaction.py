"""No access token, refresh token, magic-link token, TOTP code or signature in any log line
(issue 9, finding 8 b): whoever writes the line, structlog or a library's stdlib logger."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from audifi_kit.http import configure_logging
from audifi_kit.server import Server, server_config
from audifi_kit.settings import Settings
from audifi_kit.testing import TokenSigner, free_port
from litestar import Litestar, WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect
from websockets.asyncio.client import connect

JWT = TokenSigner().token("user-1")
REFRESH = "rt_9f8e7d6c5b4a39281706f5e4d3c2b1a0"
MAGIC = "mlk_Zq3XyW8vU2tS7rQ1pO6nM4lK9jH0gF"
TOTP = "492817"
SIGNATURE = "0x" + "ab" * 65
SECRETS = (JWT, REFRESH, MAGIC, TOTP, SIGNATURE)


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("testsvc", "INFO", stream=stream)
    yield stream
    configure_logging("testsvc", "INFO")


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def assert_clean(stream: io.StringIO) -> None:
    text = stream.getvalue()
    assert text.strip(), "nothing was logged"
    for secret in SECRETS:
        assert secret not in text, f"{secret[:12]}... leaked: {text}"


MESSAGES = [
    f'127.0.0.1:5555 - "WebSocket /api/v1/vstudio/ws?room=r1&access_token={JWT}" [accepted]',
    f"GET /api/v1/auth/magic-link/verify?token={MAGIC}&next=/home",
    f"Authorization: Bearer {JWT}",
    f"form body: grant=refresh&refresh_token={REFRESH}",
    f'body {{"refreshToken": "{REFRESH}", "email": "a@b.c"}}',
    f'body {{"code": "{TOTP}", "challengeToken": "{MAGIC}"}}',
    f"callback?code={TOTP}&state=abc",
    f'{{"walletAddress": "0xabc", "signature": "{SIGNATURE}"}}',
    f"wallet verify signature={SIGNATURE}&sig={SIGNATURE}&otp={TOTP}",
]


@pytest.mark.parametrize("message", MESSAGES)
def test_a_stdlib_log_line_is_redacted(log: io.StringIO, message: str) -> None:
    logging.getLogger("uvicorn.error").info("%s", message)
    assert_clean(log)
    assert "***" in lines(log)[-1]["event"]


@pytest.mark.parametrize("message", MESSAGES)
def test_a_structlog_message_is_redacted(log: io.StringIO, message: str) -> None:
    structlog.get_logger("t").warning(message)
    assert_clean(log)


def test_values_are_redacted_at_any_depth_and_by_key(log: io.StringIO) -> None:
    structlog.get_logger("t").info(
        "verify",
        url=f"https://app.example/magic?token={MAGIC}",
        body={"nested": [{"refresh_token": REFRESH}, {"otp": TOTP}], "note": f"jwt {JWT}"},
        signature=SIGNATURE,
        headers={"cookie": "c=1", "x-request-id": "r-1"},
        code="VALIDATION_ERROR",  # an error code is not a secret
        user="u",
    )
    assert_clean(log)
    [line] = lines(log)
    assert line["url"] == "https://app.example/magic?token=***"
    assert line["body"] == {"nested": [{"refresh_token": "***"}, {"otp": "***"}], "note": "jwt ***"}
    assert line["signature"] == "***"
    assert line["headers"] == {"cookie": "***", "x-request-id": "r-1"}
    assert (line["code"], line["user"]) == ("VALIDATION_ERROR", "u")


def test_an_exception_text_is_redacted(log: io.StringIO) -> None:
    try:
        raise ValueError(f"invalid URL http://upstream/ws?access_token={JWT}")
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
        structlog.get_logger("t").exception("unhandled_exception")
    assert_clean(log)
    assert all("access_token=***" in line["exception"] for line in lines(log))


def test_ordinary_text_is_left_alone(log: io.StringIO) -> None:
    message = "barcode=123 exited with code 3; eyJ alone; GET /api/v1/items?page=2"
    logging.getLogger("x").warning(message)
    assert lines(log)[-1]["event"] == message


@websocket("/ws")
async def echo(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        await socket.send_text(await socket.receive_text())


async def test_a_websocket_handshake_with_an_access_token_logs_no_token(log: io.StringIO) -> None:
    port = free_port()
    app = Litestar([echo], logging_config=None)
    server = Server(server_config(app, "vstudio", Settings(), port=port))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), task.result()
            await asyncio.sleep(0.02)
        async with connect(f"ws://127.0.0.1:{port}/ws?room=r1&access_token={JWT}") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
    finally:
        server.should_exit = True
        await task
    # uvicorn's per-connection lines are not written at all (they cost more than the frames
    # at thousands of sockets); one of its warnings naming the same path is, redacted.
    written = [line["event"] for line in lines(log)]
    assert not [e for e in written if "WebSocket /ws" in e or e.startswith("connection ")]
    logging.getLogger("uvicorn.error").warning(
        '%s - "WebSocket %s" 500', "127.0.0.1:5000", f"/ws?room=r1&access_token={JWT}"
    )
    assert_clean(log)
    [warned] = [line for line in lines(log) if "WebSocket /ws" in line["event"]]
    assert warned["level"] == "warning" and "access_token=***" in warned["event"]
