"""A card purchase through payment's orders, in memory: nft's reservation is published as the
order request, and payment's verdicts, routed by nft's real consumer, allocate or release.
What other services hear of masters and IPOs is checked here too."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from audifi_events import IntegrationEvent, encode, registry
from audifi_events.nft import IpoClosed, IpoLaunched, MasterRegistered, SharesSold
from audifi_events.payment import OrderExpired, OrderPaid, OrderRequest, Product
from audifi_kit.eventstore import DirectCalls
from audifi_kit.inbox import HandlerContext
from audifi_kit.messages import Message
from audifi_nft.bootstrap import in_memory
from audifi_nft.consumers import orders_consumer
from audifi_nft.outbox import order_title, outbox
from nft_support import ARTIST, T0, register, terms

FAN = str(uuid.UUID(int=7))


def published(app: Any) -> list[IntegrationEvent]:
    """Every integration event the relay would publish from the app's log, in order."""
    out = []
    for n in app.recorder.select_notifications(start=1, limit=1_000):
        if outbox.publishes(n.topic):
            event = outbox.to_integration_event(n.topic, app.mapper.to_domain_event(n))
            if event is not None:
                out.append(event)
    return out


class Payment:
    """Payment's verdicts, delivered to nft's orders consumer as the inbox worker would."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.consumer = orders_consumer()

    async def says(self, event: IntegrationEvent, message_id: str) -> None:
        kind = type(event)
        message = Message(message_id, kind.routing_key, encode(event), schema_version=1)
        route = self.consumer.route(message.routing_key)
        assert route is not None, f"nft does not consume {kind.routing_key}"
        decoded = registry.decode(kind.routing_key, 1, message.body)
        ctx = HandlerContext(self.consumer.name, message, store=DirectCalls(self.app))
        await route.handler(decoded, ctx)


def _open(cap: int = 10) -> tuple[Any, Any, Any]:
    app = in_memory()
    master = register(app, title="First Light")
    ipo = app.configure_ipo(
        master_id=master.id,
        actor_id=ARTIST,
        actor_is_admin=False,
        **terms(cap=cap, per_account_max=cap),
    )
    app.launch_ipo(ipo.id, T0)
    return app, master, ipo


def _paid(ipo_id: Any, order_id: str, intent: str, quantity: int) -> OrderPaid:
    return OrderPaid(
        order_id=order_id,
        product=Product(service="nft", kind="ipo_shares", reference=str(ipo_id)),
        buyer_id=FAN,
        seller_id=ARTIST,
        quantity=quantity,
        amount_cents=500 * quantity,
        currency="USD",
        payment_intent_id=intent,
        paid_at=T0 + timedelta(minutes=3),
        ledger_transaction_id=None,
    )


async def test_a_card_reservation_is_its_order_request_and_a_chain_one_asks_for_none() -> None:
    app, _, ipo = _open()
    card, chain = str(uuid.uuid4()), str(uuid.uuid4())
    app.reserve(ipo.id, reservation_id=card, account_id=FAN, quantity=3, method="card", now=T0)
    app.reserve(ipo.id, reservation_id=chain, account_id=FAN, quantity=1, method="chain", now=T0)
    requests = [e for e in published(app) if isinstance(e, OrderRequest)]
    assert requests == [
        OrderRequest(
            order_id=card,
            product=Product(service="nft", kind="ipo_shares", reference=str(ipo.id)),
            title="3 shares of \u201cFirst Light\u201d",
            quantity=3,
            unit_amount_cents=500,
            currency="USD",
            buyer_id=FAN,
            seller_id=ARTIST,
            expires_at=T0 + timedelta(minutes=15),
        )
    ]
    assert registry.decode("payment.order.requested", 1, encode(requests[0])) == requests[0]


def test_an_order_title_fits_the_checkout() -> None:
    assert order_title(1, "Blue") == "1 share of \u201cBlue\u201d"
    long = order_title(12, "x" * 300)
    assert len(long) == 120 and long.endswith("\u2026\u201d")


async def test_paid_allocates_once_expired_releases_and_other_products_are_not_ours() -> None:
    app, _, ipo = _open(cap=4)
    payment = Payment(app)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    app.reserve(ipo.id, reservation_id=first, account_id=FAN, quantity=3, method="card", now=T0)
    app.reserve(ipo.id, reservation_id=second, account_id=FAN, quantity=1, method="card", now=T0)

    await payment.says(_paid(ipo.id, first, "pi_1", 3), "payment-1")
    await payment.says(_paid(ipo.id, first, "pi_1", 3), "payment-1-again")  # a duplicate
    after = app.ipo(ipo.id)
    assert (after.allocated, after.held, after.reservations[first]["payment"]) == (3, 1, "pi_1")

    expired = OrderExpired(
        order_id=second,
        product=Product(service="nft", kind="ipo_shares", reference=str(ipo.id)),
        buyer_id=FAN,
        seller_id=ARTIST,
        expired_at=T0 + timedelta(minutes=15),
    )
    await payment.says(expired, "payment-2")
    await payment.says(expired, "payment-2-again")
    after = app.ipo(ipo.id)
    assert (after.allocated, after.held, after.available) == (3, 0, 1)

    lottery = OrderExpired(
        order_id=str(uuid.uuid4()),
        product=Product(service="coin", kind="lottery_tickets", reference="draw-1"),
        buyer_id=FAN,
        seller_id=ARTIST,
        expired_at=T0,
    )
    before = len(app.recorder.select_notifications(start=1, limit=1_000))
    await payment.says(lottery, "coin-1")
    assert len(app.recorder.select_notifications(start=1, limit=1_000)) == before


async def test_what_other_services_hear_of_a_master_and_its_ipo() -> None:
    app, master, ipo = _open(cap=3)
    payment = Payment(app)
    order = str(uuid.uuid4())
    app.reserve(ipo.id, reservation_id=order, account_id=FAN, quantity=3, method="card", now=T0)
    await payment.says(_paid(ipo.id, order, "pi_9", 3), "payment-9")
    events = [e for e in published(app) if not isinstance(e, OrderRequest)]
    assert [type(e) for e in events] == [MasterRegistered, IpoLaunched, SharesSold, IpoClosed]
    registered, launched, sold, closed = events
    assert registered.master_id == str(master.id) and registered.isrc == "USAUD2600001"
    assert registered.ipfs_hash == master.audio["cid"] and registered.chain_id == str(master.id.int)
    assert (launched.cap, launched.price_cents, launched.currency) == (3, 500, "USD")
    assert (sold.buyer_id, sold.quantity, sold.amount_cents, sold.payment) == (FAN, 3, 1500, "pi_9")
    assert (closed.reason, closed.master_id) == ("sold_out", str(master.id))
    for event in events:  # each reads back from the wire as it was published
        assert registry.decode(type(event).routing_key, 1, encode(event)) == event
