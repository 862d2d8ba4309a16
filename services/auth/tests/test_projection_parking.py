"""Issue 9, finding 2: one event the accounts view cannot take must not stall every sign-up.

The API now refuses a NUL in a display name; this stores one the way an older release (or any
other path into the log) did, straight through the aggregate, and shows what the service does
with it: the accounts view parks it and keeps serving everyone else.
"""

from __future__ import annotations

import time
from uuid import UUID

from audifi_auth.domain.account import Account
from auth_support import AuthService

POISON = "a\x00b"


def store_poisoned_display_name(app, account_id: UUID) -> int:
    """The DisplayNameSet event as it was stored before the API refused it; its position."""
    account: Account = app.account(account_id)
    account.trigger_event(Account.DisplayNameSet, display_name=POISON)
    [recording] = app.save(account)
    return recording.notification.id


async def test_a_display_name_the_view_cannot_store_is_parked_and_sign_ups_go_on(
    auth: AuthService,
) -> None:
    victim = await auth.sign_up("nul@example.com")
    poison = await auth.store.call(
        store_poisoned_display_name, auth.store.app, UUID(victim["userId"])
    )

    for i in range(3):
        started = time.monotonic()
        tokens = await auth.sign_up(f"fan{i}@example.com")
        # Each sign-up waits for the read models to include it: that wait used to run out (5 s)
        # on the accounts view, stuck on the poisoned event.
        assert time.monotonic() - started < 3.0
        me = await auth.client.get("/users/me", headers=auth.bearer(tokens))
        assert me.status_code == 200 and me.json()["email"] == f"fan{i}@example.com", me.text

    [parked] = await auth.sql(
        "SELECT projection, notification_id, topic, error_type, attempts FROM kit_projection_parked"
    )
    assert (parked["projection"], parked["notification_id"]) == ("accounts", poison)
    assert parked["topic"].endswith("Account.DisplayNameSet")
    assert parked["error_type"].endswith("CharacterNotInRepertoireError")

    ready = await auth.client.get("/ready")
    assert ready.status_code == 200, ready.text
    view = ready.json()["checks"]["projections"]["details"]["projections"]["accounts"]
    assert (view["parked"], view["stalled"]) == (1, False)
