"""What a fan reads about their subscription: payment's events become three e-mails.

Most of it in memory (notify's application on POPO persistence, payment's events decoded and
routed by the real `notify.payment-events` consumer, each mail rendered and "sent" to the
in-memory transport); then once through the running service, its queue on both buses, the
real database and the SMTP sink.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage

import aio_pika
import pytest
from audifi_events import IntegrationEvent, encode
from audifi_events.auth import AccountRegistered
from audifi_events.payment import (
    SubscriptionCanceled,
    SubscriptionPastDue,
    SubscriptionRenewed,
    SubscriptionStarted,
)
from audifi_kit.bus import Bus, parking_queue, retry_queue
from audifi_kit.bus.rabbitmq import RabbitBus
from audifi_kit.inbox import HandlerContext
from audifi_kit.messages import Message
from audifi_kit.testing import eventually
from audifi_notify import bootstrap
from audifi_notify.app import payment_purpose_beside
from audifi_notify.application import ACCOUNT_ERASED, Notifier
from audifi_notify.config import NotifyConfig
from audifi_notify.consumers import money, payment_events_consumer
from audifi_notify.domain import Status, Template, notification_id_for
from hypothesis import given
from hypothesis import strategies as st

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
BILLING = "https://audifi.example/account/billing"
ARTIST = "artist-7f3a"


def _facts(fan_id: str, **overrides: object) -> dict[str, object]:
    return {
        "subscription_id": "sub_1",
        "fan_id": fan_id,
        "artist_id": ARTIST,
        "tier_id": "tier-gold",
        "price_cents": 1000,
        "currency": "USD",
        "interval": "month",
        "current_period_end": datetime(2026, 2, 1, 12, 0, tzinfo=UTC),
    } | overrides


class Payment:
    """Payment's relay, played in memory: each event handed to notify's payment consumer as
    the kit's inbox worker hands it (decoded from the wire by routing key)."""

    def __init__(self, public_url: str = "https://audifi.example/") -> None:
        config = NotifyConfig(public_url=public_url)
        self.notify = bootstrap.in_memory(config=config, clock=lambda: T0)

        async def notifier() -> Notifier:
            return self.notify.notifier

        self.consumer = payment_events_consumer(notifier, config.billing_url)

    async def publish(self, event: IntegrationEvent, message_id: str) -> None:
        kind = type(event)
        message = Message(message_id, kind.routing_key, encode(event), schema_version=1)
        route = self.consumer.route(message.routing_key)
        if route is None:  # not bound: the broker never delivers it to notify's queue
            return
        decoded = self.consumer.registry.decode(kind.routing_key, 1, message.body)
        ctx = HandlerContext(self.consumer.name, message, store=self.notify.notifier.store)
        await route.handler(decoded, ctx)

    async def deliver(self, message_id: str, template: Template) -> None:
        await self.notify.notifier.deliver(notification_id_for(message_id, template))

    def queued(self) -> int:
        log = self.notify.app.recorder.select_notifications(start=1, limit=1_000)
        return len([e for e in log if e.topic.endswith("Queued")])

    def mails_to(self, email: str) -> list[EmailMessage]:
        return [m for m in self.notify.transport.sent if email in str(m["To"])]


def _text(mail: EmailMessage) -> str:
    return mail.get_body(preferencelist=("plain",)).get_content()


def _html(mail: EmailMessage) -> str:
    return mail.get_body(preferencelist=("html",)).get_content()


async def _fan(payment: Payment, email: str = "ada@example.com") -> str:
    fan_id = str(uuid.uuid4())
    await payment.notify.notifier.remember(fan_id, email)
    return fan_id


# ------------------------------------------------------------------------- the three mails


async def test_a_started_subscription_mail_says_the_price_and_the_renewal_date() -> None:
    payment = Payment()
    fan = await _fan(payment)
    await payment.publish(SubscriptionStarted(**_facts(fan), started_at=T0), "payment-1")
    await payment.deliver("payment-1", Template.SUBSCRIPTION_STARTED)

    [mail] = payment.mails_to("ada@example.com")
    assert mail["Subject"] == "Your AudiFi subscription is active"
    text = _text(mail)
    assert f"Your subscription to artist {ARTIST} is active: 10.00 USD / month." in text
    assert "It renews on 1 February 2026." in text
    assert BILLING in text
    html = _html(mail)
    assert "<strong>10.00 USD / month</strong>" in html
    assert f'href="{BILLING}"' in html


async def test_the_tier_is_named_when_payment_names_it_and_escaped_in_html() -> None:
    payment = Payment()
    fan = await _fan(payment)
    facts = _facts(fan, tier_name="Backstage <Gold>")
    await payment.publish(SubscriptionStarted(**facts, started_at=T0), "payment-t1")
    await payment.deliver("payment-t1", Template.SUBSCRIPTION_STARTED)
    [mail] = payment.mails_to("ada@example.com")
    assert f"Your subscription “Backstage <Gold>” to artist {ARTIST} is active" in _text(mail)
    assert "“Backstage &lt;Gold&gt;”" in _html(mail)


async def test_a_subscription_without_a_period_end_says_no_renewal_date() -> None:
    payment = Payment()
    fan = await _fan(payment)
    facts = _facts(fan, price_cents=120_000, currency="JPY", interval="year")
    facts["current_period_end"] = None
    await payment.publish(SubscriptionStarted(**facts, started_at=T0), "payment-1")
    await payment.deliver("payment-1", Template.SUBSCRIPTION_STARTED)

    [mail] = payment.mails_to("ada@example.com")
    assert "is active: 120,000 JPY / year." in _text(mail)
    assert "renews" not in _text(mail)


async def test_a_failed_renewal_mail_sends_the_fan_to_the_billing_page_to_fix_the_card() -> None:
    payment = Payment()
    fan = await _fan(payment)
    await payment.publish(SubscriptionPastDue(**_facts(fan), fell_past_due_at=T0), "payment-2")
    await payment.deliver("payment-2", Template.SUBSCRIPTION_PAYMENT_FAILED)

    [mail] = payment.mails_to("ada@example.com")
    assert mail["Subject"] == "Your subscription payment failed: please update your card"
    text = _text(mail)
    assert "Your card was declined" in text
    assert f"artist {ARTIST}\n(10.00 USD / month)" in text
    assert f"update your card on your billing page: {BILLING}" in text
    assert f'<a href="{BILLING}">update your card' in _html(mail)


async def test_an_ended_subscription_mail_says_when_it_ended() -> None:
    payment = Payment()
    fan = await _fan(payment)
    canceled_at = datetime(2026, 3, 3, 23, 30, tzinfo=UTC)
    await payment.publish(SubscriptionCanceled(**_facts(fan), canceled_at=canceled_at), "p-3")
    await payment.deliver("p-3", Template.SUBSCRIPTION_ENDED)

    [mail] = payment.mails_to("ada@example.com")
    assert mail["Subject"] == "Your AudiFi subscription has ended"
    assert "(10.00 USD / month) ended on 3 March 2026" in _text(mail)
    assert "ended on 3 March 2026" in _html(mail)


async def test_a_renewal_that_went_through_sends_no_mail() -> None:
    payment = Payment()
    fan = await _fan(payment)
    await payment.publish(SubscriptionRenewed(**_facts(fan), renewed_at=T0), "payment-4")

    assert payment.consumer.route(SubscriptionRenewed.routing_key) is None
    assert payment.queued() == 0


# ---------------------------------------------------------- redelivery, erasure, no address


async def test_a_redelivered_event_queues_and_sends_one_mail() -> None:
    payment = Payment()
    fan = await _fan(payment)
    event = SubscriptionPastDue(**_facts(fan), fell_past_due_at=T0)
    await payment.publish(event, "payment-5")
    await payment.publish(event, "payment-5")
    await payment.deliver("payment-5", Template.SUBSCRIPTION_PAYMENT_FAILED)
    await payment.deliver("payment-5", Template.SUBSCRIPTION_PAYMENT_FAILED)

    assert payment.queued() == 1
    assert len(payment.mails_to("ada@example.com")) == 1


async def test_an_erased_fan_gets_no_mail_and_no_notification() -> None:
    payment = Payment()
    fan = await _fan(payment)
    await payment.notify.notifier.forget(fan, T0)
    await payment.publish(SubscriptionCanceled(**_facts(fan), canceled_at=T0), "payment-6")

    assert payment.queued() == 0
    assert payment.notify.transport.sent == []


async def test_a_wallet_only_fan_without_an_address_is_skipped_quietly() -> None:
    payment = Payment()
    fan = str(uuid.uuid4())  # auth never told notify an address for this account
    await payment.publish(SubscriptionStarted(**_facts(fan), started_at=T0), "payment-7")

    assert payment.queued() == 0


async def test_a_fan_erased_after_the_mail_was_queued_is_not_written_to() -> None:
    payment = Payment()
    fan = await _fan(payment)
    await payment.publish(SubscriptionStarted(**_facts(fan), started_at=T0), "payment-8")
    await payment.notify.notifier.forget(fan, T0)
    await payment.deliver("payment-8", Template.SUBSCRIPTION_STARTED)

    nid = notification_id_for("payment-8", Template.SUBSCRIPTION_STARTED)
    failed = payment.notify.app.notification(nid)
    assert (failed.status, failed.last_error) == (Status.FAILED, ACCOUNT_ERASED)
    assert payment.notify.transport.sent == []


# --------------------------------------------------------------------- money, settings, wiring


@pytest.mark.parametrize(
    ("minor_units", "currency", "shown"),
    [
        (1000, "USD", "10.00 USD"),
        (5, "EUR", "0.05 EUR"),
        (123_456_789, "USD", "1,234,567.89 USD"),
        (1000, "JPY", "1,000 JPY"),
        (1234, "KWD", "1.234 KWD"),
        (0, "GBP", "0.00 GBP"),
    ],
)
def test_prices_are_shown_in_the_currencys_own_minor_units(
    minor_units: int, currency: str, shown: str
) -> None:
    assert money(minor_units, currency) == shown


@given(
    st.integers(min_value=0, max_value=2**53 - 1),
    st.sampled_from(["USD", "EUR", "JPY", "KRW", "KWD", "BHD", "CHF", "ISK"]),
)
def test_a_shown_price_is_exactly_the_amount_charged(minor_units: int, currency: str) -> None:
    amount, code = money(minor_units, currency).split(" ")
    assert code == currency
    assert int(amount.replace(",", "").replace(".", "")) == minor_units


def test_the_billing_link_follows_the_public_url() -> None:
    assert NotifyConfig.from_env({}).billing_url == "http://127.0.0.1:8080/account/billing"
    configured = NotifyConfig.from_env({"AUDIFI_PUBLIC_URL": "https://audifi.example/"})
    assert configured.billing_url == BILLING


def test_a_test_that_names_its_auth_queue_gets_its_own_payment_queue() -> None:
    assert payment_purpose_beside("auth-events") == "payment-events"
    assert payment_purpose_beside("auth-events-t1") == "payment-events-t1"
    assert payment_purpose_beside("mine") == "payment-events-mine"


# ------------------------------------------------------------------- through the service


@pytest.fixture
async def payment_queue(
    bus: Bus, unique_name: str, request: pytest.FixtureRequest
) -> AsyncIterator[None]:
    """The test's own payment queue (named beside the conftest's auth queue), deleted after."""
    yield
    if not isinstance(bus, RabbitBus):
        return
    queue = f"notify.payment-events-{unique_name}"
    connection = await aio_pika.connect(request.getfixturevalue("amqp_url"))
    try:
        channel = await connection.channel()
        for name in (queue, parking_queue(queue), *(retry_queue(queue, i) for i in range(3))):
            await channel.queue_delete(name)
    finally:
        await connection.close()


async def test_through_the_service_a_fan_gets_each_subscription_mail_once(
    payment_queue: None, notify, now
) -> None:
    fan, email = await notify.register("fan")
    await eventually(lambda: notify.mail(email))  # notify knows the address now
    runtime = notify.app.state["runtime"]
    [worker] = [w for w in runtime.workers if "payment-events" in w.consumer.name]

    started = SubscriptionStarted(**_facts(fan), started_at=now())
    await notify.publish(started, message_id="payment-started-1")
    await notify.publish(started, message_id="payment-started-1")  # redelivered
    past_due = SubscriptionPastDue(**_facts(fan), fell_past_due_at=now())
    await notify.publish(past_due, message_id="payment-past-due-1")

    async def settled() -> list[dict] | None:
        items = (await notify.notifications(fan)).json()["items"]
        done = len(items) == 3 and all(i["status"] == "sent" for i in items)
        return items if done else None

    await eventually(lambda: worker.handled + worker.duplicates == 3, what="all 3 deliveries")
    items = await eventually(settled)
    assert sorted(i["template"] for i in items) == [
        "subscription_payment_failed",
        "subscription_started",
        "welcome",
    ]
    mails = {m["subject"]: m for m in await notify.mail(email)}
    assert len(await notify.mail(email)) == 3
    assert "10.00 USD / month" in mails["Your AudiFi subscription is active"]["text"]
    failed = mails["Your subscription payment failed: please update your card"]
    assert "http://127.0.0.1:8080/account/billing" in failed["text"]


async def test_through_the_service_an_account_without_an_address_gets_nothing(
    payment_queue: None, notify, now
) -> None:
    wallet_only = str(uuid.uuid4())
    await notify.publish(
        AccountRegistered(
            account_id=wallet_only,
            email=None,
            wallet_address="0x" + "cd" * 20,
            roles=["fan"],
            registered_at=now(),
        )
    )
    runtime = notify.app.state["runtime"]
    [worker] = [w for w in runtime.workers if "payment-events" in w.consumer.name]
    await notify.publish(
        SubscriptionStarted(**_facts(wallet_only), started_at=now()), message_id="payment-w1"
    )

    await eventually(lambda: worker.handled == 1, what="the payment event handled")
    nid = notification_id_for("payment-w1", Template.SUBSCRIPTION_STARTED)
    assert not await runtime.store.call(lambda: nid in runtime.store.app.repository)
    assert (await notify.notifications(wallet_only)).json()["items"] == []
