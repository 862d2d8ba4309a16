"""One request must not crash or 500 a service: bodies are bounded and checked before decoding.

Issue 9: a deep JSON body killed the process, invalid UTF-8 was a 500, `text/plain` was taken
for JSON, a missing body answered Python's "'data'", OPTIONS answered 401 and its `Allow`
left methods out, and nothing bounded what a route (or idempotency) read into memory.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
import httpx
import pytest
from audifi_kit.app_state import DB_POOL_STATE_KEY
from audifi_kit.errors import ValidationFailed
from audifi_kit.http.bodies import check_json_body
from audifi_kit.testing import served
from litestar import Litestar, Request, delete, post, put
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, JSONBody
from litestar.testing import AsyncTestClient
from service_app import NewMaster, Payments, build_app, payment_routes
from test_errors import assert_envelope

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_SMALL = b"[" * 30_000 + b"]" * 30_000  # under the test app's 64 KiB limit
MASTER = {"title": "Song", "shareCount": 10}
PAYMENT = {"amountMinor": 500, "currency": "EUR"}


# ----------------------------------------------------------------------- check_json_body


@pytest.mark.parametrize(
    "body",
    [b"[" * 65 + b"]" * 65, b'{"a":' * 65 + b"1" + b"}" * 65, b"[" * 65, DEEP],
    ids=["arrays", "objects", "unclosed", "100k"],
)
def test_nesting_deeper_than_the_limit_is_refused_with_the_limit(body: bytes) -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_json_body(body)
    assert refused.value.status_code == 400
    assert refused.value.code == "VALIDATION_ERROR"
    assert refused.value.details == {"maxDepth": 64}


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 64 + b"]" * 64,
        b'["' + b"[" * 1000 + b'"]',  # brackets inside a string are text
        b'["\\"' + b"{" * 1000 + b'"]',  # an escaped quote does not end the string
        b"[" + b"[]," * 1000 + b"[]]",  # many brackets, never deep
    ],
    ids=["at-limit", "in-string", "escaped-quote", "wide"],
)
def test_json_within_the_limit_passes(body: bytes) -> None:
    check_json_body(body)


def test_brackets_after_an_escaped_backslash_count_again() -> None:
    # `"\\"` is a whole string (an escaped backslash): the brackets after it are structure.
    with pytest.raises(ValidationFailed):
        check_json_body(b'["\\\\",' + b"[" * 100 + b"]" * 100 + b"]")


def test_the_depth_limit_is_a_parameter() -> None:
    check_json_body(b"[[[]]]", max_depth=3)
    with pytest.raises(ValidationFailed) as refused:
        check_json_body(b"[[[[]]]]", max_depth=3)
    assert refused.value.details == {"maxDepth": 3}


def test_bytes_that_are_not_utf8_are_refused() -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_json_body('{"name": "café"}'.encode("latin-1"))
    assert refused.value.status_code == 400
    check_json_body('{"name": "café [[["}'.encode(), max_depth=1)


def test_big_bodies_are_checked_in_far_less_time_than_a_request_allows() -> None:
    flat = json.dumps([{"id": i, "tags": ["a", "[b]"]} for i in range(40_000)]).encode()
    unterminated = b'["' + b'\\"' * 500_000  # quadratic for a naive string-literal regex
    for body in (flat, unterminated, DEEP):
        started = time.perf_counter()
        try:
            check_json_body(body)
        except ValidationFailed:
            pass
        # About 10 ms per MiB here; the bound only catches a quadratic or per-byte scan.
        assert time.perf_counter() - started < 1.0, len(body)


# ------------------------------------------------------------------------- the app's guard


@delete("/masters/{master_id:int}", opt={"public": True}, status_code=204)
async def delete_master(master_id: FromPath[int]) -> None:
    return None


@put("/masters/{master_id:int}", opt={"public": True})
async def replace_master(master_id: FromPath[int], data: JSONBody[NewMaster]) -> dict[str, Any]:
    return {"id": master_id, "title": data.title}


@post("/raw", opt={"public": True})
async def raw(request: Request[Any, Any, Any]) -> dict[str, int]:
    return {"bytes": len(await request.body())}


@post("/packed", opt={"public": True})
async def packed(
    data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MESSAGEPACK)],
) -> dict[str, Any]:
    return data


@post("/notes", opt={"public": True}, status_code=200)
async def notes(data: JSONBody[dict[str, Any] | None] = None) -> dict[str, Any]:
    return {"data": data}


@post("/uploads", opt={"public": True}, request_max_body_size=4096)
async def upload(data: JSONBody[dict[str, Any]]) -> dict[str, int]:
    return {"keys": len(data)}


EXTRA = [delete_master, replace_master, raw, packed, notes, upload]


@pytest.fixture
def payments() -> Payments:
    return Payments()


@pytest.fixture
async def client(payments: Payments) -> AsyncIterator[AsyncTestClient]:
    # A JWKS URL nothing answers: no test here sends a token, so none is ever fetched.
    app = build_app(
        route_handlers=[*EXTRA, *payment_routes(payments)],
        jwks_url="http://127.0.0.1:9/.well-known/jwks.json",
        max_body_size=64 * 1024,
    )
    async with AsyncTestClient(app=app) as client:
        yield client


JSON = {"content-type": "application/json"}


async def test_a_deep_json_body_is_refused_before_the_handler_runs(client, payments) -> None:
    body = assert_envelope(
        await client.post("/tips", content=DEEP_SMALL, headers=JSON), 400, "VALIDATION_ERROR"
    )
    assert body["error"]["details"] == {"maxDepth": 64}
    assert payments.executed == 0


async def test_a_json_body_that_is_not_utf8_is_a_validation_error_not_a_500(client) -> None:
    latin1 = '{"title": "Café", "shareCount": 1}'.encode("latin-1")
    body = assert_envelope(
        await client.post("/masters", content=latin1, headers=JSON), 400, "VALIDATION_ERROR"
    )
    assert "UTF-8" in body["error"]["message"]


async def test_text_plain_is_not_taken_for_json(client, payments) -> None:
    response = await client.post(
        "/tips", content=json.dumps(PAYMENT), headers={"content-type": "text/plain"}
    )
    assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    no_type = await client.post("/tips", content=json.dumps(PAYMENT).encode())
    assert_envelope(no_type, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert payments.executed == 0


async def test_json_media_types_with_parameters_or_a_json_suffix_are_json(client) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = await client.post(
            "/masters", content=json.dumps(MASTER), headers={"content-type": content_type}
        )
        assert response.status_code == 201, (content_type, response.text)
        assert response.json() == MASTER


async def test_a_missing_or_empty_body_says_a_json_body_is_required(client, payments) -> None:
    for response in (
        await client.post("/tips"),
        await client.post("/tips", content=b"", headers=JSON),
    ):
        body = assert_envelope(response, 400, "VALIDATION_ERROR")
        assert body["error"]["message"] == "A JSON body is required"
        assert "'data'" not in response.text
    assert payments.executed == 0


async def test_an_optional_json_body_may_be_left_out(client) -> None:
    response = await client.post("/notes")
    assert response.status_code == 200, response.text
    assert response.json() == {"data": None}


async def test_a_missing_body_litestar_reports_is_not_a_python_key_error(client) -> None:
    # MessagePack is Litestar's own parser (not the JSON guard): its "'data'" text is mapped.
    body = assert_envelope(await client.post("/packed"), 400, "VALIDATION_ERROR")
    assert "'data'" not in json.dumps(body)
    assert body["error"]["details"]["fields"][0]["message"] == "A request body is required"


async def test_a_body_over_the_apps_limit_is_payload_too_large(client, payments) -> None:
    big = json.dumps({**PAYMENT, "note": "x" * 70_000})
    response = await client.post("/tips", content=big, headers=JSON)
    body = assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
    assert body["error"]["details"] == {"maxBytes": 64 * 1024}
    assert payments.executed == 0


async def test_a_route_may_set_its_own_body_limit(client) -> None:
    small = await client.post("/uploads", json={"a": "x" * 1000})
    assert small.status_code == 201
    body = assert_envelope(
        await client.post("/uploads", json={"a": "x" * 5000}), 413, "PAYLOAD_TOO_LARGE"
    )
    assert body["error"]["details"] == {"maxBytes": 4096}


async def test_a_wrong_method_lists_every_method_of_the_path(client) -> None:
    # GET, PUT and DELETE of this path are three handlers declared one by one.
    for method in ("PATCH", "POST"):
        response = await client.request(method, "/masters/7")
        assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
        assert response.headers["allow"] == "DELETE, GET, OPTIONS, PUT"


async def test_options_answers_allow_on_every_route_public_or_not(client) -> None:
    for path, allow in (
        ("/masters/7", "DELETE, GET, OPTIONS, PUT"),
        ("/masters", "GET, OPTIONS, POST"),
        ("/me", "GET, OPTIONS"),  # protected: still no token needed to ask
        ("/admin/report", "GET, OPTIONS"),
    ):
        response = await client.options(path)
        assert response.status_code == 204, (path, response.text)
        assert response.headers["allow"] == allow
    assert (await client.get("/me")).status_code == 401


# ------------------------------------------- what a real server never reads (uvicorn, sockets)


async def exchange(base_url: str, head: str) -> tuple[int, dict[str, str], bytes]:
    """Send only a request head and read the whole answer: the server closes after it."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode("latin-1"))
        await writer.drain()
        # A server waiting for the promised body would answer nothing: the bound fails it.
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head_bytes, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, body


def request_head(method: str, path: str, *headers: str) -> str:
    return "\r\n".join([f"{method} {path} HTTP/1.1", "Host: test", *headers, "", ""])


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async with served(build_app(route_handlers=EXTRA)) as base_url:
        yield base_url


@pytest.mark.parametrize("method", ["GET", "DELETE", "OPTIONS"])
async def test_a_bodiless_method_announcing_a_body_is_refused_unread(server, method) -> None:
    status, headers, body = await exchange(
        server, request_head(method, "/masters/7", "Content-Length: 10485760")
    )
    assert status == 400
    assert json.loads(body)["error"]["code"] == "VALIDATION_ERROR"
    assert headers["connection"] == "close"


async def test_a_chunked_get_body_is_refused_unread(server) -> None:
    status, headers, _ = await exchange(
        server, request_head("GET", "/masters/7", "Transfer-Encoding: chunked")
    )
    assert status == 400 and headers["connection"] == "close"


async def test_an_announced_oversize_body_is_refused_before_it_is_sent(server) -> None:
    status, headers, body = await exchange(
        server,
        request_head(
            "POST", "/masters", "Content-Type: application/json", "Content-Length: 10485760"
        ),
    )
    assert status == 413
    assert json.loads(body)["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert headers["connection"] == "close"


async def chunked(size: int) -> AsyncIterator[bytes]:
    """A JSON body of about `size` bytes, sent without a Content-Length."""
    yield b'{"amountMinor": 500, "currency": "EUR", "note": "'
    for _ in range(size // 4096):
        yield b"x" * 4096
    yield b'"}'


async def test_a_chunked_body_over_the_limit_is_refused_for_every_reader(payments) -> None:
    app = build_app(route_handlers=[*EXTRA, *payment_routes(payments)], max_body_size=16 * 1024)
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        for path in ("/tips", "/raw"):
            response = await client.post(path, content=chunked(64 * 1024), headers=JSON)
            assert "content-length" not in response.request.headers
            assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
    assert payments.executed == 0


# ------------------------------------------------------- idempotency reads within the limit


async def test_an_oversize_idempotent_request_is_refused_and_leaves_its_key_unused(
    fresh_database: str, payments: Payments
) -> None:
    @asynccontextmanager
    async def read_models(app: Litestar) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(fresh_database, min_size=1, max_size=2)
        app.state[DB_POOL_STATE_KEY] = pool
        try:
            yield
        finally:
            await pool.close()

    app = build_app(
        route_handlers=payment_routes(payments), lifespan=[read_models], max_body_size=1024
    )

    key = {"Idempotency-Key": "big-1", **JSON}
    async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        refused = await client.post("/payments", content=chunked(8192), headers=key)
        assert_envelope(refused, 413, "PAYLOAD_TOO_LARGE")
        assert payments.executed == 0
        accepted = await client.post("/payments", json=PAYMENT, headers=key)
        assert accepted.status_code == 201
        assert "idempotent-replayed" not in accepted.headers
    assert payments.executed == 1
