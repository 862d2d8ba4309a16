"""What a lottery player reads: coin's tickets and draws become two e-mails.

Through the running service on both buses, the real database and the SMTP sink: the account
that bought (or burned for) tickets reads the seed's `ticketsPurchased`, its ticket numbers and
the drawing date filled in; the account whose ticket won a draw reads its ticket, the prize in
USDC and the payout's transaction. Nobody else is mailed for a draw, an event that names no
account mails nobody, an account nobody can write to gets nothing (the event still handled),
and a redelivered event mails once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from audifi_events.auth import AccountErased, AccountRegistered
from audifi_events.coin import RoundDrawn, TicketsIssued
from audifi_kit.testing import eventually
from audifi_notify.app import coin_purpose_beside
from audifi_notify.domain import Template, notification_id_for

WALLET = "0x71C7656EC7ab88b098defB751B7401B5f6d8976F"
SHORT_WALLET = "0x71C7…976F"
ROUND = "round-7"
CLAIM_TX = "0x" + "c1a1" * 16
ISSUE_TX = "0x" + "1551" * 16
DRAW_TX = "0x" + "d7a3" * 16
DRAWING = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
DRAWN_AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
TICKETS_SUBJECT = "Lottery Tickets Confirmed - 3 Tickets"
WON_SUBJECT = f"You won the lottery - round {ROUND}"


def _issued(account_id: str | None, **overrides: Any) -> TicketsIssued:
    facts: dict[str, Any] = {
        "round_id": ROUND,
        "account_id": account_id,
        "wallet": WALLET,
        "method": "purchase",
        "payment_method": "USDC",
        "ticket_numbers": [1, 2, 3],
        "count": 3,
        "claim_tx_hash": CLAIM_TX,
        "issue_tx_hash": ISSUE_TX,
        "drawing_date": DRAWING,
        "issued_at": datetime(2026, 2, 20, 12, 0, tzinfo=UTC),
    }
    return TicketsIssued(**(facts | overrides))


def _drawn(winner_account_id: str | None, **overrides: Any) -> RoundDrawn:
    facts: dict[str, Any] = {
        "round_id": ROUND,
        "tickets_sold": 40,
        "winning_ticket": 7,
        "winner_wallet": WALLET,
        "winner_account_id": winner_account_id,
        "prize": "12500000",
        "tx_hash": DRAW_TX,
        "drawn_at": DRAWN_AT,
    }
    return RoundDrawn(**(facts | overrides))


def _worker(notify, purpose: str) -> Any:
    runtime = notify.app.state["runtime"]
    [worker] = [w for w in runtime.workers if purpose in w.consumer.name]
    return worker


async def _registered(notify, name: str = "player") -> tuple[str, str]:
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


async def _queued(notify, message_id: str, template: Template) -> bool:
    store = notify.app.state["runtime"].store
    nid = notification_id_for(message_id, template)
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


# -------------------------------------------------------------------------- tickets issued


async def test_a_buyer_reads_their_ticket_numbers_and_the_drawing_date(notify) -> None:
    buyer, email = await _registered(notify)
    await notify.publish(_issued(buyer), message_id="coin-issued-1")

    mail = await _mail(notify, email, TICKETS_SUBJECT)
    assert mail["to"] == email
    text = mail["text"]
    assert "Your lottery tickets are confirmed!\n" in text
    assert "Ticket numbers: 1, 2, 3\n" in text
    assert "Drawing date: 1 March 2026\n" in text
    assert f"Round {ROUND}, wallet {SHORT_WALLET}\n" in text
    assert text.rstrip().endswith("Good luck!")
    html = mail["html"]
    assert "Your lottery tickets are confirmed!</h1>" in html
    assert "<p>Ticket numbers: 1, 2, 3</p>" in html
    assert "<p>Drawing date: 1 March 2026</p>" in html
    assert f"<p>Round {ROUND}, wallet <code>{SHORT_WALLET}</code></p>" in html
    assert "<p>Good luck!</p>" in html
    assert "[TBD]" not in text + html
    assert WALLET not in text + html  # the short form only


async def test_one_ticket_burned_for_reads_the_seeds_subject_as_it_is(notify) -> None:
    holder, email = await _registered(notify)
    burned = _issued(holder, method="burn", payment_method=None, ticket_numbers=[41], count=1)
    await notify.publish(burned, message_id="coin-issued-burn")

    mail = await _mail(notify, email, "Lottery Tickets Confirmed - 1 Tickets")
    assert "Ticket numbers: 41\n" in mail["text"]
    assert "<p>Ticket numbers: 41</p>" in mail["html"]
    assert "Drawing date: 1 March 2026\n" in mail["text"]


# ------------------------------------------------------------------------------ round drawn


async def test_the_winner_reads_their_ticket_the_prize_and_the_payout(notify) -> None:
    winner, email = await _registered(notify)
    await notify.publish(_drawn(winner), message_id="coin-drawn-1")

    mail = await _mail(notify, email, WON_SUBJECT)
    assert mail["to"] == email
    text = mail["text"]
    assert f"You won the lottery! Your ticket won round {ROUND}.\n" in text
    assert "Winning ticket: 7\n" in text
    assert "Prize: 12.50 USDC\n" in text
    assert f"The prize was paid to your wallet {SHORT_WALLET} on chain" in text
    assert f"Transaction: {DRAW_TX}" in text
    html = mail["html"]
    assert "You won the lottery!</h1>" in html
    assert "Winning ticket: <strong>7</strong>" in html
    assert "Prize: <strong>12.50 USDC</strong>" in html
    assert f"paid to your wallet <code>{SHORT_WALLET}</code> on chain" in html
    assert f"<code>{DRAW_TX}</code>" in html


async def test_a_draw_mails_its_winner_only_and_a_draw_without_one_mails_nobody(notify) -> None:
    (winner, winner_email), (player, player_email) = [await _registered(notify) for _ in "ab"]
    coin = _worker(notify, "coin-events")
    await notify.publish(_issued(player), message_id="coin-issued-p")
    await _mail(notify, player_email, TICKETS_SUBJECT)
    before = await _queued_count(notify)  # two welcomes and the player's tickets

    # Nobody won: no tickets sold, the pot carried over. Then a winner with no account here.
    empty = _drawn(None, tickets_sold=0, winning_ticket=None, winner_wallet=None)
    await notify.publish(empty, message_id="coin-drawn-empty")
    await notify.publish(_drawn(None), message_id="coin-drawn-nobody")
    await notify.publish(_drawn(winner, round_id="round-8"), message_id="coin-drawn-w")
    await _mail(notify, winner_email, "You won the lottery - round round-8")
    await eventually(lambda: coin.handled == 4, what="the tickets and the three draws")

    assert coin.parked == 0
    assert await _queued_count(notify) == before + 1  # the winner's mail, nothing more
    assert not await _queued(notify, "coin-drawn-empty", Template.LOTTERY_WON)
    assert not await _queued(notify, "coin-drawn-nobody", Template.LOTTERY_WON)
    subjects = sorted(m["subject"] for m in await notify.mail(player_email))
    assert subjects == sorted([TICKETS_SUBJECT, "Welcome to AudiFi"])


# ---------------------------------------------------------- no account, no address, erased


async def test_an_event_for_nobody_we_can_write_to_mails_nothing_and_is_handled(
    notify, now
) -> None:
    wallet_only = str(uuid.uuid4())
    await notify.publish(
        AccountRegistered(
            account_id=wallet_only,
            email=None,
            wallet_address=WALLET,
            roles=["fan"],
            registered_at=now(),
        )
    )
    erased, erased_email = await _registered(notify)
    await notify.publish(AccountErased(account_id=erased, erased_at=now()))
    auth = _worker(notify, "auth-events")
    await eventually(lambda: auth.handled == 3, what="both registrations and the erasure")

    coin = _worker(notify, "coin-events")
    sent = (
        ("coin-none", _issued(None), Template.TICKETS_PURCHASED),
        ("coin-w1", _issued(wallet_only), Template.TICKETS_PURCHASED),
        ("coin-e1", _issued(erased), Template.TICKETS_PURCHASED),
        ("coin-w2", _drawn(wallet_only), Template.LOTTERY_WON),
        ("coin-e2", _drawn(erased), Template.LOTTERY_WON),
    )
    for message_id, event, _ in sent:
        await notify.publish(event, message_id=message_id)
    await eventually(lambda: coin.handled == len(sent), what="every coin event handled")

    # Handled at the first attempt: nothing failed, nothing waits to be delivered again.
    assert (coin.parked, coin.duplicates) == (0, 0)
    for message_id, _, template in sent:
        assert not await _queued(notify, message_id, template), message_id
    assert (await notify.notifications(wallet_only)).json()["items"] == []
    assert [m["subject"] for m in await notify.mail(erased_email)] == ["Welcome to AudiFi"]

    # The consumer carries on: the next buyer it can write to is mailed.
    buyer, email = await _registered(notify)
    await notify.publish(_issued(buyer), message_id="coin-next")
    await _mail(notify, email, TICKETS_SUBJECT)
    assert coin.handled == len(sent) + 1


# ------------------------------------------------------------------------------ redelivery


async def test_a_redelivered_coin_event_mails_once(notify) -> None:
    player, email = await _registered(notify)
    coin = _worker(notify, "coin-events")
    for message_id, event in (
        ("coin-issued-again", _issued(player)),
        ("coin-won-again", _drawn(player)),
    ):
        await notify.publish(event, message_id=message_id)
        await notify.publish(event, message_id=message_id)

    await eventually(lambda: coin.handled + coin.duplicates == 4, what="all four deliveries")

    async def settled() -> list[dict] | None:
        items = (await notify.notifications(player)).json()["items"]
        return items if len(items) == 3 and all(i["status"] == "sent" for i in items) else None

    items = await eventually(settled, what="the welcome, tickets and won mails sent")
    assert sorted(i["template"] for i in items) == ["lottery_won", "tickets_purchased", "welcome"]
    subjects = [m["subject"] for m in await notify.mail(email)]
    assert subjects.count(TICKETS_SUBJECT) == 1
    assert subjects.count(WON_SUBJECT) == 1


def test_a_test_that_names_its_auth_queue_gets_its_own_coin_queue() -> None:
    assert coin_purpose_beside("auth-events") == "coin-events"
    assert coin_purpose_beside("auth-events-t1") == "coin-events-t1"
    assert coin_purpose_beside("mine") == "coin-events-mine"
