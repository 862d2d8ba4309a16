"""What the gateway refuses of a client request before it reaches a service (issue 9).

Requests a well-behaved HTTP client would not send are written on raw sockets, as an attacker
would write them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from audifi_gateway.ratelimit import DEFAULT_LIMITS
from websockets.asyncio.client import connect

LOGIN = "/api/v1/auth/login"


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def send_raw(base: str, head: bytes, body: bytes = b"") -> RawResponse:
    """Write a request as given and read the answer; the writer is left open, as a client
    that has not finished sending would leave it, until the answer has been read."""
    url = urlsplit(base)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(head + body)
        await writer.drain()
        status_line = await reader.readline()
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        answer = await reader.readexactly(length) if length else b""
        return RawResponse(int(status_line.split()[1]), headers, answer)
    finally:
        writer.close()


def request_head(method: str, target: str, *lines: str, request_id: str | None = None) -> bytes:
    head = [f"{method} {target} HTTP/1.1", "Host: gateway.test", *lines]
    if request_id is not None:
        head.append(f"X-Request-Id: {request_id}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


def assert_envelope(response: RawResponse, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, response.body
    body = response.json()
    assert body["error"]["code"] == code
    assert body["requestId"] == response.headers["x-request-id"]
    return body


async def breaker_state(client, gateway: str, upstream: str) -> str:
    metrics = (await client.get(f"{gateway}/metrics")).text
    prefix = f'audifi_gateway_breaker_state{{upstream="{upstream}"}} '
    (line,) = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return line.removeprefix(prefix)


# ----------------------------------------------------------------------- body framing (3)


async def test_five_slow_clients_do_not_open_the_breaker_a_sixth_gets_its_answer(
    start_gateway, upstream_settings, gateway_config, client, upstream_log
) -> None:
    config = dataclasses.replace(gateway_config, body_timeout=0.5)
    async with start_gateway(upstream_settings(), config=config) as gateway:
        # Each promises 100 bytes and sends 10.
        slow = [
            send_raw(
                gateway,
                request_head(
                    "POST",
                    LOGIN,
                    "Content-Type: application/json",
                    "Content-Length: 100",
                    request_id=f"slow-{i}",
                ),
                b'{"email":',
            )
            for i in range(5)
        ]
        for response in await asyncio.gather(*slow):
            body = assert_envelope(response, 408, "REQUEST_TIMEOUT")
            assert body["error"]["details"] == {"timeoutSeconds": 0.5}
            assert response.headers["connection"] == "close"

        sixth = await client.post(f"{gateway}{LOGIN}", json={"email": "fan@example.com"})
        assert sixth.status_code == 200
        assert await breaker_state(client, gateway, "auth") == "0.0"
    assert not any(upstream_log.saw(f"slow-{i}") for i in range(5))


async def test_conflicting_framing_is_a_400_and_the_upstream_never_sees_the_request(
    gateway, client, upstream_log
) -> None:
    for i in range(5):
        response = await send_raw(
            gateway,
            request_head(
                "POST",
                LOGIN,
                "Content-Type: application/json",
                "Content-Length: 4",
                "Transfer-Encoding: chunked",
                request_id=f"smuggle-{i}",
            ),
            b"0\r\n\r\n",
        )
        assert_envelope(response, 400, "VALIDATION_ERROR")
        assert response.headers["connection"] == "close"
    assert not any(upstream_log.saw(f"smuggle-{i}") for i in range(5))
    assert (await client.post(f"{gateway}{LOGIN}", json={})).status_code == 200


async def test_a_chunked_body_reaches_the_service_whole_with_its_length(gateway) -> None:
    chunks = b'5\r\n{"a":\r\n3\r\n 1}\r\n0\r\n\r\n'
    response = await send_raw(
        gateway,
        request_head("POST", LOGIN, "Content-Type: application/json", "Transfer-Encoding: chunked"),
        chunks,
    )
    assert response.status == 200
    echo = response.json()
    assert echo["bodyLength"] == len(b'{"a": 1}')
    headers = dict(echo["headers"])
    assert headers["content-length"] == "8" and "transfer-encoding" not in headers


async def test_a_body_over_the_limit_is_refused_without_being_read(
    start_gateway, upstream_settings, gateway_config, upstream_log
) -> None:
    config = dataclasses.replace(gateway_config, max_body=1024)
    async with start_gateway(upstream_settings(), config=config) as gateway:
        # Declared: refused before a byte of it is read.
        declared = await send_raw(
            gateway,
            request_head("POST", LOGIN, "Content-Length: 10485760", request_id="big-1"),
        )
        body = assert_envelope(declared, 413, "PAYLOAD_TOO_LARGE")
        assert body["error"]["details"] == {"limit": 1024}
        assert declared.headers["connection"] == "close"
        # Chunked: refused once more has arrived than the limit.
        chunked = await send_raw(
            gateway,
            request_head("POST", LOGIN, "Transfer-Encoding: chunked", request_id="big-2"),
            b"800\r\n" + b"x" * 0x800 + b"\r\n",
        )
        assert_envelope(chunked, 413, "PAYLOAD_TOO_LARGE")
    assert not upstream_log.saw("big-1") and not upstream_log.saw("big-2")


async def test_a_get_with_a_body_is_refused_without_reading_it(gateway, upstream_log) -> None:
    response = await send_raw(
        gateway, request_head("GET", LOGIN, "Content-Length: 10485760", request_id="get-body")
    )
    assert_envelope(response, 400, "VALIDATION_ERROR")
    assert response.headers["connection"] == "close"
    assert not upstream_log.saw("get-body")


async def test_a_json_body_too_deep_or_not_utf8_is_refused_at_the_edge(
    gateway, client, upstream_log
) -> None:
    depth = 100_000
    deep = await client.post(
        f"{gateway}/api/v1/auth/signup",
        content=b"[" * depth + b"]" * depth,
        headers={"Content-Type": "application/json", "X-Request-Id": "deep"},
    )
    assert deep.status_code == 400
    assert deep.json()["error"]["code"] == "VALIDATION_ERROR"

    latin1 = await client.post(
        f"{gateway}/api/v1/auth/signup",
        content='{"displayName": "café"}'.encode("latin-1"),
        headers={"Content-Type": "application/merge-patch+json", "X-Request-Id": "latin1"},
    )
    assert latin1.status_code == 400
    assert latin1.json()["error"]["code"] == "VALIDATION_ERROR"
    assert not upstream_log.saw("deep") and not upstream_log.saw("latin1")


# ------------------------------------------------------------------ client addresses (4)


async def test_invented_forwarded_addresses_neither_escape_the_limit_nor_reach_services(
    gateway, client
) -> None:
    budget = DEFAULT_LIMITS["auth"].amount
    statuses = []
    for i in range(budget + 5):
        response = await client.post(
            f"{gateway}{LOGIN}",
            json={"email": "fan@example.com", "password": f"guess-{i}"},
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
        )
        statuses.append(response.status_code)
        if response.status_code == 200:
            echo = response.json()
            # auth sees the client the gateway saw, whatever the client claimed.
            assert echo["client"] == "127.0.0.1"
            assert [v for k, v in echo["headers"] if k == "x-forwarded-for"] == ["127.0.0.1"]
    assert statuses == [200] * budget + [429] * 5


# ------------------------------------------------------------ targets and headers (5)


async def test_a_target_over_the_limit_is_a_414(gateway, client) -> None:
    response = await client.get(f"{gateway}{LOGIN}?q={'a' * 9000}")
    assert response.status_code == 414
    assert response.json()["error"] == {
        "code": "URI_TOO_LONG",
        "message": "The request target is too long",
        "details": {"limit": 8192},
    }
    # Past what the upstream client takes at all (64 KiB): a 4xx, never a 500.
    huge = await send_raw(gateway, request_head("GET", f"{LOGIN}?q={'a' * 70_000}"))
    assert 400 <= huge.status < 500
    assert "code" in huge.json()["error"]


async def test_a_fragment_in_the_target_is_a_400(gateway, upstream_log) -> None:
    response = await send_raw(gateway, request_head("GET", f"{LOGIN}#frag", request_id="frag"))
    assert_envelope(response, 400, "VALIDATION_ERROR")
    assert not upstream_log.saw("frag")


@pytest.mark.parametrize(
    ("line", "header"),
    [
        (b"Content-Type: application/json\x7f", "content-type"),
        (b"Content-Type: application/\x01json", "content-type"),
        (b"X-Note: caf\xe9", "x-note"),  # Latin-1, which would reach the service changed
    ],
)
async def test_a_header_value_the_upstream_client_would_refuse_is_a_400(
    gateway, upstream_log, line: bytes, header: str
) -> None:
    head = request_head("POST", LOGIN, "Content-Length: 2", request_id="bad-header")
    head = head.replace(b"Content-Length", line + b"\r\nContent-Length")
    response = await send_raw(gateway, head, b"{}")
    body = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert body["error"]["details"] == {"header": header}
    assert not upstream_log.saw("bad-header")


# -------------------------------------------------------------- methods and OPTIONS (7)


async def test_a_wrong_method_on_a_known_path_is_a_405_with_allow(gateway, client) -> None:
    response = await client.put(f"{gateway}/api/v1/chain", json={})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"

    traced = await client.request("TRACE", f"{gateway}{LOGIN}")
    assert traced.status_code == 405
    assert traced.headers["Allow"] == "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
    assert (await client.put(f"{gateway}/api/v1/nowhere")).status_code == 404


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/api/v1/chain", "GET, HEAD, OPTIONS"),
        ("/api/v1/auth/login", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
        # Authenticated for some methods: OPTIONS still needs no token.
        ("/api/v1/projects/3", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
        ("/api/v1/masters/7/ipo", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
    ],
)
async def test_options_answers_what_the_route_table_allows_without_a_token(
    gateway, client, upstream_log, path: str, allow: str
) -> None:
    response = await client.options(f"{gateway}{path}", headers={"X-Request-Id": "options"})
    assert response.status_code == 204
    assert response.headers["Allow"] == allow
    assert not upstream_log.saw("options")


async def test_options_on_an_unknown_path_is_a_404(gateway, client) -> None:
    response = await client.options(f"{gateway}/api/v1/nowhere")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


# ------------------------------------------------------------------------- WebSocket logs


async def test_a_websocket_handshake_through_the_gateway_never_logs_its_token(
    gateway, signer, caplog, capsys
) -> None:
    caplog.set_level(logging.DEBUG)
    token = signer.token("fan-3")
    url = f"{gateway.replace('http://', 'ws://')}/api/v1/vstudio/sessions/s-9/ws"
    browser = logging.getLogger("test.browser")
    async with connect(f"{url}?access_token={token}", logger=browser) as socket:
        await socket.recv()
    lines = [(record.name, record.getMessage()) for record in caplog.records]
    # DEBUG lines are captured: the browser's own client logged its request line, token and all.
    assert any(token in line for name, line in lines if name == browser.name)
    # The gateway's own lines and those of the client it opens vstudio's socket with; the
    # servers' (uvicorn's) are redacted by the kit's log configuration.
    ours = [line for name, line in lines if not name.startswith(("uvicorn", browser.name))]
    assert not [line for line in ours if token in line]
    printed = capsys.readouterr()
    assert token not in printed.out and token not in printed.err
