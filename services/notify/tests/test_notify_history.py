"""`GET /notifications`: your own history, page by page; an admin sees anyone's."""

from __future__ import annotations

import uuid

from audifi_events.auth import TwoFactorEnabled, WalletLinked
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.testing import eventually


async def test_users_page_through_their_own_history_and_admins_through_anyones(
    start_notify, config, now
) -> None:
    async with start_notify(InProcessBus(), config) as notify:
        account_id, email = await notify.register("pages")
        await notify.publish(TwoFactorEnabled(account_id=account_id, enabled_at=now()))
        await notify.publish(
            WalletLinked(
                account_id=account_id,
                wallet_address="7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU",
                chain="solana",
                linked_at=now(),
            )
        )
        await eventually(lambda: _sent(notify, email, 3))

        first = (await notify.notifications(account_id, limit=2)).json()
        assert len(first["items"]) == 2
        assert first["nextCursor"]
        second = (
            await notify.notifications(account_id, limit=2, cursor=first["nextCursor"])
        ).json()
        assert len(second["items"]) == 1
        assert second["nextCursor"] is None
        ids = [i["id"] for i in first["items"] + second["items"]]
        assert len(set(ids)) == 3
        stamps = [i["createdAt"] for i in first["items"] + second["items"]]
        assert stamps == sorted(stamps, reverse=True)

        stranger = str(uuid.uuid4())
        assert (await notify.notifications(stranger)).json()["items"] == []
        forbidden = await notify.notifications(stranger, accountId=account_id)
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["code"] == "FORBIDDEN"

        admin = await notify.notifications("admin-1", roles=("admin",), accountId=account_id)
        assert len(admin.json()["items"]) == 3
        everyone = await notify.notifications("admin-1", roles=("admin",), limit=100)
        assert len(everyone.json()["items"]) >= 3

        bad = await notify.notifications(account_id, cursor="not-a-cursor")
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "VALIDATION_ERROR"
        assert [f["field"] for f in bad.json()["error"]["details"]["fields"]] == ["cursor"]
        anonymous = await notify.client.get("/notifications")
        assert anonymous.status_code == 401


async def _sent(notify, email: str, count: int) -> bool:
    return len(await notify.mail(email)) == count
