"""Which of payment's domain events are published, and as which `payment.*` integration events.

Orders' outcomes (the seller fulfils from `payment.order.paid` only), tiers' definition and
archiving (nft ranks a subscription's tier for the content locker), subscriptions' lifecycle
(the content locker, notify and analytics follow it) and every recorded ledger transaction
(analytics, anomaly detection). The events carry the facts the integration events need
(`Order.facts`, `Subscription.facts`, the tier's own fields), so nothing is loaded to publish
them. Split rules, who defined or archived a tier, guards, receipts and Stripe links stay
private.
"""

from __future__ import annotations

from typing import Any

from audifi_events import payment as published
from audifi_kit.outbox import OutboxMapping

from audifi_payment.domain.ledger import LedgerTransaction
from audifi_payment.domain.order import Order
from audifi_payment.domain.subscription import Subscription
from audifi_payment.domain.tier import Tier

outbox = OutboxMapping("payment")


def _product(facts: dict[str, Any]) -> published.Product:
    return published.Product(**facts["product"])


@outbox.maps(Order.Paid)
def _order_paid(e: Any) -> published.OrderPaid:
    return published.OrderPaid(
        order_id=str(e.originator_id),
        product=_product(e.facts),
        buyer_id=e.facts["buyer_id"],
        seller_id=e.facts["seller_id"],
        quantity=e.facts["quantity"],
        amount_cents=e.amount,
        currency=e.currency,
        payment_intent_id=e.payment_intent_id,
        paid_at=e.paid_at,
        ledger_transaction_id=str(e.ledger_transaction_id) if e.ledger_transaction_id else None,
    )


@outbox.maps(Order.Expired)
def _order_expired(e: Any) -> published.OrderExpired:
    return published.OrderExpired(
        order_id=str(e.originator_id),
        product=_product(e.facts),
        buyer_id=e.facts["buyer_id"],
        seller_id=e.facts["seller_id"],
        expired_at=e.expired_at,
    )


@outbox.maps(Order.Failed)
def _order_failed(e: Any) -> published.OrderFailed:
    return published.OrderFailed(
        order_id=str(e.originator_id),
        product=_product(e.facts),
        buyer_id=e.facts["buyer_id"],
        seller_id=e.facts["seller_id"],
        reason=e.reason,
        failed_at=e.failed_at,
    )


@outbox.maps(Order.Refunded)
def _order_refunded(e: Any) -> published.OrderRefunded | None:
    late = e.facts.get("late_payment")  # amount, currency and reason of what was refunded
    if late is None:
        return None
    return published.OrderRefunded(
        order_id=str(e.originator_id),
        product=_product(e.facts),
        buyer_id=e.facts["buyer_id"],
        payment_intent_id=e.payment_intent_id,
        refund_id=e.refund_id,
        amount_cents=late["amount"],
        currency=late["currency"],
        reason=late["reason"],
        refunded_at=e.refunded_at,
        ledger_transaction_id=str(e.ledger_transaction_id) if e.ledger_transaction_id else None,
    )


@outbox.maps(Tier.Defined)
def _tier_defined(e: Any) -> published.TierDefined:
    return published.TierDefined(
        tier_id=str(e.originator_id),
        artist_id=e.artist_id,
        name=e.name,
        price_cents=e.price_cents,
        currency=e.currency,
        interval=e.interval,
        defined_at=e.defined_at,
    )


@outbox.maps(Tier.Archived)
def _tier_archived(e: Any) -> published.TierArchived | None:
    artist_id = getattr(e, "artist_id", None)
    if not artist_id:  # archived before the event carried its artist: nothing to say it with
        return None
    return published.TierArchived(
        tier_id=str(e.originator_id), artist_id=artist_id, archived_at=e.archived_at
    )


def _subscription(e: Any) -> dict[str, Any]:
    return {
        "subscription_id": str(e.originator_id),
        "fan_id": e.facts["fan_id"],
        "artist_id": e.facts["artist_id"],
        "tier_id": e.facts["tier_id"],
        "price_cents": e.facts["price_cents"],
        "currency": e.facts["currency"],
        "interval": e.facts["interval"],
        "current_period_end": e.current_period_end,
        "tier_name": e.facts.get("tier_name") or None,
    }


@outbox.maps(Subscription.Started)
def _started(e: Any) -> published.SubscriptionStarted:
    return published.SubscriptionStarted(**_subscription(e), started_at=e.started_at)


@outbox.maps(Subscription.Renewed)
def _renewed(e: Any) -> published.SubscriptionRenewed:
    return published.SubscriptionRenewed(**_subscription(e), renewed_at=e.renewed_at)


@outbox.maps(Subscription.FellPastDue)
def _past_due(e: Any) -> published.SubscriptionPastDue:
    return published.SubscriptionPastDue(**_subscription(e), fell_past_due_at=e.fell_past_due_at)


@outbox.maps(Subscription.Canceled)
def _canceled(e: Any) -> published.SubscriptionCanceled | None:
    if not e.facts.get("started"):  # never paid, never started: nothing ends for anyone
        return None
    return published.SubscriptionCanceled(**_subscription(e), canceled_at=e.canceled_at)


@outbox.maps(LedgerTransaction.Recorded)
def _recorded(e: Any) -> published.LedgerTransactionRecorded:
    return published.LedgerTransactionRecorded(
        txn_id=str(e.originator_id),
        currency=e.currency,
        legs=[
            published.LedgerLeg(
                account=leg["account"],
                direction=leg["direction"],
                amount_cents=leg["amount"],
                event_source=leg["event_source"] or e.event_source,
            )
            for leg in e.legs
        ],
        event_source=e.event_source,
        reference_id=e.reference_id,
        reverses=str(e.reverses) if e.reverses else None,
        created_at=e.timestamp,
    )
