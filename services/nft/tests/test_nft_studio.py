"""What nft does for V Studio, served for real: a session's lock makes the master's creative
state final, and its artist reads the holders by account (the votes' weights)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from audifi_events.vstudio import SessionLocked
from audifi_kit.testing import eventually
from test_nft_http import ADMIN, ARTIST, FAN, Nft, _register
from test_nft_http import nft as nft  # the served app, as a fixture of this module


async def test_a_locked_session_makes_the_masters_creative_state_final_once(nft: Nft) -> None:
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        master = await _register(c, nft)
        assert (master["creativeState"], master["lockedBySession"]) == ("open", None)
        first, second = str(uuid.uuid4()), str(uuid.uuid4())
        for session in (first, second):
            await nft.publish(
                SessionLocked(
                    session_id=session,
                    master_id=master["id"],
                    artist_id=ARTIST,
                    locked_by=ARTIST,
                    locked_at=datetime.now(UTC),
                )
            )

        async def final() -> dict | None:
            shown = (await c.get(f"/masters/{master['id']}", headers=nft.headers(FAN))).json()
            return shown if shown["creativeState"] == "final" else None

        shown = await eventually(final, within=30, every=0.1)
        # Delivered together, either may land first; the one that did is the one kept.
        assert shown["lockedBySession"] in (first, second)


async def test_holders_by_account_are_the_artists_and_admins_to_read(nft: Nft) -> None:
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        master = await _register(c, nft)
        path = f"/masters/{master['id']}/shares/by-account"
        fan = await c.get(path, headers=nft.headers(FAN))
        assert (fan.status_code, fan.json()["error"]["code"]) == (403, "FORBIDDEN")
        for who in (nft.headers(ARTIST, "artist"), nft.headers(ADMIN, "admin")):
            answer = await c.get(path, headers=who)
            assert answer.status_code == 200, answer.text
            assert (answer.json()["items"], answer.json()["totalSupply"]) == ([], 0)
        unknown = await c.get(
            f"/masters/{uuid.uuid4()}/shares/by-account", headers=nft.headers(ADMIN, "admin")
        )
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "MASTER_NOT_FOUND")


def test_a_second_lock_leaves_the_first_sessions_mark() -> None:
    from audifi_nft.bootstrap import in_memory
    from nft_support import register

    app = in_memory()
    master = register(app)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    for session in (first, second):
        locked = app.decide_lock_creative_state(master.id, session_id=session, at=datetime.now(UTC))
        assert locked is not None
        app.save(locked)
    kept = app.master(master.id)
    assert (kept.creative_state, kept.locked_by_session) == ("final", first)
    assert (
        app.decide_lock_creative_state(uuid.uuid4(), session_id=first, at=datetime.now(UTC)) is None
    )
