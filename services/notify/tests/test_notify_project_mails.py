"""What funders and artists read about a Coda Collective project: nft's facts become e-mails.

Through the running service on both buses, the real database and the SMTP sink: each funder
reads that the project is fully funded, or that it was cancelled (why, and their refund); on a
milestone's approval the artist reads their payout and each funder the progress; on a rejection
the artist reads why. One event mails several accounts: a redelivery mails none of them twice,
and a funder nobody can write to (no address, wallet-only, erased) costs the others nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from audifi_events.auth import AccountErased, AccountRegistered
from audifi_events.nft import (
    InvestmentRefund,
    MilestoneApproved,
    MilestoneRejected,
    ProjectCancelled,
    ProjectGoalReached,
)
from audifi_kit.testing import eventually
from audifi_notify.domain import Template, notification_id_for

AT = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
TITLE = "Night <Songs>"


def _goal_reached(artist_id: str, funders: list[str], **overrides: Any) -> ProjectGoalReached:
    facts: dict[str, Any] = {
        "project_id": str(uuid.uuid4()),
        "artist_id": artist_id,
        "title": TITLE,
        "raised": 500_000,
        "currency": "USD",
        "funders": funders,
        "milestone_payouts": [150_000, 150_000, 200_000],
        "reached_at": AT,
    }
    return ProjectGoalReached(**(facts | overrides))


def _refund(account_id: str, amount: int) -> InvestmentRefund:
    return InvestmentRefund(investment_id=str(uuid.uuid4()), account_id=account_id, amount=amount)


def _cancelled(refunds: list[InvestmentRefund], **overrides: Any) -> ProjectCancelled:
    facts: dict[str, Any] = {
        "project_id": str(uuid.uuid4()),
        "artist_id": str(uuid.uuid4()),
        "title": TITLE,
        "reason": "deadline",
        "currency": "USD",
        "refunds": refunds,
        "remainder": 0,
        "cancelled_at": AT,
    }
    return ProjectCancelled(**(facts | overrides))


def _approved(artist_id: str, funders: list[str], **overrides: Any) -> MilestoneApproved:
    facts: dict[str, Any] = {
        "project_id": str(uuid.uuid4()),
        "milestone_id": str(uuid.uuid4()),
        "sequence": 2,
        "artist_id": artist_id,
        "title": TITLE,
        "name": "Mixing & mastering",
        "amount": 150_000,
        "currency": "USD",
        "funders": funders,
        "approved_at": AT,
    }
    return MilestoneApproved(**(facts | overrides))


def _rejected(artist_id: str, **overrides: Any) -> MilestoneRejected:
    facts: dict[str, Any] = {
        "project_id": str(uuid.uuid4()),
        "milestone_id": str(uuid.uuid4()),
        "artist_id": artist_id,
        "title": TITLE,
        "name": "Studio recording",
        "reason": "The photos do not show the studio session.",
        "rejected_at": AT,
    }
    return MilestoneRejected(**(facts | overrides))


def _worker(notify, purpose: str) -> Any:
    runtime = notify.app.state["runtime"]
    [worker] = [w for w in runtime.workers if purpose in w.consumer.name]
    return worker


async def _registered(notify, name: str = "funder") -> tuple[str, str]:
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


async def _queued(notify, message_id: str, template: Template, account_id: str) -> bool:
    store = notify.app.state["runtime"].store
    nid = notification_id_for(message_id, template, account_id)
    return await store.call(lambda: nid in store.app.repository)


# ---------------------------------------------------------------------------- goal reached


async def test_each_funder_reads_that_the_project_is_fully_funded(notify) -> None:
    (first, first_email), (second, second_email) = [await _registered(notify) for _ in range(2)]
    await notify.publish(_goal_reached(str(uuid.uuid4()), [first, second]), message_id="p-goal")

    for funder, email in ((first, first_email), (second, second_email)):
        mail = await _mail(notify, email, "Night <Songs> is fully funded")
        assert mail["to"] == email
        text = mail["text"]
        assert "reached its funding goal: 5,000.00 USD raised. The project is going ahead." in text
        assert "Your money stays in escrow. It is released to the artist in 3 milestones" in text
        assert "AudiFi approves the artist's proof" in text
        assert "“Night &lt;Songs&gt;”" in mail["html"]
        assert "<strong>5,000.00 USD</strong> raised" in mail["html"]
        assert await _queued(notify, "p-goal", Template.PROJECT_FULLY_FUNDED, funder)


# ------------------------------------------------------------------------------- cancelled


async def test_a_funder_reads_their_full_refund_when_the_deadline_passed(notify) -> None:
    twice, twice_email = await _registered(notify)
    once, once_email = await _registered(notify)
    refunds = [_refund(twice, 2_500), _refund(once, 1_000), _refund(twice, 7_550)]
    await notify.publish(_cancelled(refunds), message_id="p-deadline")

    # Two investments, one mail: their total.
    mail = await _mail(notify, twice_email, "Night <Songs> was cancelled: 100.50 USD refunded")
    assert mail["to"] == twice_email
    text = mail["text"]
    assert "“Night <Songs>” did not reach its funding goal before its deadline" in text
    assert "Your refund: 100.50 USD, everything you paid into the project." in text
    assert "It is added to your AudiFi balance." in text
    assert "Your refund: <strong>100.50 USD</strong>" in mail["html"]
    assert "reason" not in text

    other = await _mail(notify, once_email, "Night <Songs> was cancelled: 10.00 USD refunded")
    assert "Your refund: 10.00 USD, everything you paid into the project." in other["text"]

    subjects = [m["subject"] for m in await notify.mail(twice_email)]
    assert subjects.count("Night <Songs> was cancelled: 100.50 USD refunded") == 1
    assert len(subjects) == 2  # the welcome, and one cancellation


async def test_a_funder_reads_why_audifi_cancelled_and_their_share_of_the_escrow(notify) -> None:
    funder, email = await _registered(notify)
    dust, dust_email = await _registered(notify)
    reason = "The artist withdrew\nthe project."
    refunds = [_refund(funder, 1_234), _refund(dust, 0)]
    await notify.publish(
        _cancelled(refunds, reason=reason, currency="JPY", remainder=1), message_id="p-admin"
    )

    mail = await _mail(notify, email, "Night <Songs> was cancelled: 1,234 JPY refunded")
    text = mail["text"]
    assert (
        "AudiFi cancelled “Night <Songs>”. The reason given: “The artist withdrew the project.”"
        in (text)
    )
    assert "Your refund: 1,234 JPY, your share of the money still in escrow." in text
    assert "It is added to your AudiFi balance." in text
    assert "deadline" not in text
    assert "The reason given: “The artist withdrew the project.”" in mail["html"]

    # Rounded down to nothing: still told the project was cancelled, and that nothing comes.
    nothing = await _mail(notify, dust_email, "Night <Songs> was cancelled")
    assert "rounds down to 0 JPY: nothing is added to your AudiFi balance." in nothing["text"]
    assert "Your refund" not in nothing["text"]


# ------------------------------------------------------------------------------ milestones


async def test_an_approved_milestone_pays_the_artist_and_tells_each_funder(notify) -> None:
    artist, artist_email = await _registered(notify, "artist")
    (first, first_email), (second, second_email) = [await _registered(notify) for _ in range(2)]
    await notify.publish(_approved(artist, [first, second]), message_id="p-approved")

    paid = await _mail(
        notify, artist_email, "Milestone approved: 1,500.00 USD released for Night <Songs>"
    )
    assert paid["to"] == artist_email
    assert (
        "AudiFi approved your proof for milestone 2 of “Night <Songs>”: “Mixing & mastering”."
        in (paid["text"])
    )
    assert (
        "Its payout, 1,500.00 USD, is released from escrow to your AudiFi balance."
        in (paid["text"])
    )
    assert "Its payout, <strong>1,500.00 USD</strong>" in paid["html"]
    assert "“Mixing &amp; mastering”" in paid["html"]

    subject = "Progress on Night <Songs>: milestone “Mixing & mastering” released"
    for email in (first_email, second_email):
        progress = await _mail(notify, email, subject)
        assert progress["to"] == email
        text = progress["text"]
        assert "AudiFi approved the artist's proof for milestone 2, “Mixing & mastering”" in text
        assert "released its payout, 1,500.00 USD, from escrow to the artist." in text
        assert "later milestones stays in escrow" in text
    # The artist is not told twice, nor a funder paid.
    assert [m["subject"] for m in await notify.mail(artist_email)].count(subject) == 0
    assert "your AudiFi balance" not in (await _mail(notify, first_email, subject))["text"]


async def test_the_artist_reads_why_a_milestone_was_rejected_and_may_try_again(notify) -> None:
    artist, email = await _registered(notify, "artist")
    await notify.publish(_rejected(artist), message_id="p-rejected")

    mail = await _mail(
        notify, email, "Milestone “Studio recording” of Night <Songs> was not approved"
    )
    assert mail["to"] == email
    text = mail["text"]
    assert "AudiFi did not approve your proof for milestone “Studio recording”" in text
    assert "The reason given: “The photos do not show the studio session.”" in text
    assert "You may submit a new proof for this milestone." in text
    assert "The reason given: “The photos do not show the studio session.”" in mail["html"]


# ---------------------------------------------------------- redelivery, no address, erasure


async def test_a_redelivered_project_event_mails_nobody_twice(notify) -> None:
    artist, artist_email = await _registered(notify, "artist")
    (first, first_email), (second, second_email) = [await _registered(notify) for _ in range(2)]
    worker = _worker(notify, "nft-events")
    event = _approved(artist, [first, second])
    await notify.publish(event, message_id="p-approved-again")
    await notify.publish(event, message_id="p-approved-again")

    # Both may be applied at once (then each counts as handled): the ids still allow one mail.
    await eventually(lambda: worker.handled + worker.duplicates == 2, what="both deliveries")

    for account, template in (
        (artist, "milestone_payout_released"),
        (first, "milestone_released"),
        (second, "milestone_released"),
    ):

        async def settled(account: str = account) -> list[dict] | None:
            items = (await notify.notifications(account)).json()["items"]
            return items if len(items) == 2 and all(i["status"] == "sent" for i in items) else None

        items = await eventually(settled, what=f"{template} sent")
        assert sorted(i["template"] for i in items) == sorted([template, "welcome"])

    for email in (artist_email, first_email, second_email):
        assert len(await notify.mail(email)) == 2  # the welcome, and one about the milestone


async def test_a_funder_nobody_can_write_to_does_not_hold_up_the_others(notify, now) -> None:
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
    funder, email = await _registered(notify)
    auth = _worker(notify, "auth-events")
    await eventually(lambda: auth.handled == 4, what="the registrations and the erasure")

    unreachable = [wallet_only, never_heard_of, erased]
    nft = _worker(notify, "nft-events")
    await notify.publish(_goal_reached(wallet_only, [*unreachable, funder]), message_id="p-g")
    await notify.publish(
        _cancelled([_refund(a, 1_000) for a in (*unreachable, funder)]), message_id="p-c"
    )
    await notify.publish(_approved(erased, [*unreachable, funder]), message_id="p-a")
    await notify.publish(_rejected(never_heard_of), message_id="p-r")
    await eventually(lambda: nft.handled == 4, what="the four project events handled")

    await _mail(notify, email, "Night <Songs> is fully funded")
    await _mail(notify, email, "Night <Songs> was cancelled: 10.00 USD refunded")
    await _mail(notify, email, "Progress on Night <Songs>: milestone “Mixing & mastering” released")

    for message_id, template, account in (
        *(("p-g", Template.PROJECT_FULLY_FUNDED, a) for a in unreachable),
        *(("p-c", Template.PROJECT_CANCELLED, a) for a in unreachable),
        *(("p-a", Template.MILESTONE_RELEASED, a) for a in unreachable),
        ("p-a", Template.MILESTONE_PAYOUT_RELEASED, erased),
    ):
        assert not await _queued(notify, message_id, template, account), (template, account)
    store = notify.app.state["runtime"].store
    rejected = notification_id_for("p-r", Template.MILESTONE_REJECTED)
    assert not await store.call(lambda: rejected in store.app.repository)
    for account in (wallet_only, never_heard_of):
        assert (await notify.notifications(account)).json()["items"] == []
    assert [m["subject"] for m in await notify.mail(erased_email)] == ["Welcome to AudiFi"]
