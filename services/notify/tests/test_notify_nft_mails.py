"""What a holder reads about their shares: nft's facts become two e-mails.

Through the running service on both buses, the real database and the SMTP sink: a buyer is told
their shares were minted (to their wallet, or held in custody for them), and a holder that a
distribution owes is told how much, and where to claim it (or that it went to their balance).
Then the token amounts those mails show, from base units with integer arithmetic only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

import pytest
from audifi_events.auth import AccountErased, AccountRegistered
from audifi_events.nft import DistributionClaimable, SharesMinted
from audifi_kit.testing import eventually
from audifi_notify.app import nft_purpose_beside
from audifi_notify.consumers import token_amount
from audifi_notify.domain import Template, notification_id_for
from hypothesis import given
from hypothesis import strategies as st

PUBLIC_URL = "http://127.0.0.1:8080"  # the conftest's config: AUDIFI_PUBLIC_URL unset
WALLET = "0x71C7656EC7ab88b098defB751B7401B5f6d8976F"
TX_HASH = "0x" + "9f3c" * 16
EXPIRES_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _minted(buyer_id: str, **overrides: Any) -> SharesMinted:
    master_id = str(uuid.uuid4())
    facts: dict[str, Any] = {
        "ipo_id": str(uuid.uuid4()),
        "master_id": master_id,
        "chain_id": str(int(master_id.replace("-", ""), 16)),
        "reservation_id": str(uuid.uuid4()),
        "buyer_id": buyer_id,
        "quantity": 3,
        "to": WALLET,
        "custody": False,
        "tx_hash": TX_HASH,
        "title": "Midnight <Tapes>",
    }
    return SharesMinted(**(facts | overrides))


def _claimable(account_id: str, **overrides: Any) -> DistributionClaimable:
    distribution_id = str(uuid.uuid4())
    facts: dict[str, Any] = {
        "distribution_id": distribution_id,
        "account_id": account_id,
        "collection": "master",
        "master_id": str(uuid.uuid4()),
        "title": "Midnight Tapes",
        "month": "2026-01",
        "amount": "12500000",
        "decimals": 6,
        "currency": "USD",
        "wallet_address": WALLET,
        "custody": False,
        "claim_path": f"/nft/distributions/{distribution_id}/claims/{account_id}",
        "expires_at": EXPIRES_AT,
    }
    return DistributionClaimable(**(facts | overrides))


def _worker(notify, purpose: str) -> Any:
    runtime = notify.app.state["runtime"]
    [worker] = [w for w in runtime.workers if purpose in w.consumer.name]
    return worker


async def _registered(notify) -> tuple[str, str]:
    """An account whose address notify knows (its welcome mail arrived)."""
    account_id, email = await notify.register("holder")
    await eventually(lambda: notify.mail(email), what="the welcome mail")
    return account_id, email


async def _mail(notify, email: str, subject: str) -> dict[str, Any]:
    """The mail as a mail client shows it: its lines end in SMTP's CRLF on the wire."""

    async def arrived() -> dict[str, Any] | None:
        found = [m for m in await notify.mail(email) if m["subject"] == subject]
        return found[0] if found else None

    mail = await eventually(arrived, what=f"{subject!r} to {email}")
    return mail | {part: mail[part].replace("\r\n", "\n") for part in ("text", "html")}


# ------------------------------------------------------------------------ shares minted


async def test_a_buyer_reads_that_their_shares_are_on_chain_in_their_wallet_or_held_for_them(
    notify,
) -> None:
    wallet_buyer, wallet_email = await _registered(notify)
    custody_buyer, custody_email = await _registered(notify)
    await notify.publish(_minted(wallet_buyer), message_id="nft-minted-1")
    # Minted before events named their master: the mail cannot name it either.
    await notify.publish(
        _minted(custody_buyer, quantity=1, custody=True, to="0x" + "00" * 20, title=None),
        message_id="nft-minted-2",
    )

    mail = await _mail(notify, wallet_email, "Your shares of Midnight <Tapes> are on chain")
    assert mail["to"] == wallet_email
    assert "We minted your 3 shares of “Midnight <Tapes>” on chain." in mail["text"]
    assert "Where: your wallet 0x71C7…976F\n" in mail["text"]
    assert f"Transaction: {TX_HASH}\n" in mail["text"]
    assert "<strong>3 shares</strong> of “Midnight &lt;Tapes&gt;”" in mail["html"]
    assert "your wallet <code>0x71C7…976F</code>" in mail["html"]
    assert f"<code>{TX_HASH}</code>" in mail["html"]

    held = await _mail(notify, custody_email, "Your master shares are on chain")
    assert held["to"] == custody_email
    assert "We minted your 1 share of the master on chain." in held["text"]
    assert "Where: held for you by AudiFi until you link a wallet\n" in held["text"]
    assert f"Transaction: {TX_HASH}" in held["text"]
    assert "held for you by AudiFi until you link a wallet" in held["html"]
    assert "0x0000" not in held["text"] + held["html"]  # the custody address is not theirs


# ------------------------------------------------------------------ distribution available


async def test_a_holder_reads_their_revenue_share_with_a_claim_link_or_as_balance(notify) -> None:
    wallet_holder, wallet_email = await _registered(notify)
    custody_holder, custody_email = await _registered(notify)
    claimable = _claimable(wallet_holder)
    await notify.publish(claimable, message_id="nft-claimable-1")
    await notify.publish(
        _claimable(custody_holder, amount="1", custody=True, wallet_address=None),
        message_id="nft-claimable-2",
    )

    mail = await _mail(notify, wallet_email, "Revenue Distribution Available - 2026-01")
    assert mail["to"] == wallet_email
    claim_url = PUBLIC_URL + claimable.claim_path
    text = mail["text"]
    assert "Your revenue share is ready!" in text
    assert "Distribution for 2026-01: 12.50 USD\n" in text
    assert f"Claim it here: {claim_url}\n" in text
    assert "Claim before 1 March 2026." in text
    html = mail["html"]
    assert "Your revenue share is ready!</h1>" in html
    assert "Distribution for 2026-01: <strong>12.50 USD</strong>" in html
    assert f'<a href="{claim_url}">Claim your share</a>' in html
    assert "[link]" not in text + html

    held = await _mail(notify, custody_email, "Revenue Distribution Available - 2026-01")
    assert held["to"] == custody_email
    assert "Distribution for 2026-01: 0.000001 USD\n" in held["text"]
    assert "0.000001 USD is added to your AudiFi balance" in held["text"]
    assert "0.000001 USD is added to your AudiFi balance" in held["html"]
    assert "/claims/" not in held["text"] + held["html"]
    assert "Claim before" not in held["text"]


# ---------------------------------------------------------- redelivery, no address, erasure


async def test_a_redelivered_nft_event_mails_once(notify) -> None:
    holder, email = await _registered(notify)
    worker = _worker(notify, "nft-events")
    event = _claimable(holder)
    await notify.publish(event, message_id="nft-claimable-again")
    await notify.publish(event, message_id="nft-claimable-again")

    await eventually(lambda: worker.handled + worker.duplicates == 2, what="both deliveries")

    async def settled() -> list[dict] | None:
        items = (await notify.notifications(holder)).json()["items"]
        return items if len(items) == 2 and all(i["status"] == "sent" for i in items) else None

    items = await eventually(settled)
    assert sorted(i["template"] for i in items) == ["distribution_available", "welcome"]
    mails = await notify.mail(email)
    assert [m["subject"] for m in mails].count("Revenue Distribution Available - 2026-01") == 1


async def test_an_account_without_an_address_or_erased_gets_no_nft_mail(notify, now) -> None:
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

    nft = _worker(notify, "nft-events")
    await notify.publish(_minted(wallet_only), message_id="nft-w1")
    await notify.publish(_claimable(erased), message_id="nft-e1")
    await eventually(lambda: nft.handled == 2, what="both nft events handled")

    store = notify.app.state["runtime"].store
    for message_id, template in (
        ("nft-w1", Template.SHARES_MINTED),
        ("nft-e1", Template.DISTRIBUTION_AVAILABLE),
    ):
        nid = notification_id_for(message_id, template)
        assert not await store.call(lambda nid=nid: nid in store.app.repository)
    assert (await notify.notifications(wallet_only)).json()["items"] == []
    assert [m["subject"] for m in await notify.mail(erased_email)] == ["Welcome to AudiFi"]


# ------------------------------------------------------------------------- token amounts


@pytest.mark.parametrize(
    ("base_units", "decimals", "shown"),
    [
        ("12500000", 6, "12.50 USD"),
        ("1", 6, "0.000001 USD"),
        ("0", 6, "0.00 USD"),
        ("1234567890000", 6, "1,234,567.89 USD"),
        ("1234567891000", 6, "1,234,567.891 USD"),
        ("1000000000000000001", 18, "1.000000000000000001 USD"),
        ("99999999999999999999999999999999", 6, "99,999,999,999,999,999,999,999,999.999999 USD"),
        ("5", 1, "0.50 USD"),
        ("12", 0, "12.00 USD"),
    ],
)
def test_a_token_amount_shows_every_significant_digit_and_two_decimals_at_least(
    base_units: str, decimals: int, shown: str
) -> None:
    assert token_amount(base_units, decimals, "USD") == shown


@pytest.mark.parametrize("base_units", ["", "-5", "1.5", "1_000", " 12", "1e6", "١٢"])
def test_a_token_amount_that_is_not_base_unit_digits_is_refused(base_units: str) -> None:
    with pytest.raises(ValueError, match="base-unit digits"):
        token_amount(base_units, 6, "USD")


def test_a_token_cannot_have_negative_decimals() -> None:
    with pytest.raises(ValueError, match="decimals"):
        token_amount("1", -1, "USD")


@given(st.integers(min_value=0, max_value=10**40), st.integers(min_value=0, max_value=24))
def test_a_shown_token_amount_is_exactly_the_amount_owed(base_units: int, decimals: int) -> None:
    number, currency = token_amount(str(base_units), decimals, "USD").split(" ")
    assert currency == "USD"
    _, fraction = number.split(".")
    assert len(fraction) == 2 or (len(fraction) > 2 and fraction[-1] != "0")
    assert Fraction(number.replace(",", "")) * 10**decimals == base_units


def test_a_test_that_names_its_auth_queue_gets_its_own_nft_queue() -> None:
    assert nft_purpose_beside("auth-events") == "nft-events"
    assert nft_purpose_beside("auth-events-t1") == "nft-events-t1"
    assert nft_purpose_beside("mine") == "nft-events-mine"
