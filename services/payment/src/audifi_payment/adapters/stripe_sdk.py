"""The `Stripe` port over the official `stripe` SDK, and the check of Stripe's webhook signature.

The same calls reach real Stripe (`STRIPE_SECRET_KEY`, no `api_base`) or the local Stripe of
`make run` and the tests (`api_base` = its URL): nothing else differs. The SDK's async methods
run on httpx, so no call holds a thread. Every refusal of Stripe becomes a
`PaymentProviderError` (502) whose message is Stripe's own text and code, never the key; a card
declined is not one of them: it happens on the pay page, and reaches us as events.

The `*_view` functions read Stripe's JSON (as the SDK's `to_dict()` gives it, or as the
in-memory twin keeps it) into the port's views, accepting both the newer shapes of the API
version SDK 16 pins (a subscription's period on its items, an invoice's subscription under
`parent`) and the older ones.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

import stripe
from audifi_kit.errors import PaymentProviderError, ValidationFailed

from audifi_payment.application.stripe_port import (
    REFUND_REASONS,
    ChargeView,
    CheckoutRequest,
    CheckoutSessionView,
    ConnectAccountView,
    InvoiceView,
    RefundView,
    SubscriptionView,
)

Json = dict[str, Any]


class StripeSdk:
    """The port over `stripe.StripeClient`; `aclose()` when the service stops."""

    def __init__(self, api_key: str, *, api_base: str | None = None) -> None:
        self._key = api_key
        self._http = stripe.HTTPXClient()
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=self._http,
        )

    async def aclose(self) -> None:
        await self._http.close_async()

    async def _call(self, request: Awaitable[Any]) -> Json:
        try:
            answer = await request
        except stripe.StripeError as exc:
            raise provider_error(exc, self._key) from None
        return answer.to_dict()

    async def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSessionView:
        line = request.line
        price: Json = {
            "currency": line.currency.lower(),
            "unit_amount": line.unit_amount,
            "product_data": {"name": line.name},
        }
        if line.interval:
            price["recurring"] = {"interval": line.interval}
        params: Json = {
            "mode": request.mode,
            "line_items": [{"price_data": price, "quantity": line.quantity}],
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "client_reference_id": request.client_reference_id,
        }
        if request.metadata:
            params["metadata"] = dict(request.metadata)
            # Also on the object the money lands on, so its events name our order or
            # subscription without another read.
            carrier = "payment_intent_data" if request.mode == "payment" else "subscription_data"
            params[carrier] = {"metadata": dict(request.metadata)}
        if request.expires_at is not None:
            params["expires_at"] = int(request.expires_at.timestamp())
        if request.customer_id:
            params["customer"] = request.customer_id
        if request.customer_email:
            params["customer_email"] = request.customer_email
        session = await self._call(
            self._client.v1.checkout.sessions.create_async(
                params, options=_idempotent(request.idempotency_key)
            )
        )
        return session_view(session)

    async def checkout_session(self, session_id: str) -> CheckoutSessionView:
        return session_view(
            await self._call(self._client.v1.checkout.sessions.retrieve_async(session_id))
        )

    async def expire_checkout_session(self, session_id: str) -> CheckoutSessionView:
        return session_view(
            await self._call(self._client.v1.checkout.sessions.expire_async(session_id))
        )

    async def charge_of_payment_intent(self, payment_intent_id: str) -> ChargeView | None:
        intent = await self._call(
            self._client.v1.payment_intents.retrieve_async(
                payment_intent_id, {"expand": ["latest_charge.balance_transaction"]}
            )
        )
        charge = intent.get("latest_charge")
        return charge_view(charge) if charge else None

    async def charge(self, charge_id: str) -> ChargeView:
        return charge_view(
            await self._call(
                self._client.v1.charges.retrieve_async(
                    charge_id, {"expand": ["balance_transaction"]}
                )
            )
        )

    async def subscription(self, subscription_id: str) -> SubscriptionView:
        return subscription_view(
            await self._call(
                self._client.v1.subscriptions.retrieve_async(
                    subscription_id, {"expand": ["latest_invoice"]}
                )
            )
        )

    async def cancel_subscription_at_period_end(self, subscription_id: str) -> SubscriptionView:
        return subscription_view(
            await self._call(
                self._client.v1.subscriptions.update_async(
                    subscription_id,
                    {"cancel_at_period_end": True, "expand": ["latest_invoice"]},
                )
            )
        )

    async def invoice(self, invoice_id: str) -> InvoiceView:
        invoice = await self._call(self._client.v1.invoices.retrieve_async(invoice_id))
        if "charge" not in invoice and "payment_intent" not in invoice:
            # API versions since 2025-03-31 moved the payment to `invoice.payments`.
            payments = await self._call(
                self._client.v1.invoice_payments.list_async(
                    {"invoice": invoice_id, "expand": ["data.payment.payment_intent"]}
                )
            )
            paid = [p["payment"] for p in payments["data"] if p.get("status") == "paid"]
            intent = paid[0].get("payment_intent") if paid else None
            if isinstance(intent, dict):
                invoice["payment_intent"] = intent["id"]
                invoice["charge"] = intent.get("latest_charge")
        return invoice_view(invoice)

    async def refund(
        self, *, payment_intent_id: str, amount: int | None, idempotency_key: str, reason: str
    ) -> RefundView:
        check_refund_reason(reason)
        params: Json = {"payment_intent": payment_intent_id, "reason": reason}
        if amount is not None:
            params["amount"] = amount
        return refund_view(
            await self._call(
                self._client.v1.refunds.create_async(params, options=_idempotent(idempotency_key))
            )
        )

    async def create_customer(self, *, email: str | None, account_id: str) -> str:
        params: Json = {"metadata": {"account_id": account_id}}
        if email:
            params["email"] = email
        customer = await self._call(self._client.v1.customers.create_async(params))
        return str(customer["id"])

    async def portal_session(self, *, customer_id: str, return_url: str) -> str:
        session = await self._call(
            self._client.v1.billing_portal.sessions.create_async(
                {"customer": customer_id, "return_url": return_url}
            )
        )
        return str(session["url"])

    async def create_connect_account(self, *, email: str | None, account_id: str) -> str:
        params: Json = {
            "type": "express",
            "metadata": {"account_id": account_id},
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
        }
        if email:
            params["email"] = email
        account = await self._call(self._client.v1.accounts.create_async(params))
        return str(account["id"])

    async def connect_account(self, connect_account_id: str) -> ConnectAccountView:
        return account_view(
            await self._call(self._client.v1.accounts.retrieve_async(connect_account_id))
        )

    async def onboarding_link(
        self, *, connect_account_id: str, refresh_url: str, return_url: str
    ) -> str:
        link = await self._call(
            self._client.v1.account_links.create_async(
                {
                    "account": connect_account_id,
                    "type": "account_onboarding",
                    "refresh_url": refresh_url,
                    "return_url": return_url,
                }
            )
        )
        return str(link["url"])


def verify_webhook(
    payload: bytes, signature_header: str, secret: str, tolerance: int = 300
) -> dict[str, Any]:
    """The event Stripe signed, as a plain dict; `ValidationFailed` (400, INVALID_SIGNATURE)
    when the signature does not match the body and secret, or is older than `tolerance`
    seconds (a replay of a captured request)."""
    try:
        event = stripe.Webhook.construct_event(payload, signature_header, secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        if "tolerance" in (exc.user_message or ""):
            message = f"The Stripe-Signature is stale: signed more than {tolerance} s ago"
        else:
            message = "The Stripe-Signature does not match the payload (mismatch)"
        raise ValidationFailed(message, code="INVALID_SIGNATURE") from None
    except ValueError:  # signed, but not a JSON Stripe event
        raise ValidationFailed("The webhook body is not a Stripe event") from None
    return event.to_dict()


def check_refund_reason(reason: str) -> None:
    if reason not in REFUND_REASONS:
        message = f"A refund reason is one of {', '.join(REFUND_REASONS)}"
        raise ValidationFailed(
            message, details={"fields": [{"field": "reason", "message": message}]}
        )


def refused(
    message: str, *, code: str | None, status: int | None, param: str | None = None
) -> PaymentProviderError:
    """The error for a request Stripe refused: its message and code, for the client."""
    details = {"stripeCode": code, "stripeStatus": status, "stripeParam": param}
    return PaymentProviderError(
        f"Stripe: {message}" + (f" ({code})" if code else ""),
        details={k: v for k, v in details.items() if v is not None},
    )


def provider_error(exc: stripe.StripeError, api_key: str) -> PaymentProviderError:
    message = exc.user_message or "the request failed"
    if api_key:
        message = message.replace(api_key, "[key]")
    return refused(
        message, code=exc.code, status=exc.http_status, param=getattr(exc, "param", None)
    )


def _idempotent(key: str | None) -> stripe.RequestOptions | None:
    return {"idempotency_key": key} if key else None


def _ts(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(int(value), UTC)


def _id(value: Any) -> str | None:
    """The id of a field Stripe gives as an id, or as the object when expanded."""
    return value["id"] if isinstance(value, dict) else value


def session_view(session: Json) -> CheckoutSessionView:
    return CheckoutSessionView(
        id=session["id"],
        url=session.get("url"),
        mode=session["mode"],
        status=session["status"],
        payment_status=session["payment_status"],
        client_reference_id=session.get("client_reference_id"),
        metadata=dict(session.get("metadata") or {}),
        payment_intent_id=_id(session.get("payment_intent")),
        subscription_id=_id(session.get("subscription")),
        customer_id=_id(session.get("customer")),
        expires_at=_ts(session.get("expires_at")),
    )


def charge_view(charge: Json) -> ChargeView:
    """A charge whose `balance_transaction` is expanded; a charge that moved no money (declined)
    has none, so its fee and net are 0."""
    txn = charge.get("balance_transaction")
    fee, net = (txn["fee"], txn["net"]) if isinstance(txn, dict) else (0, 0)
    return ChargeView(
        id=charge["id"],
        payment_intent_id=_id(charge.get("payment_intent")),
        status=charge["status"],
        paid=bool(charge.get("paid")),
        amount=charge["amount"],
        currency=charge["currency"].upper(),
        fee=fee,
        net=net,
        amount_refunded=charge.get("amount_refunded") or 0,
        created=datetime.fromtimestamp(charge["created"], UTC),
        metadata=dict(charge.get("metadata") or {}),
    )


def subscription_view(subscription: Json) -> SubscriptionView:
    """A subscription whose `latest_invoice` is expanded (else it does not read as paid)."""
    items = (subscription.get("items") or {}).get("data") or []
    period_end = (items[0].get("current_period_end") if items else None) or subscription.get(
        "current_period_end"
    )
    invoice = subscription.get("latest_invoice")
    return SubscriptionView(
        id=subscription["id"],
        status=subscription["status"],
        customer_id=_id(subscription.get("customer")),
        current_period_end=_ts(period_end),
        cancel_at_period_end=bool(subscription.get("cancel_at_period_end")),
        latest_invoice_id=_id(invoice),
        latest_invoice_paid=isinstance(invoice, dict) and invoice.get("status") == "paid",
        metadata=dict(subscription.get("metadata") or {}),
    )


def invoice_view(invoice: Json) -> InvoiceView:
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    return InvoiceView(
        id=invoice["id"],
        status=invoice["status"],
        subscription_id=_id(invoice.get("subscription")) or _id(parent.get("subscription")),
        charge_id=_id(invoice.get("charge")),
        payment_intent_id=_id(invoice.get("payment_intent")),
        amount_paid=invoice.get("amount_paid") or 0,
        currency=invoice["currency"].upper(),
        billing_reason=invoice.get("billing_reason"),
        hosted_invoice_url=invoice.get("hosted_invoice_url"),
    )


def refund_view(refund: Json) -> RefundView:
    return RefundView(
        id=refund["id"],
        status=refund["status"],
        amount=refund["amount"],
        currency=refund["currency"].upper(),
        charge_id=_id(refund.get("charge")),
        payment_intent_id=_id(refund.get("payment_intent")),
    )


def account_view(account: Json) -> ConnectAccountView:
    return ConnectAccountView(
        id=account["id"],
        details_submitted=bool(account.get("details_submitted")),
        charges_enabled=bool(account.get("charges_enabled")),
        payouts_enabled=bool(account.get("payouts_enabled")),
        disabled_reason=(account.get("requirements") or {}).get("disabled_reason"),
        metadata=dict(account.get("metadata") or {}),
    )
