"""What a subscriber reads when an item of an artist's Bucket locker unlocks.

Through the running service on both buses, the real database and the SMTP sink: nft tells
`nft.content.unlocked` once per item, naming every subscriber it opens to, and each reads
"New from {artist}: {title}" at their address. One event mails several accounts: a redelivery
mails none of them twice, a subscriber nobody can write to (wallet-only, never announced,
erased) costs the others nothing, and an item nobody subscribes to queues nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from audifi_events.auth import AccountErased, AccountRegistered
from audifi_events.nft import ContentUnlocked
from audifi_kit.testing import eventually
from audifi_notify.domain import Template, notification_id_for

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ARTIST = "Ann &\n<The Band>"  # as the artist typed it: one line in the mail
TITLE = "Night\r\n<Songs>"
SUBJECT = "New from Ann & <The Band>: Night <Songs>"


def _unlocked(subscribers: list[str], **overrides: Any) -> ContentUnlocked:
    facts: dict[str, Any] = {
        "content_id": str(uuid.uuid4()),
        "artist_id": str(uuid.uuid4()),
        "artist_name": ARTIST,
        "title": TITLE,
        "media_type": "video",
        "subscribers": subscribers,
        "unlocked_at": AT,
    }
    return ContentUnlocked(**(facts | overrides))


def _worker(notify, purpose: str) -> Any:
    runtime = notify.app.state["runtime"]
    [worker] = [w for w in runtime.workers if purpose in w.consumer.name]
    return worker


async def _registered(notify, name: str = "fan") -> tuple[str, str]:
    """An account whose address notify knows (its welcome mail arrived)."""
    account_id, email = await notify.register(name)
    await eventually(lambda: notify.mail(email), what="the welcome mail")
    return account_id, email


async def _mail(notify, email: str, subject: str) -> dict[str, Any]:
    """The mail as a mail client shows it: its lines end in SMTP's CRLF on the wire."""

    async def arrived() -> dict[str, Any] | None:
        found = [m for m in await notify.mail(email) if m["subject"] == subject]
        return found[0] if found else None

    mail = await eventually(arrived, what=f"{subject!r} to {email}")
    return mail | {part: mail[part].replace("\r\n", "\n") for part in ("text", "html")}


async def _queued(notify, message_id: str, account_id: str) -> bool:
    store = notify.app.state["runtime"].store
    nid = notification_id_for(message_id, Template.CONTENT_UNLOCKED, account_id)
    return await store.call(lambda: nid in store.app.repository)


async def _queued_count(notify) -> int:
    """How many notifications the event store holds (each begins with one `Queued` event)."""
    conn = await notify.connect()
    try:
        return await conn.fetchval(
            f"SELECT count(*) FROM {notify.events_table} WHERE topic LIKE '%Notification.Queued'"
        )
    finally:
        await conn.close()


# -------------------------------------------------------------------------------- the mail


async def test_each_subscriber_reads_what_the_artist_released(notify) -> None:
    (first, first_email), (second, second_email) = [await _registered(notify) for _ in range(2)]
    await notify.publish(_unlocked([first, second]), message_id="u-video")

    for subscriber, email in ((first, first_email), (second, second_email)):
        mail = await _mail(notify, email, SUBJECT)
        assert mail["to"] == email
        text = mail["text"]
        assert (
            "Ann & <The Band> released a new video for their subscribers: “Night <Songs>”." in text
        )
        assert "Open it in Ann & <The Band>'s locker on AudiFi." in text
        html = mail["html"]
        assert "Ann &amp; &lt;The Band&gt; released a new video for their subscribers" in html
        assert "<strong>“Night &lt;Songs&gt;”</strong>" in html
        assert "<The Band>" not in html and "<Songs>" not in html
        assert "Night\n" not in text and "&amp;\n" not in html  # the line breaks are gone
        assert await _queued(notify, "u-video", subscriber)


async def test_the_mail_names_the_kind_of_item_from_its_media_type(notify) -> None:
    fan, email = await _registered(notify)
    for message_id, media_type, title in (
        ("u-audio", "audio", "First Light"),
        ("u-image", "image", "Tour Poster"),
        ("u-other", "hologram", "Something Else"),  # a kind this notify does not know yet
    ):
        await notify.publish(
            _unlocked([fan], media_type=media_type, title=title), message_id=message_id
        )

    for title, kind in (
        ("First Light", "track"),
        ("Tour Poster", "image"),
        ("Something Else", "item"),
    ):
        mail = await _mail(notify, email, f"New from Ann & <The Band>: {title}")
        assert f"released a new {kind} for their subscribers: “{title}”." in mail["text"]


# ---------------------------------------------------------- redelivery, no address, nobody


async def test_a_redelivered_unlock_mails_nobody_twice(notify) -> None:
    (first, first_email), (second, second_email) = [await _registered(notify) for _ in range(2)]
    worker = _worker(notify, "nft-events")
    event = _unlocked([first, second, first])  # named twice: mailed once
    await notify.publish(event, message_id="u-again")
    await notify.publish(event, message_id="u-again")

    # Both may be applied at once (then each counts as handled): the ids still allow one mail.
    await eventually(lambda: worker.handled + worker.duplicates == 2, what="both deliveries")

    for account in (first, second):

        async def settled(account: str = account) -> list[dict] | None:
            items = (await notify.notifications(account)).json()["items"]
            return items if len(items) == 2 and all(i["status"] == "sent" for i in items) else None

        items = await eventually(settled, what=f"content_unlocked sent to {account}")
        assert sorted(i["template"] for i in items) == ["content_unlocked", "welcome"]

    for email in (first_email, second_email):
        subjects = [m["subject"] for m in await notify.mail(email)]
        assert sorted(subjects) == sorted([SUBJECT, "Welcome to AudiFi"])


async def test_a_subscriber_nobody_can_write_to_does_not_hold_up_the_others(notify, now) -> None:
    wallet_only = str(uuid.uuid4())
    await notify.publish(
        AccountRegistered(
            account_id=wallet_only,
            email=None,
            wallet_address="0x71C7656EC7ab88b098defB751B7401B5f6d8976F",
            roles=["fan"],
            registered_at=now(),
        )
    )
    erased, erased_email = await _registered(notify)
    await notify.publish(AccountErased(account_id=erased, erased_at=now()))
    never_heard_of = str(uuid.uuid4())  # auth never announced it to notify
    fan, email = await _registered(notify)
    auth = _worker(notify, "auth-events")
    await eventually(lambda: auth.handled == 4, what="the registrations and the erasure")

    unreachable = [wallet_only, never_heard_of, erased]
    nft = _worker(notify, "nft-events")
    await notify.publish(_unlocked([*unreachable, fan]), message_id="u-some")
    await eventually(lambda: nft.handled == 1, what="the unlock handled")

    mail = await _mail(notify, email, SUBJECT)
    assert mail["to"] == email
    assert await _queued(notify, "u-some", fan)
    for account in unreachable:
        assert not await _queued(notify, "u-some", account), account
    for account in (wallet_only, never_heard_of):
        assert (await notify.notifications(account)).json()["items"] == []
    assert [m["subject"] for m in await notify.mail(erased_email)] == ["Welcome to AudiFi"]


async def test_an_item_nobody_subscribes_to_queues_nothing(notify) -> None:
    fan, email = await _registered(notify)
    nft = _worker(notify, "nft-events")
    await notify.publish(_unlocked([]), message_id="u-nobody")
    await eventually(lambda: nft.handled == 1, what="the unlock handled")

    assert await _queued_count(notify) == 1  # the fan's welcome, nothing more
    assert [m["subject"] for m in await notify.mail(email)] == ["Welcome to AudiFi"]

    # The consumer carries on: the next item that opens to the fan is mailed.
    await notify.publish(_unlocked([fan], title="Encore"), message_id="u-next")
    await _mail(notify, email, "New from Ann & <The Band>: Encore")
    assert await _queued_count(notify) == 2
