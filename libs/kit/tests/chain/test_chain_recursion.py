"""Importing the chain stack must not take away Python's recursion guard (issue 9, finding 1).

py_ecc raises the recursion limit to 100,000 on import (web3 and eth_account import it) and
py-evm to 12,288; a 100,000-deep JSON body then overflowed the C stack in msgspec's decoder
and the whole process died with SIGSEGV. Each test runs in a fresh interpreter, since the
limit is process-wide and a crash must be seen as an exit status, not take pytest down.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

DEEP = "b'[' * 100_000 + b']' * 100_000"


def run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "first",
    ["", "import eth_account"],
    ids=["chain-only", "eth_account-first"],
)
def test_a_deep_document_is_a_recursion_error_after_the_chain_is_imported(first: str) -> None:
    # "eth_account-first" is the auth service's wallet sign-in, imported before the kit's chain.
    result = run(
        f"""
        import sys
        {first}
        import msgspec
        import audifi_kit.chain
        print("limit", sys.getrecursionlimit())
        try:
            msgspec.json.decode({DEEP})
        except RecursionError:
            print("refused")
        """
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.split() == ["limit", "1000", "refused"]


def test_a_service_app_answers_a_100k_deep_body_with_400_and_lives_on() -> None:
    result = run(
        f"""
        import asyncio
        import httpx
        import audifi_kit.chain  # the services that use the chain import it, so the test does
        from litestar import post
        from audifi_kit.http import create_service_app
        from audifi_kit.settings import Settings
        from audifi_kit.testing import served

        @post("/signup")
        async def signup(data: dict) -> dict:
            return {{"ok": True}}

        async def main() -> None:
            app = create_service_app("sample", route_handlers=[signup], settings=Settings())
            async with served(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
                deep = await client.post(
                    "/signup", content={DEEP}, headers={{"content-type": "application/json"}}
                )
                after = await client.post("/signup", json={{"name": "still here"}})
                print(deep.status_code, deep.json()["error"]["code"], after.status_code)

        asyncio.run(main())
        """
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.split()[-3:] == ["400", "VALIDATION_ERROR", "201"]


def test_a_process_that_imports_eth_account_alone_gets_its_guard_back_when_served() -> None:
    # Auth verifies wallet signatures with eth_account and never imports audifi_kit.chain:
    # `serve` restores the limit once its apps are built, before anything is decoded.
    result = run(
        """
        import sys
        import eth_account
        import msgspec
        from audifi_kit.recursion import restore_recursion_limit
        print("raised", sys.getrecursionlimit() > 1000)
        restore_recursion_limit()
        print("limit", sys.getrecursionlimit())
        try:
            msgspec.json.decode(DEEP)
        except RecursionError:
            print("refused")
        """.replace("DEEP", DEEP)
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.split() == ["raised", "True", "limit", "1000", "refused"]
