"""Live votes, served for real (PostgreSQL; in-memory or Redis rooms): clients speaking the
seed's frames, HTTP beside them, and an audit that catches a tampered vote.

nft is the outside of this service here: its word on the master and its holders comes from
`StubMasters` (the port's contract), as nft's HTTP API gives it in the platform's e2e."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.runtime import RUNTIME_STATE_KEY
from audifi_kit.settings import Settings
from audifi_kit.testing import TokenSigner, served
from audifi_vstudio.app import create_app
from audifi_vstudio.domain.tally import CastVote, verify
from audifi_vstudio.studio import MasterFacts
from websockets.asyncio.client import connect

ARTIST = str(uuid.uuid4())
FAN_50, FAN_30, STRANGER = (str(uuid.uuid4()) for _ in range(3))
PATIENCE = 10.0


class StubMasters:
    def __init__(self) -> None:
        self.holders_of: dict[uuid.UUID, dict[str, int]] = {}
        self.asked: list[str] = []  # the tokens nft was asked with

    async def master(self, master_id: uuid.UUID, token: str) -> MasterFacts:
        self.asked.append(token)
        return MasterFacts(master_id=master_id, artist_id=ARTIST, title="First Light")

    async def holders(self, master_id: uuid.UUID, token: str) -> dict[str, int]:
        self.asked.append(token)
        return self.holders_of.get(master_id, {})


class Member:
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    async def frame(self) -> dict[str, Any]:
        import asyncio

        async with asyncio.timeout(PATIENCE):
            return json.loads(await self.connection.recv())

    async def frame_of(self, kind: str, **fields: Any) -> dict[str, Any]:
        """The next frame of `kind` whose fields are these (coalesced updates pass by)."""
        while True:
            frame = await self.frame()
            if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
                return frame

    async def send(self, frame: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(frame))


class Live:
    def __init__(
        self, url: str, signer: TokenSigner, masters: StubMasters, settings: Settings, app: Any
    ) -> None:
        self.url, self.signer, self.masters, self.settings = url, signer, masters, settings
        self.app = app

    @property
    def events_table(self) -> str:
        return self.app.state[RUNTIME_STATE_KEY].store.table

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.signer.token(user)}"}

    @contextlib.asynccontextmanager
    async def member(self, session_id: str, user: str) -> AsyncIterator[Member]:
        """A member who joined with the seed's join frame and read its snapshot."""
        ws = f"ws://{urlsplit(self.url).netloc}/vstudio/sessions/{session_id}/ws"
        async with connect(ws, additional_headers=self.headers(user)) as connection:
            member = Member(connection)
            assert (await member.frame())["type"] == "presence"
            member.snapshot = await member.frame()  # type: ignore[attr-defined]
            assert member.snapshot["type"] == "snapshot"  # type: ignore[attr-defined]
            await member.send({"type": "join", "userId": user})
            await member.frame_of("user_joined", userId=user)
            yield member


@pytest.fixture
async def live(settings: Settings, signing_key: TokenSigner) -> AsyncIterator[Live]:
    masters = StubMasters()
    app = create_app(settings, InProcessBus(), masters=masters)
    async with served(app) as url:
        yield Live(url, signing_key, masters, settings, app)


async def _open(c: httpx.AsyncClient, live: Live, **decision: Any) -> tuple[str, dict]:
    master_id = uuid.uuid4()
    live.masters.holders_of[master_id] = {FAN_50: 50, FAN_30: 30}
    created = await c.post(
        "/vstudio/sessions",
        json={"masterId": str(master_id), "title": "Finishing First Light"},
        headers=live.headers(ARTIST),
    )
    assert created.status_code == 201, created.text
    session = created.json()
    assert (session["status"], session["artistId"], session["decisions"]) == ("open", ARTIST, [])
    return session["id"], decision


async def test_fans_vote_live_with_the_seeds_frames_and_everyone_sees_the_winner(
    live: Live,
) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=PATIENCE) as c:
        sid, _ = await _open(c, live)
        async with (
            live.member(sid, FAN_50) as fan50,
            live.member(sid, FAN_30) as fan30,
            live.member(sid, STRANGER) as stranger,
        ):
            artist = live.headers(ARTIST)
            opened = await c.post(
                f"/vstudio/sessions/{sid}/decisions",
                json={"question": "Which chorus?", "options": ["A", "B"]},
                headers=artist,
            )
            assert opened.status_code == 201, opened.text
            did = opened.json()["decisionId"]
            assert live.masters.asked[-1] == artist["Authorization"][7:]  # the artist's token
            for member in (fan50, fan30, stranger):
                announced = await member.frame_of("decision_opened")
                assert (announced["decisionId"], announced["options"]) == (did, ["A", "B"])

            await fan50.send({"type": "vote", "decisionId": did, "choice": "A"})
            assert await fan50.frame_of("vote_ack") == {
                "type": "vote_ack",
                "decisionId": did,
                "choice": "A",
                "weight": 50,
            }
            for member in (fan50, fan30, stranger):
                await member.frame_of("vote_update", decisionId=did, results={"A": 50, "B": 0})

            by_http = await c.post(  # the same effect as the frame
                f"/vstudio/sessions/{sid}/vote",
                json={"decisionId": did, "choice": "B"},
                headers=live.headers(FAN_30),
            )
            assert (by_http.status_code, by_http.json()["weight"]) == (200, 30)
            for member in (fan50, fan30, stranger):
                update = await member.frame_of(
                    "vote_update", decisionId=did, results={"A": 50, "B": 30}
                )
                assert update["votes"] == 2 and len(update["hash"]) == 64

            await stranger.send({"type": "vote", "decisionId": did, "choice": "A"})
            refused = await stranger.frame_of("error")
            assert (refused["code"], refused["decisionId"]) == ("NOT_A_SHAREHOLDER", did)
            await fan30.send({"type": "vote", "decisionId": did, "choice": "A"})  # changed
            for member in (fan50, fan30, stranger):
                await member.frame_of("vote_update", decisionId=did, results={"A": 80, "B": 0})

            closed = await c.post(
                f"/vstudio/sessions/{sid}/decisions/{did}/close", headers=live.headers(ARTIST)
            )
            assert closed.status_code == 200, closed.text
            for member in (fan50, fan30, stranger):
                said = await member.frame_of("decision_closed", decisionId=did)
                assert (said["winner"], said["tie"]) == ("A", False)

            late = await c.post(
                f"/vstudio/sessions/{sid}/vote",
                json={"decisionId": did, "choice": "B"},
                headers=live.headers(FAN_50),
            )
            assert (late.status_code, late.json()["error"]["code"]) == (409, "DECISION_CLOSED")

            shown = (await c.get(f"/vstudio/sessions/{sid}", headers=live.headers(FAN_50))).json()
            assert {u["userId"] for u in shown["present"]} == {FAN_50, FAN_30, STRANGER}
            assert shown["decisions"][0]["winner"] == "A"

            locked = await c.post(f"/vstudio/sessions/{sid}/lock", headers=live.headers(ARTIST))
            assert locked.json()["status"] == "locked"
            await fan50.frame_of("session_locked", sessionId=sid)
            refused_decision = await c.post(
                f"/vstudio/sessions/{sid}/decisions",
                json={"question": "Another?", "options": ["A", "B"], "weighting": "equal"},
                headers=live.headers(ARTIST),
            )
            assert (refused_decision.status_code, refused_decision.json()["error"]["code"]) == (
                409,
                "SESSION_LOCKED",
            )


async def test_the_audit_recomputes_the_result_and_a_tampered_vote_fails_it(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=PATIENCE) as c:
        sid, _ = await _open(c, live)
        did = (
            await c.post(
                f"/vstudio/sessions/{sid}/decisions",
                json={"question": "Tempo?", "options": ["Slow", "Fast"]},
                headers=live.headers(ARTIST),
            )
        ).json()["decisionId"]
        for fan, choice in ((FAN_50, "Slow"), (FAN_30, "Fast"), (FAN_30, "Slow")):
            voted = await c.post(
                f"/vstudio/sessions/{sid}/vote",
                json={"decisionId": did, "choice": choice},
                headers=live.headers(fan),
            )
            assert voted.status_code == 200, voted.text
        audit_path = f"/vstudio/sessions/{sid}/decisions/{did}/audit"
        early = await c.get(audit_path, headers=live.headers(STRANGER))
        assert (early.status_code, early.json()["error"]["code"]) == (409, "DECISION_OPEN")
        await c.post(f"/vstudio/sessions/{sid}/decisions/{did}/close", headers=live.headers(ARTIST))

        def check(audit: dict[str, Any]) -> Any:
            return verify(
                audit["options"],
                audit["weights"],
                [CastVote(v["seq"], v["voter"], v["choice"], v["weight"]) for v in audit["votes"]],
                final_hash=audit["finalHash"],
                results=audit["results"],
                winner=audit["winner"],
            )

        audit = (await c.get(audit_path, headers=live.headers(STRANGER))).json()
        assert (audit["results"], audit["winner"]) == ({"Slow": 80, "Fast": 0}, "Slow")
        assert [v["choice"] for v in audit["votes"]] == ["Slow", "Fast", "Slow"]
        assert all(FAN_50 not in v["voter"] and FAN_30 not in v["voter"] for v in audit["votes"])
        assert check(audit).ok

        # Someone with the database rewrites the second vote: the chain no longer holds.
        conn = await asyncpg.connect(
            live.settings.database_url, database=live.settings.database_name("vstudio")
        )
        try:
            row = await conn.fetchrow(
                f"SELECT originator_version, state FROM {live.events_table} "
                "WHERE originator_id = $1 AND topic LIKE '%VoteCast' ORDER BY originator_version "
                "OFFSET 1 LIMIT 1",
                uuid.UUID(did),
            )
            forged = bytes(row["state"]).replace(b'"Fast"', b'"Slow"')
            assert forged != bytes(row["state"])
            await conn.execute(
                f"UPDATE {live.events_table} SET state = $3 WHERE originator_id = $1 "
                "AND originator_version = $2",
                uuid.UUID(did),
                row["originator_version"],
                forged,
            )
        finally:
            await conn.close()
        tampered = (await c.get(audit_path, headers=live.headers(STRANGER))).json()
        assert [v["choice"] for v in tampered["votes"]] == ["Slow", "Slow", "Slow"]
        verdict = check(tampered)
        assert not verdict.ok
        assert "the votes do not hash to the published final hash" in verdict.problems


def _wav(seconds: float = 0.05) -> bytes:
    import io
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x01" * int(8000 * seconds))
    return out.getvalue()


async def test_producers_bring_takes_and_fans_vote_between_them(live: Live) -> None:
    producer = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=live.url, timeout=PATIENCE) as c:
        sid, _ = await _open(c, live)
        take = _wav()

        async def contribute(who: str, title: str, content: bytes = take) -> httpx.Response:
            return await c.post(
                f"/vstudio/sessions/{sid}/contributions",
                data={"title": title, "note": "Warmer low end"},
                files={"file": ("take.wav", content, "audio/wav")},
                headers=live.headers(who),
            )

        uninvited = await contribute(producer, "Mix 1")
        assert (uninvited.status_code, uninvited.json()["error"]["code"]) == (
            403,
            "NOT_A_PRODUCER",
        )
        by_fan = await c.post(
            f"/vstudio/sessions/{sid}/producers",
            json={"accountId": producer},
            headers=live.headers(FAN_50),
        )
        assert by_fan.status_code == 403
        invited = await c.post(
            f"/vstudio/sessions/{sid}/producers",
            json={"accountId": producer},
            headers=live.headers(ARTIST),
        )
        assert invited.json() == [producer]

        async with live.member(sid, FAN_50) as fan:
            first = await contribute(producer, "Mix 1")
            assert first.status_code == 201, first.text
            announced = await fan.frame_of("contribution_added")
            assert (announced["title"], announced["producerId"]) == ("Mix 1", producer)
            text = await contribute(producer, "Lyrics", b"just some words, not audio")
            assert text.status_code == 415
            second = await contribute(ARTIST, "Mix 2")
            assert second.status_code == 201, second.text

            listened = await c.get(
                f"/vstudio/sessions/{sid}/contributions/{first.json()['id']}/file",
                headers=live.headers(FAN_50),
            )
            assert (listened.status_code, listened.content) == (200, take)

            opened = await c.post(
                f"/vstudio/sessions/{sid}/decisions",
                json={
                    "question": "Which mix?",
                    "contributionIds": [first.json()["id"], second.json()["id"]],
                },
                headers=live.headers(ARTIST),
            )
            assert opened.status_code == 201, opened.text
            decision = opened.json()
            assert decision["options"] == ["Mix 1", "Mix 2"]
            assert decision["sources"] == {
                "Mix 1": first.json()["id"],
                "Mix 2": second.json()["id"],
            }
            await fan.send(
                {"type": "vote", "decisionId": decision["decisionId"], "choice": "Mix 2"}
            )
            await fan.frame_of(
                "vote_update", decisionId=decision["decisionId"], results={"Mix 1": 0, "Mix 2": 50}
            )
        both = await c.post(
            f"/vstudio/sessions/{sid}/decisions",
            json={"question": "?", "options": ["A", "B"], "contributionIds": []},
            headers=live.headers(ARTIST),
        )
        assert both.status_code == 400
        shown = (await c.get(f"/vstudio/sessions/{sid}", headers=live.headers(FAN_30))).json()
        assert [t["title"] for t in shown["contributions"]] == ["Mix 1", "Mix 2"]
        assert shown["producers"] == [producer]
