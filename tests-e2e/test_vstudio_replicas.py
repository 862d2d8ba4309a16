"""V Studio with two replicas behind the gateway (distributed: Redis rooms, one event store):
sockets on both see one tally, and when one replica is killed mid-vote its clients reconnect
through the gateway to the other and no acknowledged vote is lost."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import websockets
from audifi_auth.adapters.signing_keys import SigningKeys
from e2e_masters import _register_and_open
from platform_processes import Platform, token

PLATFORM_REPLICAS = {"vstudio": 2}
PLATFORM_ENV = {"AUDIFI_STORE_SOLE_WRITER": "n"}  # as replicas run: no writer decides alone
ARTIST = str(uuid.uuid4())
FANS = [str(uuid.uuid4()) for _ in range(8)]


@pytest.fixture(scope="module")
def as_(signing_keys: SigningKeys):
    def headers(user: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(signing_keys, sub=user, roles=list(roles))}"}

    return headers


class Fan:
    def __init__(self, account: str, url: str, headers: dict[str, str]) -> None:
        self.account, self.url, self.headers = account, url, headers
        self.ws: websockets.ClientConnection | None = None
        self.acked: str | None = None  # the last choice the service acknowledged
        self.reconnects = 0

    async def connect(self) -> None:
        self.ws = await websockets.connect(self.url, additional_headers=self.headers)
        await self.next_of("presence")

    async def next_of(self, kind: str, **fields: object) -> dict:
        assert self.ws is not None
        async with asyncio.timeout(30):
            while True:
                frame = json.loads(await self.ws.recv())
                if frame["type"] == kind and all(frame.get(k) == v for k, v in fields.items()):
                    return frame

    async def vote(self, decision: str, choice: str) -> None:
        """Until the service acknowledges it: a socket that dies on the way is opened again
        (through the gateway, on a live replica) and the vote sent again."""
        for _ in range(5):
            try:
                assert self.ws is not None
                await self.ws.send(
                    json.dumps({"type": "vote", "decisionId": decision, "choice": choice})
                )
                ack = await self.next_of("vote_ack", decisionId=decision)
                assert ack["choice"] == choice
                self.acked = choice
                return
            except (websockets.ConnectionClosed, OSError, TimeoutError):
                await asyncio.sleep(0.2)  # the gateway notices the dead replica on connect
                self.reconnects += 1
                await self.connect()
        raise AssertionError(f"{self.account}'s vote was never acknowledged")


def test_two_replicas_share_one_tally_and_a_killed_one_loses_no_acknowledged_vote(
    platform: Platform, as_
) -> None:
    gw = platform.gateway
    artist = as_(ARTIST, "artist")
    master, _ = _register_and_open(platform, artist, "US-AUD-26-00055")
    session = httpx.post(
        f"{gw}/vstudio/sessions",
        json={"masterId": master["id"], "title": "Two rooms"},
        headers=artist,
    )
    assert session.status_code == 201, session.text
    sid = session.json()["id"]
    url = f"{gw.replace('http://', 'ws://')}/vstudio/sessions/{sid}/ws"

    async def story() -> tuple[dict, dict[str, str]]:
        fans = [Fan(a, url, as_(a, "fan")) for a in FANS]
        for fan in fans:  # the gateway deals them out over both replicas in turn
            await fan.connect()
        async with httpx.AsyncClient(timeout=30) as c:
            opened = await c.post(
                f"{gw}/vstudio/sessions/{sid}/decisions",
                json={"question": "Tempo?", "options": ["A", "B"], "weighting": "equal"},
                headers=artist,
            )
            assert opened.status_code == 201, opened.text
            did = opened.json()["decisionId"]
            await asyncio.gather(*(f.next_of("decision_opened", decisionId=did) for f in fans))

            await asyncio.gather(*(f.vote(did, "A" if i % 2 else "B") for i, f in enumerate(fans)))
            # Votes taken on either replica reach every socket on both, as one tally.
            await asyncio.gather(
                *(f.next_of("vote_update", decisionId=did, results={"A": 4, "B": 4}) for f in fans)
            )

            # Mid-vote, one replica dies: everyone changes their vote meanwhile, and again once
            # it is gone (its clients, dealt every other socket, must reconnect to vote).
            loop = asyncio.get_running_loop()
            killing = loop.run_in_executor(None, platform.kill, "vstudio-2")
            await asyncio.gather(*(f.vote(did, "B" if i % 2 else "A") for i, f in enumerate(fans)))
            await killing
            await asyncio.gather(*(f.vote(did, "A" if i % 2 else "B") for i, f in enumerate(fans)))
            assert sum(f.reconnects for f in fans) >= len(fans) // 2

            closed = await c.post(
                f"{gw}/vstudio/sessions/{sid}/decisions/{did}/close", headers=artist
            )
            assert closed.status_code == 200, closed.text
            for fan in fans:
                if fan.ws is not None:
                    await fan.ws.close()
            return closed.json(), {f.account: f.acked for f in fans if f.acked}

    decision, acked = asyncio.run(story())
    expected = {"A": 0, "B": 0}
    for choice in acked.values():
        expected[choice] += 1
    assert len(acked) == len(FANS)
    assert decision["results"] == expected == {"A": 4, "B": 4}
    assert decision["votes"] == 3 * len(FANS)  # every vote once: none lost, none twice
