"""`GET /notifications`'s query: what the schema allows is answered, what it refuses is a 400
naming the parameter — never a 500 from the database (issue 9, findings 2 and 6)."""

from __future__ import annotations

from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.testing import eventually


async def test_the_query_is_held_to_the_schema_and_every_allowed_value_answered(
    start_notify, config
) -> None:
    async with start_notify(InProcessBus(), config) as notify:
        account_id, email = await notify.register("query")
        await eventually(lambda: notify.mail(email))
        admin = ("admin",)

        for params, name in (
            ({"accountId": "\x00"}, "accountId"),
            ({"accountId": account_id + "\n"}, "accountId"),
            ({"cursor": "\x00"}, "cursor"),
            ({"cursor": "1_" + "0" * 31}, "cursor"),
            ({"cursor": "B" + "A" * 31}, "cursor"),  # a time past what a cursor names
            ({"limit": 201}, "limit"),
            ({"limit": 0}, "limit"),
        ):
            refused = await notify.notifications("admin-1", roles=admin, **params)
            assert refused.status_code == 400, (params, refused.text)
            [field] = refused.json()["error"]["details"]["fields"]
            assert field["field"] == name and field["source"] == "query"

        # An id in capitals is the same account.
        async def listed() -> list:
            upper = await notify.notifications("admin-1", roles=admin, accountId=account_id.upper())
            assert upper.status_code == 200, upper.text
            return upper.json()["items"]

        [item] = await eventually(listed)
        assert item["accountId"] == account_id

        # The extremes of the cursor's pattern are positions: after the last, before the first.
        for cursor, items in (("A" * 32, 0), ("Af" + "_" * 30, 1)):
            page = await notify.notifications(account_id, cursor=cursor)
            assert page.status_code == 200, page.text
            assert len(page.json()["items"]) == items
