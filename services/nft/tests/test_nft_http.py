"""Masters and IPOs served for real: the nft app on PostgreSQL, tokens verified against a real
JWKS, media uploaded as multipart and kept on disk. What a client sees."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import struct
import uuid
import wave
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from audifi_events import IntegrationEvent, encode
from audifi_events.auth import WalletLinked
from audifi_events.payment import OrderPaid, Product
from audifi_kit.bus.base import Message
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.chain.platform import PlatformChain
from audifi_kit.settings import Settings
from audifi_kit.testing import TokenSigner, drop_databases, eventually, served
from audifi_nft.adapters.storage_local import LocalStorage
from audifi_nft.app import create_app
from audifi_nft.domain.media import cid_v1_raw
from eth_account import Account
from litestar import Litestar, get

ADMIN, ARTIST, FAN = (str(uuid.uuid4()) for _ in range(3))
RECEIVER = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


class Clock:
    """The lockers' time (unlock dates): the wall clock, moved on by a test."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by


@dataclass
class Nft:
    url: str
    signer: TokenSigner
    media: Path
    chain: PlatformChain
    bus: InProcessBus
    clock: Clock
    published: int = 0

    async def publish(self, event: IntegrationEvent) -> None:
        """An integration event of another service on the bus, as its relay publishes it."""
        self.published += 1
        kind = type(event)
        await self.bus.publish(
            [
                Message(
                    message_id=f"test-{self.published}",
                    routing_key=kind.routing_key,
                    body=encode(event),
                    schema_version=kind.schema_version,
                )
            ]
        )

    def headers(self, sub: str, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.signer.token(sub, roles=roles or ('fan',))}"}


@pytest.fixture
async def nft(
    postgres_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Nft]:
    """The nft app; `@pytest.mark.parametrize("nft", [max_bytes], indirect=True)` gives its
    media storage a smaller upload limit than the default 200 MiB."""
    signer = TokenSigner()

    @get("/.well-known/jwks.json", sync_to_thread=False)
    def jwks() -> dict[str, Any]:
        return signer.jwks()

    prefix = f"audifi_n{uuid.uuid4().hex[:8]}_"
    limit = getattr(request, "param", None)
    media = tmp_path / "nft-media"  # the default: under the settings' var_dir
    storage = LocalStorage(media, max_bytes=limit) if limit is not None else None
    async with served(Litestar([jwks])) as auth:
        settings = Settings(
            database_url=postgres_url,
            db_prefix=prefix,
            var_dir=tmp_path,
            poll_interval=0.2,
            jwks_url=f"{auth}/.well-known/jwks.json",
            pool_size=3,
            extra={"NFT_CLOCK_SECONDS": "0.2"},
        )
        chain = PlatformChain(settings)  # the embedded EVM, the platform's contracts deployed
        await chain.start()
        bus = InProcessBus()
        clock = Clock()
        app = create_app(settings, bus, chain=chain, storage=storage, clock=clock)
        try:
            async with served(app) as url:
                yield Nft(url, signer, media, chain, bus, clock)
        finally:
            await chain.close()
            await drop_databases(postgres_url, prefix)


def wav(seconds: float = 0.05) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x01" * int(8000 * seconds))
    return out.getvalue()


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x80\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def form(isrc: str = "US-AUD-26-00001", **fields: str) -> dict[str, str]:
    return {"title": "First Light", "isrc": isrc, **fields}


def files(audio: bytes | None = None, cover: bytes | None = None) -> dict[str, Any]:
    return {
        "audio": ("first-light.wav", wav() if audio is None else audio, "audio/wav"),
        "cover": ("cover.png", png() if cover is None else cover, "image/png"),
    }


def terms(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "cap": 100,
        "priceCents": 500,
        "currency": "usd",
        "opensAt": (now - timedelta(minutes=1)).isoformat(),
        "closesAt": (now + timedelta(days=7)).isoformat(),
        "perAccountMax": 10,
        "royaltyReceiver": RECEIVER,
        "royaltyBps": 500,
    }
    base.update(overrides)
    return base


def _media(content: bytes, mime: str) -> dict[str, Any]:
    digest = hashlib.sha256(content).digest()
    return {"mime": mime, "size": len(content), "sha256": digest.hex(), "cid": cid_v1_raw(digest)}


async def _register(c: httpx.AsyncClient, nft: Nft, isrc: str = "US-AUD-26-00001") -> dict:
    answer = await c.post(
        "/masters", data=form(isrc), files=files(), headers=nft.headers(ARTIST, "artist")
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


async def test_an_artist_registers_a_master_and_reads_it_back(nft: Nft) -> None:
    audio, cover = wav(), png()
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        answer = await c.post(
            "/masters",
            data=form(metadata='{"genre": "ambient"}'),
            files=files(audio, cover),
            headers=nft.headers(ARTIST, "artist"),
        )
        assert answer.status_code == 201, answer.text
        master = answer.json()
        assert master["artistId"] == ARTIST
        assert (master["title"], master["isrc"]) == ("First Light", "USAUD2600001")
        assert master["chainId"] == str(uuid.UUID(master["id"]).int)
        assert master["audio"] == _media(audio, "audio/wav")
        assert master["cover"] == _media(cover, "image/png")
        assert master["ipfsHash"] == master["audio"]["cid"]
        assert master["metadata"] == {"genre": "ambient"}
        assert datetime.fromisoformat(master["registeredAt"]) <= datetime.now(UTC)

        again = await c.get(f"/masters/{master['id']}", headers=nft.headers(FAN))
        assert again.status_code == 200, again.text
        assert again.json() == master
    kept = sorted(p.read_bytes() for p in nft.media.joinpath("masters").iterdir())
    assert kept == sorted([audio, cover])


async def test_an_admin_registers_for_an_artist_and_only_an_admin_may(nft: Nft) -> None:
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        admin = await c.post(
            "/masters",
            data=form(artistId=ARTIST),
            files=files(),
            headers=nft.headers(ADMIN, "admin"),
        )
        assert admin.status_code == 201, admin.text
        assert admin.json()["artistId"] == ARTIST
        other = await c.post(
            "/masters",
            data=form("US-AUD-26-00002", artistId=ADMIN),
            files=files(),
            headers=nft.headers(ARTIST, "artist"),
        )
        assert (other.status_code, other.json()["error"]["code"]) == (403, "FORBIDDEN")


async def test_a_fan_may_not_register_a_master(nft: Nft) -> None:
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        answer = await c.post("/masters", data=form(), files=files(), headers=nft.headers(FAN))
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "FORBIDDEN")
    assert not nft.media.joinpath("masters").exists()


async def test_a_text_file_as_audio_is_415_and_nothing_is_registered(nft: Nft) -> None:
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        answer = await c.post(
            "/masters",
            data=form(),
            files=files(audio=b"just some lyrics, not a recording\n" * 4),
            headers=nft.headers(ARTIST, "artist"),
        )
        assert answer.status_code == 415, answer.text
        assert answer.json()["error"]["details"]["expected"] == "audio/*"
        # The ISRC is still free: nothing was registered.
        await _register(c, nft)


async def test_the_same_isrc_twice_is_409(nft: Nft) -> None:
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        first = await _register(c, nft, "US-AUD-26-00007")
        second = await c.post(
            "/masters",
            data=form("usaud2600007"),
            files=files(),
            headers=nft.headers(ARTIST, "artist"),
        )
    assert second.status_code == 409, second.text
    error = second.json()["error"]
    assert error["code"] == "ISRC_TAKEN"
    assert error["details"] == {"isrc": "USAUD2600007", "masterId": first["id"]}


async def test_bad_form_fields_are_400_naming_them(nft: Nft) -> None:
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        for fields, field in (
            (form("not-an-isrc"), "isrc"),
            (form(metadata="[1, 2]"), "metadata"),
            (form(metadata="{broken"), "metadata"),
            ({**form(), "title": "two\nlines"}, "title"),
            ({**form(), "title": "nul\x00"}, "title"),
            (form(metadata='{"a":' * 3000 + "1" + "}" * 3000), "metadata"),  # too big
            (form(metadata='{"a":' * 2000 + "1" + "}" * 2000), "metadata"),  # too deep
        ):
            answer = await c.post(
                "/masters", data=fields, files=files(), headers=nft.headers(ARTIST, "artist")
            )
            assert answer.status_code == 400, (fields, answer.text)
            assert answer.json()["error"]["details"]["fields"][0]["field"] == field


async def test_an_unknown_master_is_404(nft: Nft) -> None:
    unknown = uuid.uuid4()
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        for path in (f"/masters/{unknown}", f"/masters/{unknown}/ipo"):
            answer = await c.get(path, headers=nft.headers(FAN))
            assert answer.status_code == 404, answer.text
            error = answer.json()["error"]
            assert error["code"] == "MASTER_NOT_FOUND"
            assert error["details"]["masterId"] == str(unknown)


async def test_the_artist_configures_an_ipo_open_at_once_when_it_opened_already(nft: Nft) -> None:
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        master = await _register(c, nft)
        none = await c.get(f"/masters/{master['id']}/ipo", headers=nft.headers(FAN))
        assert (none.status_code, none.json()["error"]["code"]) == (404, "IPO_NOT_FOUND")

        offered = terms()
        answer = await c.post(
            f"/masters/{master['id']}/ipo", json=offered, headers=nft.headers(ARTIST, "artist")
        )
        assert answer.status_code == 201, answer.text
        ipo = answer.json()
        assert ipo["masterId"] == master["id"] and ipo["status"] == "open"
        assert (ipo["cap"], ipo["priceCents"], ipo["currency"]) == (100, 500, "USD")
        assert (ipo["perAccountMax"], ipo["royaltyBps"]) == (10, 500)
        assert ipo["royaltyReceiver"] == RECEIVER
        assert (ipo["allocated"], ipo["available"]) == (0, 100)
        # Opened on MasterShares too: the contract's cap is the second guard.
        reader = await nft.chain.adapter("nft")
        shares = await nft.chain.contract("nft", "MasterShares")
        token = int(master["chainId"])
        assert await reader.call(shares, "ipoOpened", token) is True
        assert await reader.call(shares, "capOf", token) == 100
        for key in ("opensAt", "closesAt"):
            assert datetime.fromisoformat(ipo[key]) == datetime.fromisoformat(offered[key])

        shown = await c.get(f"/masters/{master['id']}/ipo", headers=nft.headers(FAN))
        assert shown.status_code == 200 and shown.json() == ipo

        twice = await c.post(
            f"/masters/{master['id']}/ipo", json=terms(), headers=nft.headers(ARTIST, "artist")
        )
        assert (twice.status_code, twice.json()["error"]["code"]) == (409, "IPO_EXISTS")


async def test_an_ipo_opening_later_stays_configured(nft: Nft) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        master = await _register(c, nft)
        answer = await c.post(
            f"/masters/{master['id']}/ipo",
            json=terms(opensAt=later.isoformat(), closesAt=(later + timedelta(days=7)).isoformat()),
            headers=nft.headers(ARTIST, "artist"),
        )
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "configured"
    reader = await nft.chain.adapter("nft")
    shares = await nft.chain.contract("nft", "MasterShares")
    assert (
        await reader.call(shares, "ipoOpened", int(answer.json()["masterId"].replace("-", ""), 16))
        is False
    )


async def test_only_the_masters_artist_configures_its_ipo_with_valid_terms(nft: Nft) -> None:
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        master = await _register(c, nft)
        url = f"/masters/{master['id']}/ipo"
        fan = await c.post(url, json=terms(), headers=nft.headers(FAN))
        assert (fan.status_code, fan.json()["error"]["code"]) == (403, "FORBIDDEN")
        other = await c.post(url, json=terms(), headers=nft.headers(ADMIN, "artist"))
        assert other.status_code == 403

        artist = nft.headers(ARTIST, "artist")
        for overrides, field in (
            ({"cap": 0}, "cap"),
            ({"priceCents": -5}, "priceCents"),
            ({"priceCents": 9.99}, "priceCents"),
            ({"perAccountMax": 101}, "perAccountMax"),
            ({"royaltyReceiver": "0x123"}, "royaltyReceiver"),
            ({"royaltyBps": 1001}, "royaltyBps"),
            ({"opensAt": "2026-12-01T12:00:00"}, "opensAt"),
            ({"closesAt": terms()["opensAt"], "opensAt": terms()["closesAt"]}, "closesAt"),
        ):
            bad = await c.post(url, json=terms(**overrides), headers=artist)
            assert bad.status_code == 400, (overrides, bad.text)
            assert bad.json()["error"]["details"]["fields"][0]["field"] == field, overrides
        none = await c.get(url, headers=artist)
        assert none.status_code == 404  # nothing was configured


@pytest.mark.parametrize("nft", [64 * 1024], indirect=True)
async def test_audio_past_the_upload_limit_is_413(nft: Nft) -> None:
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        answer = await c.post(
            "/masters",
            data=form(),
            files=files(audio=wav(seconds=5)),  # 80 KB
            headers=nft.headers(ARTIST, "artist"),
        )
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["details"]["maxBytes"] == 64 * 1024
        await _register(c, nft)  # the ISRC is still free


async def test_the_upload_route_announces_room_for_two_files_and_refuses_more_unread(
    nft: Nft,
) -> None:
    limit = 2 * 200 * 1024 * 1024 + 1024 * 1024
    host, port = nft.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            (
                "POST /masters HTTP/1.1\r\n"
                f"Host: {host}\r\n"
                "Content-Type: multipart/form-data; boundary=x\r\n"
                f"Content-Length: {limit + 1}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        head, _, body = (await reader.read()).partition(b"\r\n\r\n")
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 413"), head
    assert json.loads(body)["error"]["details"]["maxBytes"] == limit


async def _open_ipo(c: httpx.AsyncClient, nft: Nft, **overrides: Any) -> dict:
    master = await _register(c, nft)
    answer = await c.post(
        f"/masters/{master['id']}/ipo",
        json=terms(**overrides),
        headers=nft.headers(ARTIST, "artist"),
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


async def test_buyers_reserve_shares_by_card_and_the_last_ones_are_never_oversold(nft: Nft) -> None:
    buyers = [str(uuid.uuid4()) for _ in range(12)]
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        ipo = await _open_ipo(c, nft, cap=10, perAccountMax=2)
        answers = await asyncio.gather(
            *(
                c.post(
                    f"/ipos/{ipo['id']}/purchase",
                    json={"quantity": 1},
                    headers=nft.headers(buyer),
                )
                for buyer in buyers
            )
        )
        won = [a.json() for a in answers if a.status_code == 201]
        refused = [a.json()["error"]["code"] for a in answers if a.status_code != 201]
        assert len(won) == 10 and refused == ["IPO_SOLD_OUT", "IPO_SOLD_OUT"]
        first = won[0]
        assert (first["quantity"], first["amountCents"], first["currency"]) == (1, 500, "USD")
        assert first["status"] == "pending" and first["method"] == "card"
        assert first["checkout"]["body"] == {"orderId": first["id"]}
        shown = await c.get(f"/masters/{ipo['masterId']}/ipo", headers=nft.headers(FAN))
        assert (shown.json()["available"], shown.json()["allocated"]) == (0, 0)

        mine = await c.get(
            f"/ipos/{ipo['id']}/purchases/{first['id']}", headers=nft.headers(first["buyerId"])
        )
        assert mine.status_code == 200 and mine.json() == first
        theirs = await c.get(f"/ipos/{ipo['id']}/purchases/{first['id']}", headers=nft.headers(FAN))
        assert (theirs.status_code, theirs.json()["error"]["code"]) == (
            404,
            "RESERVATION_NOT_FOUND",
        )


async def test_a_purchase_over_the_maximum_or_of_an_unknown_ipo_is_refused(nft: Nft) -> None:
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        ipo = await _open_ipo(c, nft, perAccountMax=3)
        url = f"/ipos/{ipo['id']}/purchase"
        over = await c.post(url, json={"quantity": 4}, headers=nft.headers(FAN))
        assert over.status_code == 400
        assert over.json()["error"]["details"]["fields"][0]["field"] == "quantity"
        zero = await c.post(url, json={"quantity": 0}, headers=nft.headers(FAN))
        assert zero.status_code == 400
        ok = await c.post(url, json={"quantity": 3}, headers=nft.headers(FAN))
        assert ok.status_code == 201, ok.text
        more = await c.post(url, json={"quantity": 1}, headers=nft.headers(FAN))
        assert (more.status_code, more.json()["error"]["code"]) == (409, "ACCOUNT_LIMIT_REACHED")
        unknown = await c.post(
            f"/ipos/{uuid.uuid4()}/purchase", json={"quantity": 1}, headers=nft.headers(FAN)
        )
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "IPO_NOT_FOUND")
        later = await c.post(
            f"/ipos/{ipo['id']}/purchase",
            json={"quantity": 1, "method": "cash"},
            headers=nft.headers(ADMIN),
        )
        assert later.status_code == 400


async def test_a_retried_purchase_with_its_idempotency_key_is_the_same_purchase(nft: Nft) -> None:
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        ipo = await _open_ipo(c, nft)
        headers = {**nft.headers(FAN), "Idempotency-Key": str(uuid.uuid4())}
        first = await c.post(f"/ipos/{ipo['id']}/purchase", json={"quantity": 2}, headers=headers)
        again = await c.post(f"/ipos/{ipo['id']}/purchase", json={"quantity": 2}, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.json()["id"] == first.json()["id"]
        shown = await c.get(f"/masters/{ipo['masterId']}/ipo", headers=nft.headers(FAN))
        assert shown.json()["available"] == 98


async def test_the_ipo_clock_opens_an_ipo_when_its_time_comes_and_closes_it_at_its_end(
    nft: Nft,
) -> None:
    start = datetime.now(UTC) + timedelta(seconds=1)
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        master = await _register(c, nft)
        answer = await c.post(
            f"/masters/{master['id']}/ipo",
            json=terms(
                opensAt=start.isoformat(), closesAt=(start + timedelta(seconds=2)).isoformat()
            ),
            headers=nft.headers(ARTIST, "artist"),
        )
        assert answer.status_code == 201 and answer.json()["status"] == "configured"

        async def status() -> str:
            shown = await c.get(f"/masters/{master['id']}/ipo", headers=nft.headers(FAN))
            return shown.json()["status"]

        async def is_(wanted: str) -> bool:
            return await status() == wanted

        await eventually(lambda: is_("open"), within=20, what="the IPO opened by the clock")
        reader = await nft.chain.adapter("nft")
        shares = await nft.chain.contract("nft", "MasterShares")
        assert await reader.call(shares, "ipoOpened", int(master["chainId"])) is True
        await eventually(lambda: is_("closed"), within=20, what="the IPO closed at its end")


async def test_paid_shares_are_minted_on_chain_to_the_wallet_or_held_in_custody(nft: Nft) -> None:
    """Two fans pay (payment's verdict on the bus): the one who linked a wallet gets the
    shares there, the other in the platform's custody; the chain's counts match, and the
    artist sees every allocation minted."""
    walleted, walletless = str(uuid.uuid4()), str(uuid.uuid4())
    wallet = Account.create().address
    await nft.publish(
        WalletLinked(
            account_id=walleted,
            wallet_address=wallet.lower(),
            chain="evm",
            linked_at=datetime.now(UTC),
        )
    )
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        ipo = await _open_ipo(c, nft)
        purchases = {}
        for fan, quantity in ((walleted, 3), (walletless, 2)):
            bought = await c.post(
                f"/ipos/{ipo['id']}/purchase", json={"quantity": quantity}, headers=nft.headers(fan)
            )
            assert bought.status_code == 201, bought.text
            purchases[fan] = bought.json()
        for fan, purchase in purchases.items():
            await nft.publish(
                OrderPaid(
                    order_id=purchase["id"],
                    product=Product(service="nft", kind="ipo_shares", reference=ipo["id"]),
                    buyer_id=fan,
                    seller_id=ARTIST,
                    quantity=purchase["quantity"],
                    amount_cents=purchase["amountCents"],
                    currency="USD",
                    payment_intent_id=f"pi_{purchase['id'][:8]}",
                    paid_at=datetime.now(UTC),
                    ledger_transaction_id=None,
                )
            )
        artist = nft.headers(ARTIST, "artist")
        mints_url = f"/masters/{ipo['masterId']}/mints"

        async def all_minted() -> list[dict] | None:
            items = (await c.get(mints_url, headers=artist)).json()["items"]
            done = len(items) == 2 and all(i["status"] == "minted" for i in items)
            return items if done else None

        items = {i["accountId"]: i for i in await eventually(all_minted, within=30)}
        shares = await nft.chain.contract("nft", "MasterShares")
        adapter = await nft.chain.adapter("nft")
        token = int(ipo["masterId"].replace("-", ""), 16)
        assert (items[walleted]["to"], items[walleted]["custody"]) == (wallet, False)
        assert (items[walletless]["to"], items[walletless]["custody"]) == (adapter.address, True)
        assert await shares.functions.balanceOf(wallet, token).call() == 3
        assert await shares.functions.balanceOf(adapter.address, token).call() == 2
        assert await shares.functions.mintedOf(token).call() == 5
        for item in items.values():
            receipt = await adapter.receipt(item["txHash"])
            assert receipt is not None and receipt["status"] == 1

        async def holdings(fan: str) -> list[dict] | None:  # the indexer saw the mints
            items = (await c.get("/user/holdings", headers=nft.headers(fan))).json()["items"]
            return items or None

        async def holdings_where(fan: str, keep) -> list[dict] | None:  # type: ignore[no-untyped-def]
            items = (await c.get("/user/holdings", headers=nft.headers(fan))).json()["items"]
            return items if items and all(keep(i) for i in items) else None

        [mine] = await eventually(lambda: holdings(walleted), within=30)
        assert (mine["address"], mine["amount"], mine["custody"]) == (wallet, 3, False)
        [held] = await eventually(lambda: holdings(walletless), within=30)
        assert (held["amount"], held["custody"]) == (2, True)

        async def totals() -> dict | None:  # the custody part can show before its mint's log
            seen = (
                await c.get(f"/masters/{ipo['masterId']}/shares", headers=nft.headers(walleted))
            ).json()
            return seen if (seen["totalSupply"], seen["holders"]) == (5, 2) else None

        shareholders = await eventually(totals, within=30)
        assert shareholders["visibility"] == "own" and len(shareholders["items"]) == 1

        # The custody buyer links a wallet later and withdraws their shares to it.
        late_wallet = Account.create().address
        refused = await c.post(
            "/user/withdrawals",
            json={"masterId": ipo["masterId"], "quantity": 2},
            headers=nft.headers(walletless),
        )
        assert (refused.status_code, refused.json()["error"]["code"]) == (409, "NO_WALLET_LINKED")
        await nft.publish(
            WalletLinked(
                account_id=walletless,
                wallet_address=late_wallet,
                chain="evm",
                linked_at=datetime.now(UTC),
            )
        )

        async def withdraw() -> dict | None:  # once nft heard of the wallet
            answer = await c.post(
                "/user/withdrawals",
                json={"masterId": ipo["masterId"], "quantity": 2},
                headers=nft.headers(walletless),
            )
            return answer.json() if answer.status_code == 202 else None

        asked = await eventually(withdraw, within=30)
        assert (asked["to"], asked["status"]) == (late_wallet, "requested")
        too_much = await c.post(
            "/user/withdrawals",
            json={"masterId": ipo["masterId"], "quantity": 1},
            headers=nft.headers(walletless),
        )
        assert (too_much.status_code, too_much.json()["error"]["code"]) == (
            409,
            "NOTHING_TO_WITHDRAW",
        )
        [moved] = await eventually(
            lambda: holdings_where(walletless, lambda i: not i["custody"]), within=30
        )
        assert (moved["address"], moved["amount"]) == (late_wallet, 2)
        assert await shares.functions.balanceOf(late_wallet, token).call() == 2
        done = await c.get(f"/user/withdrawals/{asked['id']}", headers=nft.headers(walletless))
        assert done.json()["status"] == "minted" and done.json()["txHash"]
        theirs = await c.get(f"/user/withdrawals/{asked['id']}", headers=nft.headers(walleted))
        assert theirs.status_code == 404

        again = await c.post(f"/masters/{ipo['masterId']}/mint", headers=artist)
        assert again.status_code == 202 and again.json()["items"] == []  # nothing to re-drive
        fan_tries = await c.get(mints_url, headers=nft.headers(walleted))
        assert (fan_tries.status_code, fan_tries.json()["error"]["code"]) == (403, "FORBIDDEN")
        unknown = await c.post(f"/masters/{uuid.uuid4()}/mint", headers=artist)
        assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "MASTER_NOT_FOUND")


async def test_a_fan_pays_on_chain_in_the_payment_token_and_a_transaction_pays_once(
    nft: Nft,
) -> None:
    """The buyer reserves `method: chain`, sends the token amount it is told to the address
    it is told (a real ERC-20 transfer on the embedded chain), names the transaction: the
    shares are allocated and minted. The same transaction for another purchase is refused,
    so is a transfer of another amount."""
    from audifi_kit.chain.adapter import ChainAdapter

    treasury_minter = await nft.chain.adapter("payment")  # DevUSD's owner mints test money
    dev_usd = await nft.chain.contract("payment", "DevUSD")
    buyer = ChainAdapter(
        treasury_minter.w3,
        nft.chain.embedded.funded_account(9),  # type: ignore[union-attr]
        chain_id=treasury_minter.chain_id,
        embedded=nft.chain.embedded,
    )
    fan, other = str(uuid.uuid4()), str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        ipo = await _open_ipo(c, nft, priceCents=1250)
        bought = await c.post(
            f"/ipos/{ipo['id']}/purchase",
            json={"quantity": 2, "method": "chain"},
            headers=nft.headers(fan),
        )
        assert bought.status_code == 201, bought.text
        purchase = bought.json()
        pay_to = purchase["payTo"]
        assert purchase["checkout"] is None and pay_to["amount"] == "25000000"  # $25, 6 decimals
        assert pay_to["token"] == dev_usd.address
        await treasury_minter.transact(dev_usd, "mint", buyer.address, 100_000_000)

        token = buyer.contract(
            {"abi": dev_usd.abi, "bytecode": "0x"}, dev_usd.address
        )  # the buyer's own view of the token
        short = await buyer.transact(token, "transfer", pay_to["recipient"], 24_990_000)
        sent = await buyer.transact(token, "transfer", pay_to["recipient"], int(pay_to["amount"]))
        pay = f"/ipos/{ipo['id']}/purchases/{purchase['id']}/payment"

        wrong = await c.post(
            pay, json={"txHash": short["transactionHash"].to_0x_hex()}, headers=nft.headers(fan)
        )
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "PAYMENT_MISMATCH")
        malformed = await c.post(pay, json={"txHash": "0x1234"}, headers=nft.headers(fan))
        assert malformed.status_code == 400
        assert malformed.json()["error"]["details"]["fields"][0]["field"] == "txHash"

        tx_hash = sent["transactionHash"].to_0x_hex()
        paid = await c.post(pay, json={"txHash": tx_hash}, headers=nft.headers(fan))
        assert paid.status_code == 200, paid.text
        assert (paid.json()["status"], paid.json()["payment"]) == ("paid", tx_hash)
        again = await c.post(pay, json={"txHash": tx_hash}, headers=nft.headers(fan))
        assert again.status_code == 200 and again.json()["status"] == "paid"

        theirs = (
            await c.post(
                f"/ipos/{ipo['id']}/purchase",
                json={"quantity": 2, "method": "chain"},
                headers=nft.headers(other),
            )
        ).json()
        reused = await c.post(
            f"/ipos/{ipo['id']}/purchases/{theirs['id']}/payment",
            json={"txHash": tx_hash},
            headers=nft.headers(other),
        )
        assert (reused.status_code, reused.json()["error"]["code"]) == (409, "TX_HASH_USED")

        async def minted() -> dict | None:
            answer = await c.get(
                f"/ipos/{ipo['id']}/purchases/{purchase['id']}", headers=nft.headers(fan)
            )
            return answer.json() if answer.json()["mint"] == "minted" else None

        await eventually(minted, within=30)
        shares = await nft.chain.contract("nft", "MasterShares")
        token_id = int(ipo["masterId"].replace("-", ""), 16)
        assert await shares.functions.mintedOf(token_id).call() == 2


async def test_dividends_are_funded_on_chain_and_a_holder_claims_with_its_proof_once(
    nft: Nft,
) -> None:
    """Two wallets hold a master's shares (minted on chain, one moved wallet to wallet), the
    artist declares a month's revenue and triggers it: the Merkle root is funded on
    RevenueDistributor from the treasury; the fan fetches its proof and claims on chain, the
    claim shows in the distribution, a second claim is refused by the contract."""
    from audifi_kit.chain.adapter import ChainAdapter
    from audifi_kit.errors import BlockchainError

    fan = str(uuid.uuid4())
    nft_operator = await nft.chain.adapter("nft")
    holder = ChainAdapter(
        nft_operator.w3,
        nft.chain.embedded.funded_account(9),  # type: ignore[union-attr]
        chain_id=nft_operator.chain_id,
        embedded=nft.chain.embedded,
    )
    other = Account.create().address
    await nft.publish(
        WalletLinked(
            account_id=fan, wallet_address=holder.address, chain="evm", linked_at=datetime.now(UTC)
        )
    )
    async with httpx.AsyncClient(base_url=nft.url, timeout=30) as c:
        ipo = await _open_ipo(c, nft, cap=100)
        master_id = ipo["masterId"]
        token_id = int(master_id.replace("-", ""), 16)
        shares = await nft.chain.contract("nft", "MasterShares")
        await nft_operator.transact(shares, "mint", holder.address, token_id, 4)
        mine = holder.contract({"abi": shares.abi, "bytecode": "0x"}, shares.address)
        await holder.transact(mine, "safeTransferFrom", holder.address, other, token_id, 1, b"")

        async def indexed() -> dict | None:  # 3 with the fan, 1 moved wallet to wallet
            answer = (
                await c.get(f"/masters/{master_id}/shares", headers=nft.headers(ARTIST, "artist"))
            ).json()
            lines = {i["address"]: i["amount"] for i in answer["items"]}
            return answer if lines == {holder.address: 3, other: 1} else None

        await eventually(indexed, within=30)
        treasury_minter = await nft.chain.adapter("payment")
        dev_usd = await nft.chain.contract("payment", "DevUSD")
        await treasury_minter.transact(dev_usd, "mint", nft_operator.address, 10**12)

        artist = nft.headers(ARTIST, "artist")
        upload = {
            "month": "2026-11",
            "totalRevenue": 200_000,  # $2,000.00
            "sources": [
                {"name": "streaming", "amount": 150_000},
                {"name": "sync", "amount": 50_000},
            ],
            "distributionBps": 2_500,  # a quarter to the holders: $500.00
        }
        declared = await c.post(f"/masters/{master_id}/distributions", json=upload, headers=artist)
        assert declared.status_code == 201, declared.text
        assert declared.json()["distributionAmount"] == 50_000
        twice = await c.post(f"/masters/{master_id}/distributions", json=upload, headers=artist)
        assert (twice.status_code, twice.json()["error"]["code"]) == (409, "DISTRIBUTION_EXISTS")
        bad_month = await c.post(
            f"/masters/{master_id}/distributions", json=upload | {"month": "2026-1"}, headers=artist
        )
        assert bad_month.status_code == 400
        assert bad_month.json()["error"]["details"]["fields"][0]["field"] == "month"

        funded = await c.post(f"/masters/{master_id}/distributions/2026-11/trigger", headers=artist)
        assert funded.status_code == 200, funded.text
        d = funded.json()
        assert d["status"] == "funded" and d["holders"] == 2
        assert d["fundedBaseUnits"] == "500000000" and d["remainderBaseUnits"] == "0"
        assert d["perShareBaseUnits"] == "125000000"

        proof = await c.get(f"/distributions/{d['id']}/proof", headers=nft.headers(fan))
        assert proof.status_code == 200, proof.text
        leaf = proof.json()
        assert (leaf["account"], leaf["amount"], leaf["claimed"]) == (
            holder.address,
            "375000000",
            False,
        )
        nobody = await c.get(
            f"/distributions/{d['id']}/proof", headers=nft.headers(str(uuid.uuid4()))
        )
        assert (nobody.status_code, nobody.json()["error"]["code"]) == (404, "CLAIM_NOT_FOUND")

        distributor = await nft.chain.contract("nft", "RevenueDistributor")
        assert leaf["contract"] == distributor.address
        claimer = holder.contract({"abi": distributor.abi, "bytecode": "0x"}, distributor.address)
        before = await dev_usd.functions.balanceOf(holder.address).call()
        args = (
            leaf["chainDistributionId"],
            leaf["index"],
            leaf["account"],
            int(leaf["amount"]),
            leaf["proof"],
        )
        await holder.transact(claimer, "claim", *args)
        assert await dev_usd.functions.balanceOf(holder.address).call() == before + 375_000_000

        async def claimed() -> dict | None:
            shown = (await c.get(f"/distributions/{d['id']}", headers=nft.headers(fan))).json()
            return shown if shown["claimedCount"] == 1 else None

        shown = await eventually(claimed, within=30)
        assert shown["claimedBaseUnits"] == "375000000"
        with pytest.raises(BlockchainError) as again:
            await holder.transact(claimer, "claim", *args)
        assert again.value.details.get("error") == "AlreadyClaimed"
        assert (await c.get(f"/distributions/{d['id']}/proof", headers=nft.headers(fan))).json()[
            "claimed"
        ]

        # A year on, the unclaimed rest (the other holder's) goes back to the treasury, once.
        from audifi_nft.adapters.distributor_chain import ChainDistributor

        expiry = int(datetime.fromisoformat(d["expiresAt"]).timestamp())
        with nft.chain.embedded.lock:  # type: ignore[union-attr]
            nft.chain.embedded.tester.time_travel(expiry + 1)  # type: ignore[union-attr]
        treasury = await dev_usd.functions.balanceOf(nft_operator.address).call()
        distributor_port = ChainDistributor(nft.chain)
        swept = await distributor_port.sweep(leaf["chainDistributionId"])
        assert swept.amount == 125_000_000 and swept.tx_hash is not None
        assert (
            await dev_usd.functions.balanceOf(nft_operator.address).call() == treasury + 125_000_000
        )
        assert (await distributor_port.sweep(leaf["chainDistributionId"])).tx_hash is None
