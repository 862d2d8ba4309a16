"""Coda projects served for real: the nft app on PostgreSQL, payment's verdicts arriving on
the bus as payment publishes them. What artists, fans and admins see."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from audifi_events.payment import OrderPaid, Product
from audifi_kit.testing import eventually
from test_nft_http import ADMIN, ARTIST, Nft
from test_nft_http import nft as nft  # the served app, as a fixture of this module

FANS = [str(uuid.uuid4()) for _ in range(3)]


def _terms(**overrides: Any) -> dict[str, Any]:
    return {
        "title": "Second Album",
        "description": "Ten songs, recorded live.",
        "fundingGoal": 10_000,
        "currency": "usd",
        "fundingDeadline": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        "revenueShareBps": 2_000,
        "milestones": [
            {"name": "Recording", "payoutAmount": 4_000},
            {"name": "Mixing and mastering", "payoutAmount": 6_000},
        ],
        **overrides,
    }


async def _create(c: httpx.AsyncClient, nft: Nft, **overrides: Any) -> dict[str, Any]:
    created = await c.post(
        "/projects", json=_terms(**overrides), headers=nft.headers(ARTIST, "artist")
    )
    assert created.status_code == 201, created.text
    return created.json()


async def _pay(nft: Nft, investment: dict[str, Any]) -> None:
    """payment's word that the investment's order was paid."""
    await nft.publish(
        OrderPaid(
            order_id=investment["id"],
            product=Product(
                service="nft", kind="project_funding", reference=investment["projectId"]
            ),
            buyer_id=investment["userId"],
            seller_id=ARTIST,
            quantity=1,
            amount_cents=investment["amount"],
            currency="USD",
            payment_intent_id=f"pi_{investment['id'][:8]}",
            paid_at=datetime.now(UTC),
            ledger_transaction_id=None,
        )
    )


async def _fund(c: httpx.AsyncClient, nft: Nft, project: dict, fan: str, amount: int) -> dict:
    funded = await c.post(
        f"/projects/{project['id']}/fund", json={"amount": amount}, headers=nft.headers(fan)
    )
    assert funded.status_code == 201, funded.text
    return funded.json()


async def test_a_project_is_funded_built_milestone_by_milestone_released_and_pays_its_funders(
    nft: Nft,
) -> None:
    admin, artist = nft.headers(ADMIN, "admin"), nft.headers(ARTIST, "artist")
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        project = await _create(c, nft)
        assert (project["status"], project["amountLeft"], project["onchainReference"]) == (
            "funding",
            10_000,
            None,
        )
        pid = project["id"]

        # The catalogue is public: a visitor without a token browses it.
        async def listed() -> list[dict] | None:
            page = (await c.get("/projects", params={"status": "funding"})).json()
            return [p for p in page["items"] if p["id"] == pid] or None

        assert (await eventually(listed))[0]["fundingGoal"] == 10_000
        by_artist = (await c.get("/projects", params={"artistId": ARTIST})).json()["items"]
        assert [p["id"] for p in by_artist] == [pid]
        nobody = (await c.get("/projects", params={"artistId": str(uuid.uuid4())})).json()
        assert nobody["items"] == []

        first = await _fund(c, nft, project, FANS[0], 3_000)
        assert (first["status"], first["checkout"]["body"]) == ("pending", {"orderId": first["id"]})
        too_much = await c.post(
            f"/projects/{pid}/fund", json={"amount": 8_000}, headers=nft.headers(FANS[1])
        )
        assert too_much.status_code == 409
        assert too_much.json()["error"]["code"] == "FUNDING_EXCEEDS_GOAL"
        assert too_much.json()["error"]["details"]["left"] == 7_000
        second = await _fund(c, nft, project, FANS[1], 5_000)
        third = await _fund(c, nft, project, FANS[2], 2_000)
        for investment in (first, second, third):
            await _pay(nft, investment)

        async def started() -> dict | None:
            shown = (await c.get(f"/projects/{pid}")).json()
            return shown if shown["status"] == "in_progress" else None

        shown = await eventually(started)
        assert (shown["amountRaised"], shown["escrowed"], shown["funders"]) == (10_000, 10_000, 3)

        async def mine() -> list[dict] | None:
            items = (await c.get("/user/investments", headers=nft.headers(FANS[0]))).json()
            return items["items"] or None

        assert [(i["id"], i["status"]) for i in await eventually(mine)] == [(first["id"], "paid")]
        other = await c.get(f"/investments/{first['id']}", headers=nft.headers(FANS[1]))
        assert other.status_code == 404  # another fan's investment is not theirs to see

        recording, mixing = (m["id"] for m in shown["milestones"])
        locked = await c.post(f"/milestones/{mixing}/approve", headers=admin)
        assert (locked.status_code, locked.json()["error"]["code"]) == (
            409,
            "MILESTONE_STATE_CONFLICT",
        )
        proof = {"proofUrl": "https://files.example/recording.zip"}
        by_fan = await c.post(
            f"/milestones/{recording}/submit-proof", json=proof, headers=nft.headers(FANS[0])
        )
        assert by_fan.status_code == 403
        sent = await c.post(f"/milestones/{recording}/submit-proof", json=proof, headers=artist)
        assert sent.json()["status"] == "pending_approval", sent.text
        rejected = await c.post(
            f"/milestones/{recording}/reject", json={"reason": "Only half the songs"}, headers=admin
        )
        assert rejected.json()["status"] == "locked"
        assert rejected.json()["rejections"][0]["reason"] == "Only half the songs"
        proof = {"proofUrl": "https://files.example/recording-all.zip"}
        await c.post(f"/milestones/{recording}/submit-proof", json=proof, headers=artist)
        approved = await c.post(f"/milestones/{recording}/approve", headers=admin)
        assert (approved.json()["status"], approved.json()["proofSubmission"]) == (
            "unlocked",
            proof["proofUrl"],
        )
        early = await c.post(f"/projects/{pid}/finalize", headers=artist)
        assert (early.status_code, early.json()["error"]["code"]) == (409, "PROJECT_STATE_CONFLICT")
        await c.post(f"/milestones/{mixing}/submit-proof", json=proof, headers=artist)
        await c.post(f"/milestones/{mixing}/approve", headers=admin)
        released = await c.post(f"/projects/{pid}/finalize", headers=artist)
        assert released.status_code == 200, released.text
        assert (released.json()["status"], released.json()["released"]) == ("released", 10_000)

        booked = await c.post(
            f"/projects/{pid}/revenue",
            json={"reference": "2027-01", "amount": 50_000},
            headers=admin,
        )
        assert booked.status_code == 200, booked.text
        again = await c.post(
            f"/projects/{pid}/revenue",
            json={"reference": "2027-01", "amount": 50_000},
            headers=admin,
        )
        assert again.status_code == 200  # the same statement books nothing more
        # 20% of 50,000 shared pro rata: 3,000 of 10,000 invested is 3,000.
        claimed = await c.post(
            f"/investments/{first['id']}/claim-payout", headers=nft.headers(FANS[0])
        )
        assert claimed.json() == {
            "investmentId": first["id"],
            "amount": 3_000,
            "currency": "USD",
            "claimed": 3_000,
        }
        twice = await c.post(
            f"/investments/{first['id']}/claim-payout", headers=nft.headers(FANS[0])
        )
        assert (twice.status_code, twice.json()["error"]["code"]) == (409, "NOTHING_TO_CLAIM")
        view = (await c.get(f"/investments/{third['id']}", headers=nft.headers(FANS[2]))).json()
        assert (view["claimable"], view["claimed"]) == (2_000, 0)


async def test_a_project_short_of_its_goal_at_its_deadline_refunds_every_funder_in_full(
    nft: Nft,
) -> None:
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        deadline = datetime.now(UTC) + timedelta(seconds=2)
        project = await _create(c, nft, fundingDeadline=deadline.isoformat())
        paid = [await _fund(c, nft, project, fan, 1_500) for fan in FANS[:2]]
        for investment in paid:
            await _pay(nft, investment)

        async def cancelled() -> dict | None:  # the project clock ends it at its deadline
            shown = (await c.get(f"/projects/{project['id']}")).json()
            return shown if shown["status"] == "cancelled" else None

        shown = await eventually(cancelled, within=30)
        assert (shown["endedReason"], shown["refunded"], shown["escrowed"]) == (
            "deadline",
            3_000,
            0,
        )
        for fan, investment in zip(FANS, paid, strict=False):
            seen = (
                await c.get(f"/investments/{investment['id']}", headers=nft.headers(fan))
            ).json()
            assert (seen["status"], seen["refunded"]) == ("paid", 1_500)
        late = await c.post(
            f"/projects/{project['id']}/fund", json={"amount": 1_000}, headers=nft.headers(FANS[2])
        )
        assert (late.status_code, late.json()["error"]["code"]) == (409, "PROJECT_NOT_FUNDING")


async def test_bad_projects_and_callers_are_refused_and_change_nothing(nft: Nft) -> None:
    artist = nft.headers(ARTIST, "artist")
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        uneven = _terms(milestones=[{"name": "Recording", "payoutAmount": 4_000}])
        refused = await c.post("/projects", json=uneven, headers=artist)
        assert refused.status_code == 400
        assert refused.json()["error"]["details"]["fields"][0]["field"] == "milestones"
        by_fan = await c.post("/projects", json=_terms(), headers=nft.headers(FANS[0]))
        assert by_fan.status_code == 403
        past = await c.post(
            "/projects",
            json=_terms(fundingDeadline=(datetime.now(UTC) - timedelta(days=1)).isoformat()),
            headers=artist,
        )
        assert past.json()["error"]["details"]["fields"][0]["field"] == "fundingDeadline"
        missing = await c.get(f"/projects/{uuid.uuid4()}")
        assert (missing.status_code, missing.json()["error"]["code"]) == (404, "PROJECT_NOT_FOUND")
        unknown = await c.post(
            "/milestones/not-a-milestone/approve", headers=nft.headers(ADMIN, "admin")
        )
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (
            404,
            "MILESTONE_NOT_FOUND",
        )
        bogus = await c.get("/projects", params={"status": "bogus"})
        assert bogus.status_code == 400
        page = (await c.get("/projects")).json()
        assert page["items"] == []  # nothing refused was created
        project = await _create(c, nft)
        tiny = await c.post(
            f"/projects/{project['id']}/fund", json={"amount": 99}, headers=nft.headers(FANS[0])
        )
        assert tiny.json()["error"]["details"]["fields"][0]["field"] == "amount"
        shown = (await c.get(f"/projects/{project['id']}")).json()
        assert (shown["amountLeft"], shown["minimumInvestment"]) == (10_000, 100)


PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + bytes(200)


async def test_a_proof_file_is_uploaded_submitted_and_read_by_the_artist_funders_and_admins(
    nft: Nft,
) -> None:
    admin, artist = nft.headers(ADMIN, "admin"), nft.headers(ARTIST, "artist")
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        project = await _create(c, nft)
        other = await _create(c, nft, title="Another")
        for fan, amount in ((FANS[0], 4_000), (FANS[1], 6_000)):
            await _pay(nft, await _fund(c, nft, project, fan, amount))

        async def started() -> dict | None:
            shown = (await c.get(f"/projects/{project['id']}")).json()
            return shown if shown["status"] == "in_progress" else None

        first = (await eventually(started))["milestones"][0]["id"]
        files = {"file": ("report.pdf", PDF, "application/pdf")}
        by_fan = await c.post(
            f"/milestones/{first}/proof-files", files=files, headers=nft.headers(FANS[0])
        )
        assert by_fan.status_code == 403
        wav_file = {"file": ("take.pdf", b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(60), "x/y")}
        not_a_proof = await c.post(
            f"/milestones/{first}/proof-files", files=wav_file, headers=artist
        )
        assert not_a_proof.status_code == 415  # a recording is no proof, whatever its name
        uploaded = await c.post(f"/milestones/{first}/proof-files", files=files, headers=artist)
        assert uploaded.status_code == 201, uploaded.text
        key = uploaded.json()["proofFile"]
        assert uploaded.json()["mime"] == "application/pdf"

        other_first = f"{other['id']}.1"
        elsewhere = await c.post(
            f"/milestones/{other_first}/submit-proof", json={"proofFile": key}, headers=artist
        )
        assert elsewhere.status_code == 400  # another project's file is not its proof
        assert elsewhere.json()["error"]["details"]["fields"][0]["field"] == "proofFile"
        both = {"proofFile": key, "proofUrl": "https://files.example/x"}
        refused = await c.post(f"/milestones/{first}/submit-proof", json=both, headers=artist)
        assert refused.status_code == 400
        sent = await c.post(
            f"/milestones/{first}/submit-proof",
            json={"proofFile": key, "note": "The session report"},
            headers=artist,
        )
        assert sent.status_code == 200, sent.text
        shown = sent.json()
        assert shown["proofSubmission"] == f"/api/v1/milestones/{first}/proof-file"
        assert shown["proofNote"] == "The session report"

        for reader in (admin, artist, nft.headers(FANS[1])):
            got = await c.get(f"/milestones/{first}/proof-file", headers=reader)
            assert (got.status_code, got.content) == (200, PDF)
            assert got.headers["content-type"] == "application/pdf"
        stranger = await c.get(f"/milestones/{first}/proof-file", headers=nft.headers(FANS[2]))
        assert stranger.status_code == 404
