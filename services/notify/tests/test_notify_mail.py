"""What a user receives: auth's events become e-mails in the sink, each exactly once."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

from audifi_events.auth import (
    AccountRegistered,
    MagicLinkRequested,
    TwoFactorEnabled,
    WalletLinked,
)
from audifi_kit.testing import eventually
from nacl.public import PublicKey, SealedBox


def _account() -> tuple[str, str]:
    account_id = str(uuid.uuid4())
    return account_id, f"fan-{account_id[:8]}@example.com"


def _registered(account_id: str, email: str | None, now) -> AccountRegistered:
    return AccountRegistered(
        account_id=account_id,
        email=email,
        wallet_address=None,
        roles=["fan"],
        registered_at=now(),
    )


async def test_a_new_account_receives_the_welcome_mail_at_its_address(notify, now) -> None:
    account_id, email = _account()
    await notify.publish(_registered(account_id, email, now))

    [mail] = await eventually(lambda: notify.mail(email))
    assert mail["to"] == email
    assert mail["subject"] == "Welcome to AudiFi"
    assert "your account is ready" in mail["text"]
    assert "<h1" in mail["html"]
    assert mail["receivedAt"]

    # The mail leaves before its Sent event reaches the read model: wait for the history.
    async def sent() -> list | None:
        response = await notify.notifications(account_id)
        assert response.status_code == 200
        items = response.json()["items"]
        return items if items and items[0]["status"] == "sent" else None

    [item] = await eventually(sent)
    assert item["template"] == "welcome"
    assert item["attempts"] == 1
    assert item["sentAt"]


async def test_a_magic_link_sealed_to_notify_arrives_in_clear_and_is_stored_nowhere(
    notify, now
) -> None:
    account_id, email = _account()
    await notify.publish(_registered(account_id, email, now))
    key = (await notify.client.get("/.well-known/seal-key")).json()
    link = f"https://app.audifi.test/auth/verify?token={uuid.uuid4().hex}"
    public = PublicKey(base64.b64decode(key["publicKey"]))
    sealed = base64.b64encode(SealedBox(public).encrypt(link.encode())).decode()
    await notify.publish(
        MagicLinkRequested(
            account_id=account_id,
            sealed_link=sealed,
            seal_key_id=key["keyId"],
            expires_at=now() + timedelta(minutes=15),
        )
    )

    mails = await eventually(lambda: _with_subject(notify, email, "Your AudiFi sign-in link"))
    assert link in mails[0]["text"]
    conn = await notify.connect()
    try:
        rows = await conn.fetch(f"SELECT state FROM {notify.events_table}")
        assert rows
        for row in rows:
            state = bytes(row["state"])
            assert link.encode() not in state
            assert sealed.encode() not in state
            assert email.encode() not in state
        # the sealed link is gone too, once its mail went out
        assert await conn.fetchval("SELECT count(*) FROM notify_sealed_links") == 0
    finally:
        await conn.close()


async def test_an_expired_magic_link_is_abandoned_not_sent(notify, now) -> None:
    account_id, email = _account()
    await notify.publish(_registered(account_id, email, now))
    key = (await notify.client.get("/.well-known/seal-key")).json()
    public = PublicKey(base64.b64decode(key["publicKey"]))
    sealed = base64.b64encode(SealedBox(public).encrypt(b"https://x.test/late")).decode()
    await notify.publish(
        MagicLinkRequested(
            account_id=account_id,
            sealed_link=sealed,
            seal_key_id=key["keyId"],
            expires_at=now() - timedelta(seconds=1),
        )
    )

    items = await eventually(lambda: _settled(notify, account_id, 2))
    by_template = {i["template"]: i for i in items}
    assert by_template["magic_link"]["status"] == "abandoned"
    assert "expired" in by_template["magic_link"]["lastError"]
    assert [m["subject"] for m in await notify.mail(email)] == ["Welcome to AudiFi"]


async def test_the_same_message_delivered_twice_sends_one_mail(notify, now) -> None:
    account_id, email = _account()
    await notify.publish(_registered(account_id, email, now))
    event = TwoFactorEnabled(account_id=account_id, enabled_at=now())
    await notify.publish(event, message_id="auth-2fa-1")
    await notify.publish(event, message_id="auth-2fa-1")
    # a later, distinct event proves the duplicate was already handled when it arrives
    await notify.publish(
        WalletLinked(
            account_id=account_id,
            wallet_address="0x" + "ab" * 20,
            chain="evm",
            linked_at=now(),
        )
    )

    items = await eventually(lambda: _settled(notify, account_id, 3))
    assert sorted(i["template"] for i in items) == [
        "two_factor_enabled",
        "wallet_linked",
        "welcome",
    ]
    subjects = [m["subject"] for m in await notify.mail(email)]
    assert subjects.count("Two-factor authentication is on") == 1
    wallet_mail = next(m for m in await notify.mail(email) if "wallet" in m["subject"])
    assert "0xabab…abab" in wallet_mail["text"]


async def _with_subject(notify, email: str, subject: str) -> list[dict]:
    return [m for m in await notify.mail(email) if m["subject"] == subject]


async def _settled(notify, account_id: str, count: int) -> list[dict] | None:
    response = await notify.notifications(account_id)
    items = response.json()["items"]
    if len(items) == count and all(i["status"] != "pending" for i in items):
        return items
    return None
