"""Money moving on a card: PaymentIntents, Charges, BalanceTransactions and Refunds.

A charge that pays books a balance transaction with Stripe's US card fee — 2.9 % of the amount
rounded half up, plus 30 cents — so whoever books it can read gross, fee and net exactly as
from Stripe (`payment_intent.latest_charge.balance_transaction`). A refund books a negative
balance transaction and returns no fee, as Stripe does.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from audifi_stripe_local import cards
from audifi_stripe_local.api import (
    answer,
    integer,
    metadata,
    only,
    params,
    read_routes,
)
from audifi_stripe_local.cards import DECLINED
from audifi_stripe_local.errors import StripeError, invalid
from audifi_stripe_local.store import Obj, Store, new_id

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def stripe_fee(amount: int) -> int:
    return (amount * 29 + 500) // 1000 + 30


class Payments:
    def __init__(self, store: Store) -> None:
        self.store = store

    def intent(
        self,
        *,
        amount: int,
        currency: str,
        customer: str | None,
        at: int,
        metadata: dict[str, str] | None = None,
        description: str | None = None,
    ) -> Obj:
        id = new_id("pi_")
        return self.store.add(
            {
                "id": id,
                "object": "payment_intent",
                "amount": amount,
                "amount_received": 0,
                "currency": currency,
                "customer": customer,
                "description": description,
                "metadata": dict(metadata or {}),
                "status": "requires_payment_method",
                "latest_charge": None,
                "payment_method": None,
                "last_payment_error": None,
                "capture_method": "automatic",
                "confirmation_method": "automatic",
                "payment_method_types": ["card"],
                "client_secret": f"{id}_secret_{new_id('')}",
                "canceled_at": None,
                "cancellation_reason": None,
                "created": at,
                "livemode": False,
            }
        )

    def confirm(self, pi: Obj, card: Any, at: int) -> Obj:
        """Charge `card` for the intent; the charge it made, paid or declined. Events as
        Stripe sends them: charge.succeeded + payment_intent.succeeded, or charge.failed +
        payment_intent.payment_failed (the intent then waits for another card)."""
        decline = cards.decline_code(cards.number_of(card))
        charge = self.store.add(
            {
                "id": new_id("ch_"),
                "object": "charge",
                "amount": pi["amount"],
                "amount_captured": 0,
                "amount_refunded": 0,
                "currency": pi["currency"],
                "customer": pi["customer"],
                "description": pi["description"],
                "metadata": dict(pi["metadata"]),
                "payment_intent": pi["id"],
                "payment_method": card.id,
                "payment_method_details": {"type": "card", "card": cards.card_details(card)},
                "billing_details": getattr(card, "billing_details", None) or {},
                "balance_transaction": None,
                "captured": False,
                "paid": False,
                "refunded": False,
                "status": "failed",
                "failure_code": None,
                "failure_message": None,
                "outcome": None,
                "created": at,
                "livemode": False,
            }
        )
        pi["latest_charge"] = charge["id"]
        if decline is None:
            txn = self.balance_transaction(
                amount=charge["amount"],
                currency=charge["currency"],
                fee=stripe_fee(charge["amount"]),
                source=charge["id"],
                type="charge",
                at=at,
            )
            charge.update(
                amount_captured=charge["amount"],
                balance_transaction=txn["id"],
                captured=True,
                paid=True,
                status="succeeded",
                outcome={
                    "network_status": "approved_by_network",
                    "reason": None,
                    "seller_message": "Payment complete.",
                    "type": "authorized",
                },
            )
            pi.update(
                status="succeeded",
                amount_received=pi["amount"],
                payment_method=card.id,
                last_payment_error=None,
            )
            self.store.emit("charge.succeeded", charge)
            self.store.emit("payment_intent.succeeded", pi)
        else:
            charge.update(
                failure_code="card_declined",
                failure_message=DECLINED,
                outcome={
                    "network_status": "declined_by_network",
                    "reason": decline,
                    "seller_message": "The bank did not return any further details "
                    "with this decline.",
                    "type": "issuer_declined",
                },
            )
            pi.update(
                status="requires_payment_method",
                payment_method=None,
                last_payment_error={
                    "type": "card_error",
                    "code": "card_declined",
                    "decline_code": decline,
                    "message": DECLINED,
                    "charge": charge["id"],
                    "payment_method": {"id": card.id, "object": "payment_method"},
                },
            )
            self.store.emit("charge.failed", charge)
            self.store.emit("payment_intent.payment_failed", pi)
        return charge

    def cancel(self, pi: Obj, reason: str, at: int) -> None:
        if pi["status"] in ("succeeded", "canceled"):
            return
        pi.update(status="canceled", canceled_at=at, cancellation_reason=reason)
        self.store.emit("payment_intent.canceled", pi)

    def balance_transaction(
        self, *, amount: int, currency: str, fee: int, source: str, type: str, at: int
    ) -> Obj:
        fee_details = (
            [
                {
                    "amount": fee,
                    "currency": currency,
                    "type": "stripe_fee",
                    "description": "Stripe processing fees",
                    "application": None,
                }
            ]
            if fee
            else []
        )
        return self.store.add(
            {
                "id": new_id("txn_"),
                "object": "balance_transaction",
                "amount": amount,
                "currency": currency,
                "fee": fee,
                "fee_details": fee_details,
                "net": amount - fee,
                "source": source,
                "type": type,
                "reporting_category": type,
                "status": "available",
                "available_on": at,
                "description": None,
                "exchange_rate": None,
                "created": at,
            }
        )

    def refund(self, data: dict[str, Any]) -> Obj:
        only(data, ("payment_intent", "charge", "amount", "reason", "metadata"))
        if bool(data.get("payment_intent")) == bool(data.get("charge")):
            raise StripeError(400, "Provide exactly one of `payment_intent` or `charge`.")
        if data.get("payment_intent"):
            pi = self.store.get(data["payment_intent"], "payment_intent", "payment_intent")
            if pi["status"] != "succeeded":
                raise StripeError(
                    400,
                    f"This PaymentIntent ({pi['id']}) does not have a successful charge to refund.",
                    param="payment_intent",
                )
            charge = self.store.get(pi["latest_charge"], "charge")
        else:
            charge = self.store.get(data["charge"], "charge", "charge")
            if not charge["paid"]:
                raise StripeError(400, "Cannot refund a failed payment.", param="charge")
        remaining = charge["amount"] - charge["amount_refunded"]
        if remaining == 0:
            raise StripeError(
                400,
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = remaining
        if data.get("amount") is not None:
            amount = integer(data["amount"], "amount", minimum=1)
        if amount > remaining:
            raise StripeError(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining})",
                code="amount_too_large",
                param="amount",
            )
        reason = data.get("reason")
        if reason is not None and reason not in REFUND_REASONS:
            raise invalid("reason", f"Invalid reason: must be one of {', '.join(REFUND_REASONS)}")
        at = self.store.now_for(charge["customer"])
        refund_id = new_id("re_")
        txn = self.balance_transaction(
            amount=-amount,
            currency=charge["currency"],
            fee=0,
            source=refund_id,
            type="refund",
            at=at,
        )
        refund = self.store.add(
            {
                "id": refund_id,
                "object": "refund",
                "amount": amount,
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": charge["payment_intent"],
                "status": "succeeded",
                "reason": reason,
                "metadata": metadata(data.get("metadata")),
                "balance_transaction": txn["id"],
                "receipt_number": None,
                "created": at,
            }
        )
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        self.store.emit("charge.refunded", charge, previous)
        self.store.emit("refund.created", refund)
        return refund

    def routes(self) -> list[web.RouteDef]:
        async def create_refund(request: web.Request) -> web.Response:
            data = await params(request)
            expand = data.pop("expand", None)
            return answer(self.store.render(self.refund(data), expand))

        return [
            web.post("/v1/refunds", create_refund),
            *read_routes(self.store, "refund", "/v1/refunds", ("charge", "payment_intent")),
            *read_routes(self.store, "payment_intent", "/v1/payment_intents", ("customer",)),
            *read_routes(self.store, "charge", "/v1/charges", ("customer", "payment_intent")),
            *read_routes(
                self.store, "balance_transaction", "/v1/balance_transactions", ("source", "type")
            ),
        ]
