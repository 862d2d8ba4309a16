"""Customers are localstripe's, with the one field it lacks: `test_clock`, the Test Clock a
customer lives on (fixed at creation, as in Stripe). Its subscriptions renew when that clock
is advanced past their period end.

A customer's default card is `invoice_settings.default_payment_method`: the last card that
paid on the pay page or was set in the portal, or any card the API sets there (Stripe's test
ids such as `pm_card_chargeDeclined` are accepted).
"""

from __future__ import annotations

from typing import Any

from localstripe.errors import UserError
from localstripe.resources import Customer, PaymentMethod

from audifi_stripe_local.errors import missing


class ClockedCustomer(Customer):
    def __init__(self, test_clock: str | None = None, **data: Any) -> None:
        # Set before localstripe's constructor, which snapshots the customer.created event.
        self.test_clock = test_clock
        super().__init__(**data)


def customer(id: str, param: str = "id") -> Customer:
    try:
        found = Customer._api_retrieve(id)
    except UserError:
        raise missing("customer", id, param) from None
    return found


def clock_of(customer_id: str | None) -> str | None:
    if customer_id is None:
        return None
    return getattr(customer(customer_id), "test_clock", None)


def default_card(cus: Customer) -> Any | None:
    pm_id = cus.invoice_settings.get("default_payment_method")
    if pm_id:
        try:
            return PaymentMethod._api_retrieve(pm_id)
        except UserError:
            return None
    for source in cus.sources._list:
        if source.id == cus.default_source:
            return source
    return None


def save_card(cus: Customer, card: Any) -> None:
    """The card becomes the customer's, and the one its renewals are charged to."""
    card.customer = cus.id
    cus.invoice_settings = {**cus.invoice_settings, "default_payment_method": card.id}
