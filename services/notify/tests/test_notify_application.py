"""Notify's application on POPO persistence and in-memory adapters: no database, no SMTP.

What the service's HTTP/SMTP tests prove end to end, checked here as rules of the application
in milliseconds, plus a property: whatever the redeliveries, refusals and erasures, a causing
message gives one notification, at most one mail, and an erased account gets none.
"""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

from audifi_notify import bootstrap
from audifi_notify.application import ACCOUNT_ERASED, LINK_EXPIRED, MailTo
from audifi_notify.config import NotifyConfig
from audifi_notify.domain import RetryPolicy, Status, Template, notification_id_for
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey, PublicKey, SealedBox

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _notify(retry: tuple[float, ...] = (1.0, 5.0)) -> tuple[bootstrap.InMemoryNotify, Clock]:
    clock = Clock()
    config = NotifyConfig(retry=RetryPolicy(retry))
    return bootstrap.in_memory(config=config, clock=clock), clock


def _sealed(notify: bootstrap.InMemoryNotify, link: str) -> tuple[str, str]:
    public = PublicKey(base64.b64decode(notify.seal_key.public_b64))
    return base64.b64encode(
        SealedBox(public).encrypt(link.encode())
    ).decode(), notify.seal_key.key_id


def _sent_to(notify: bootstrap.InMemoryNotify, email: str) -> list[str]:
    return [str(m["Subject"]) for m in notify.transport.sent if email in str(m["To"])]


async def test_a_new_account_receives_its_welcome_mail_once() -> None:
    notify, _ = _notify()
    n = notify.notifier
    await n.remember("acc-1", "ada@example.com")
    assert await n.queue("auth-1", "acc-1", Template.WELCOME)
    assert not await n.queue("auth-1", "acc-1", Template.WELCOME)  # a redelivery

    nid = notification_id_for("auth-1", Template.WELCOME)
    await n.deliver(nid)
    await n.deliver(nid)

    assert _sent_to(notify, "ada@example.com") == ["Welcome to AudiFi"]
    sent = notify.app.notification(nid)
    assert (sent.status, sent.attempts) == (Status.SENT, 1)


async def test_one_message_queues_each_recipients_mail_in_one_save_once() -> None:
    """A project event mails every funder: one save for all (a consumer's save records the
    message, so it can run only once), one id per recipient, and a redelivery queues none."""
    notify, _ = _notify()
    n = notify.notifier
    for account in ("acc-1", "acc-2"):
        await n.remember(account, f"{account}@example.com")
    params = {"title": "Night", "raised": "50.00 USD", "milestones": "2 milestones"}
    mails = [
        MailTo("acc-1", Template.PROJECT_FULLY_FUNDED, params),
        MailTo("acc-2", Template.PROJECT_FULLY_FUNDED, params),
        MailTo("acc-1", Template.PROJECT_FULLY_FUNDED, params),  # named twice: mailed once
    ]
    saves: list[int] = []

    async def save(*notifications: object) -> None:
        saves.append(len(notifications))
        notify.app.save(*notifications)

    assert await n.queue_all("nft-1", mails, save=save)
    assert saves == [2]
    assert not await n.queue_all("nft-1", mails)  # a redelivery
    assert not await n.queue_all("nft-2", [])

    for account in ("acc-1", "acc-2"):
        await n.deliver(notification_id_for("nft-1", Template.PROJECT_FULLY_FUNDED, account))
        assert _sent_to(notify, f"{account}@example.com") == ["Night is fully funded"]


async def test_a_magic_link_goes_out_in_clear_and_its_sealed_copy_is_then_forgotten() -> None:
    notify, clock = _notify()
    n = notify.notifier
    await n.remember("acc-1", "ada@example.com")
    link = "https://app.audifi.test/auth/verify?token=abc"
    await n.queue(
        "auth-2",
        "acc-1",
        Template.MAGIC_LINK,
        {"expires_at": "soon"},
        expires_at=clock.now + timedelta(minutes=15),
        sealed_link=_sealed(notify, link),
    )
    await n.deliver(notification_id_for("auth-2", Template.MAGIC_LINK))

    [mail] = notify.transport.sent
    assert link in mail.get_body(preferencelist=("plain",)).get_content()
    assert notify.sealed_links.links == {}


async def test_an_expired_magic_link_is_abandoned() -> None:
    notify, clock = _notify()
    n = notify.notifier
    await n.remember("acc-1", "ada@example.com")
    await n.queue(
        "auth-3",
        "acc-1",
        Template.MAGIC_LINK,
        {"expires_at": "then"},
        expires_at=clock.now - timedelta(seconds=1),
        sealed_link=_sealed(notify, "https://x.test/late"),
    )
    nid = notification_id_for("auth-3", Template.MAGIC_LINK)
    await n.deliver(nid)

    abandoned = notify.app.notification(nid)
    assert (abandoned.status, abandoned.last_error) == (Status.ABANDONED, LINK_EXPIRED)
    assert notify.transport.sent == []
    assert notify.sealed_links.links == {}


async def test_a_link_sealed_to_another_key_fails_unread() -> None:
    notify, clock = _notify()
    n = notify.notifier
    await n.remember("acc-1", "ada@example.com")
    stranger = SealedBox(PrivateKey.generate().public_key).encrypt(b"https://x.test/t")
    await n.queue(
        "auth-4",
        "acc-1",
        Template.MAGIC_LINK,
        {"expires_at": "soon"},
        expires_at=clock.now + timedelta(minutes=15),
        sealed_link=(base64.b64encode(stranger).decode(), "0000000000000000"),
    )
    nid = notification_id_for("auth-4", Template.MAGIC_LINK)
    await n.deliver(nid)

    failed = notify.app.notification(nid)
    assert failed.status is Status.FAILED
    assert "unreadable" in (failed.last_error or "")
    assert notify.transport.sent == []


async def test_a_refused_mail_is_retried_when_due_then_fails_with_the_reason_kept() -> None:
    notify, clock = _notify(retry=(1.0, 5.0))
    n = notify.notifier
    await n.remember("acc-1", "ada@example.com")
    await n.queue("auth-5", "acc-1", Template.WELCOME)
    nid = notification_id_for("auth-5", Template.WELCOME)
    notify.transport.refusal = "550 mailbox unavailable"

    await n.deliver(nid)
    await n.deliver(nid)  # not due yet: no attempt
    assert notify.app.notification(nid).attempts == 1
    clock.now += timedelta(seconds=1)
    await n.deliver(nid)
    clock.now += timedelta(seconds=5)
    await n.deliver(nid)

    failed = notify.app.notification(nid)
    assert (failed.status, failed.attempts) == (Status.FAILED, 3)
    assert failed.last_error == "550 mailbox unavailable"


async def test_nothing_is_sent_to_an_erased_account_and_its_address_is_gone() -> None:
    notify, clock = _notify()
    n = notify.notifier
    await n.remember("acc-1", "ada@example.com")
    await n.forget("acc-1", clock.now)
    await n.remember("acc-1", "ada@example.com")  # a late event cannot bring it back
    await n.queue("auth-6", "acc-1", Template.TWO_FACTOR_ENABLED, {"enabled_at": "now"})
    nid = notification_id_for("auth-6", Template.TWO_FACTOR_ENABLED)
    await n.deliver(nid)

    failed = notify.app.notification(nid)
    assert (failed.status, failed.last_error) == (Status.FAILED, ACCOUNT_ERASED)
    assert notify.transport.sent == []
    assert notify.recipients.addresses == {}


async def test_two_senders_attempting_at_once_send_one_mail() -> None:
    notify, _ = _notify()
    n = notify.notifier
    await n.remember("acc-1", "ada@example.com")
    await n.queue("auth-7", "acc-1", Template.WELCOME)
    nid = notification_id_for("auth-7", Template.WELCOME)
    await asyncio.gather(n.deliver(nid), n.deliver(nid))
    assert len(notify.transport.sent) == 1


# ---------------------------------------------------------------------------- property

ACCOUNTS = ["acc-a", "acc-b"]
step = st.one_of(
    st.tuples(st.just("message"), st.integers(0, 3), st.sampled_from(ACCOUNTS)),
    st.tuples(st.just("erase"), st.sampled_from(ACCOUNTS)),
    st.tuples(st.just("refuse"), st.booleans()),
    st.tuples(st.just("wait"), st.integers(0, 10)),
    st.just(("deliver",)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=30))
def test_whatever_the_redeliveries_refusals_and_erasures_one_message_is_one_mail_at_most(
    steps: list[tuple],
) -> None:
    asyncio.run(_run(steps))


async def _run(steps: list[tuple]) -> None:
    notify, clock = _notify(retry=(1.0, 2.0))
    n = notify.notifier
    for account in ACCOUNTS:
        await n.remember(account, f"{account}@example.com")
    owner: dict[str, str] = {}  # message id -> account (a message always names one account)
    mails_when_erased: dict[str, int] = {}
    for s in steps:
        if s[0] == "message":  # a first delivery or a redelivery of message number s[1]
            message_id = f"auth-{s[1]}"
            account = owner.setdefault(message_id, s[2])
            await n.queue(message_id, account, Template.WELCOME)
        elif s[0] == "erase":
            mails_when_erased.setdefault(s[1], len(_sent_to(notify, f"{s[1]}@example.com")))
            await n.forget(s[1], clock.now)
        elif s[0] == "refuse":
            notify.transport.refusal = "451 try later" if s[1] else None
        elif s[0] == "wait":
            clock.now += timedelta(seconds=s[1])
        else:
            for message_id in owner:
                await n.deliver(notification_id_for(message_id, Template.WELCOME))

    log = notify.app.recorder.select_notifications(start=1, limit=10_000)
    assert len([e for e in log if e.topic.endswith("Queued")]) == len(owner)
    notifications = [
        notify.app.notification(notification_id_for(message_id, Template.WELCOME))
        for message_id in owner
    ]
    assert all(x.attempts <= 3 for x in notifications)
    assert len(notify.transport.sent) == sum(x.status is Status.SENT for x in notifications)
    for account, before in mails_when_erased.items():
        assert len(_sent_to(notify, f"{account}@example.com")) == before
