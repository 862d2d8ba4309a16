"""When mail cannot or must not go out: a refusing server, an erased account."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from audifi_events.auth import AccountErased, AccountRegistered, TwoFactorEnabled
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.testing import eventually, free_port
from audifi_notify.config import NotifyConfig, SmtpServer
from audifi_notify.domain import RetryPolicy


class Refusing:
    """An SMTP server that refuses every recipient, quoting the address as real ones do."""

    def __init__(self) -> None:
        self.attempts = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        self.attempts += 1
        return f"550 5.1.1 <{address}>: mailbox unavailable"


@pytest.fixture
def refusing_smtp() -> Any:
    handler = Refusing()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, SmtpServer(host="127.0.0.1", port=port)
    controller.stop()


async def test_a_refusing_server_is_retried_then_the_mail_fails_with_the_error_kept(
    start_notify, refusing_smtp, now
) -> None:
    handler, server = refusing_smtp
    config = NotifyConfig(smtp=server, retry=RetryPolicy((0.05, 0.1)))
    async with start_notify(InProcessBus(), config) as notify:
        account_id, email = await notify.register("gone")

        async def failed() -> dict | None:
            items = (await notify.notifications(account_id)).json()["items"]
            return items[0] if items and items[0]["status"] == "failed" else None

        item = await eventually(failed)
        assert item["attempts"] == 3
        assert item["lastError"].startswith("550 5.1.1")
        assert "mailbox unavailable" in item["lastError"]
        assert email not in item["lastError"]  # the server quoted it; notify masked it
        assert handler.attempts == 3
        assert item["sentAt"] is None
        # with an SMTP server configured there is no sink and no dev mailbox
        assert (await notify.client.get("/dev/mail")).status_code == 404


async def test_after_erasure_nothing_is_sent_and_the_address_is_gone_everywhere(
    notify, now
) -> None:
    account_id = str(uuid.uuid4())
    email = f"forget-{account_id[:8]}@example.com"
    await notify.publish(
        AccountRegistered(
            account_id=account_id,
            email=email,
            wallet_address=None,
            roles=["fan"],
            registered_at=now(),
        )
    )
    await eventually(lambda: notify.mail(email))

    await notify.publish(AccountErased(account_id=account_id, erased_at=now()))
    conn = await notify.connect()
    try:

        async def forgotten() -> bool:
            return bool(
                await conn.fetchval(
                    "SELECT true FROM notify_erased_accounts WHERE account_id = $1", account_id
                )
            )

        await eventually(forgotten)
        await notify.publish(TwoFactorEnabled(account_id=account_id, enabled_at=now()))

        async def refused() -> dict | None:
            items = (await notify.notifications(account_id)).json()["items"]
            done = [i for i in items if i["template"] == "two_factor_enabled"]
            return done[0] if done and done[0]["status"] != "pending" else None

        item = await eventually(refused)
        assert item["status"] == "failed"
        assert item["lastError"] == "account erased"
        assert [m["subject"] for m in await notify.mail(email)] == ["Welcome to AudiFi"]
        assert await _tables_holding(conn, email) == []
    finally:
        await conn.close()


async def _tables_holding(conn, text: str) -> list[str]:
    """Every table of notify's database (all schemas) with a row that contains `text`."""
    tables = await conn.fetch(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' "
        "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
    )
    needle = text.encode()
    holding = []
    for t in tables:
        name = f'"{t["table_schema"]}"."{t["table_name"]}"'
        for row in await conn.fetch(f"SELECT * FROM {name}"):
            for value in row.values():
                raw = value if isinstance(value, bytes) else str(value).encode()
                if needle in raw:
                    holding.append(name)
                    break
    return sorted(set(holding))
