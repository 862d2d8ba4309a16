"""Notify's sealing key: public, stable across restarts, and the only key that opens a link."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

from audifi_events.auth import AccountRegistered, MagicLinkRequested
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.testing import eventually
from nacl.public import PrivateKey, SealedBox


async def test_the_seal_key_is_public_and_survives_a_restart(start_notify, config) -> None:
    async with start_notify(InProcessBus(), config) as notify:
        first = await notify.client.get("/.well-known/seal-key")  # no token needed
        assert first.status_code == 200
        assert len(base64.b64decode(first.json()["publicKey"])) == 32
        assert len(first.json()["keyId"]) == 16
    async with start_notify(InProcessBus(), config) as notify:
        again = await notify.client.get("/.well-known/seal-key")
        schema = await notify.client.get("/schema/openapi.json")  # what the gateway merges
    assert again.json() == first.json()
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/notifications", "/.well-known/seal-key", "/dev/mail"} <= set(paths)


async def test_a_link_sealed_to_another_key_is_never_sent(start_notify, config) -> None:
    account_id = str(uuid.uuid4())
    email = f"wrongkey-{account_id[:8]}@example.com"
    stranger = SealedBox(PrivateKey.generate().public_key).encrypt(b"https://x.test/t")
    async with start_notify(InProcessBus(), config) as notify:
        await notify.publish(
            AccountRegistered(
                account_id=account_id,
                email=email,
                wallet_address=None,
                roles=["fan"],
                registered_at=datetime.now(UTC),
            )
        )
        await notify.publish(
            MagicLinkRequested(
                account_id=account_id,
                sealed_link=base64.b64encode(stranger).decode(),
                seal_key_id="0000000000000000",
                expires_at=datetime.now(UTC) + timedelta(minutes=15),
            )
        )

        async def failed() -> dict | None:
            items = (await notify.notifications(account_id)).json()["items"]
            links = [i for i in items if i["template"] == "magic_link"]
            return links[0] if links and links[0]["status"] == "failed" else None

        item = await eventually(failed)
        assert "unreadable" in item["lastError"]
        subjects = [m["subject"] for m in await notify.mail(email)]
        assert "Your AudiFi sign-in link" not in subjects


async def test_a_wallet_only_account_gets_no_welcome_mail(start_notify, config):
    account_id = str(uuid.uuid4())
    async with start_notify(InProcessBus(), config) as notify:
        await notify.publish(
            AccountRegistered(
                account_id=account_id,
                email=None,
                wallet_address="0x" + "12" * 20,
                roles=["fan"],
                registered_at=datetime.now(UTC),
            )
        )
        # a later account's welcome proves the wallet-only one was handled before it
        other = str(uuid.uuid4())
        await notify.publish(
            AccountRegistered(
                account_id=other,
                email=f"after-{other[:8]}@example.com",
                wallet_address=None,
                roles=["fan"],
                registered_at=datetime.now(UTC),
            )
        )
        await eventually(lambda: notify.mail(f"after-{other[:8]}@example.com"))
        assert (await notify.notifications(account_id)).json()["items"] == []
