"""Stripe's test cards: which numbers pay, which are declined, and when.

As in Stripe's test mode: 4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined
(`card_declined`, decline code `generic_decline`) both when charged and when saved to a
customer; 4000 0000 0000 0341 can be saved but every charge on it is declined — the card
to make a subscription's renewal fail. Any other number is `invalid_number`.

Cards are localstripe PaymentMethod objects (ids pm_...), so `GET /v1/payment_methods/{id}`
and `POST /v1/payment_methods/{id}/attach` answer for them from localstripe.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from localstripe.resources import Card, PaymentMethod

DECLINED = "Your card was declined."
PAYS = {"4242424242424242", "5555555555554444"}
# number -> Stripe's decline_code when charged
DECLINES = {
    "4000000000000002": "generic_decline",
    "4000000000009995": "insufficient_funds",
    "4000000000000341": "generic_decline",
}
# Saving (attaching) these already fails, as in Stripe; 0341 is saved and fails later.
REFUSED_WHEN_SAVED = {"4000000000000002", "4000000000009995"}

# Stripe's test PaymentMethod ids (https://docs.stripe.com/testing#cards): a card object is
# made for them whenever they are named.
TEST_PAYMENT_METHODS = {
    "pm_card_visa": "4242424242424242",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_visa_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_chargeCustomerFail": "4000000000000341",
}


CARD_FIELDS = ("brand", "last4", "exp_month", "exp_year", "fingerprint", "funding", "country")


def known(number: str) -> bool:
    return number in PAYS or number in DECLINES


def decline_code(number: str) -> str | None:
    """None when a charge on this card succeeds."""
    return DECLINES.get(number)


def number_of(card: Any) -> str:
    """The full number behind a localstripe card object (it keeps it privately)."""
    return str(card._card_number)


def new_card(number: str, exp_month: int, exp_year: int, cvc: str, email: str | None):
    """A PaymentMethod for a card typed on one of our pages."""
    return PaymentMethod(
        type="card",
        card={"number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc},
        billing_details={"email": email},
    )


def test_payment_method(id: str) -> PaymentMethod | None:
    number = TEST_PAYMENT_METHODS.get(id)
    if number is None:
        return None
    return new_card(number, 12, 2034, "123", None)


def card_details(card: Any) -> dict[str, Any]:
    """What a charge shows of the card it was paid with (`payment_method_details.card`)."""
    if isinstance(card, Card):
        details = {k: getattr(card, k) for k in ("last4", "exp_month", "exp_year", "fingerprint")}
        return {"brand": "visa", "funding": "credit", "country": "US", **details}
    return {k: card.card.get(k) for k in CARD_FIELDS}


class CardProblem(Exception):
    """A typed card Stripe would refuse before any charge: `code` as Stripe names it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def typed_card(form: Mapping[str, str]) -> tuple[str, int, int, str]:
    """Number, expiry month and year, and CVC from a card form (`card_number`, `exp` as
    "MM / YY", `cvc`); expiry and CVC may be left out, as a test that only names the card
    number does."""
    number = "".join(ch for ch in form.get("card_number", "") if ch not in " -")
    if not number.isdigit() or not known(number):
        raise CardProblem("invalid_number", "Your card number is invalid.")
    month_text, _, year_text = (form.get("exp") or "12 / 34").replace(" ", "").partition("/")
    try:
        month, year = int(month_text), int(year_text)
    except ValueError:
        raise CardProblem(
            "invalid_expiry_month", "Your card's expiration date is invalid."
        ) from None
    year += 2000 if year < 100 else 0
    now = time.gmtime()
    if not 1 <= month <= 12 or not (now.tm_year, now.tm_mon) <= (year, month) or year >= 2100:
        raise CardProblem("invalid_expiry_year", "Your card's expiration date is invalid.")
    cvc = (form.get("cvc") or "123").strip()
    if not (cvc.isdigit() and len(cvc) == 3):
        raise CardProblem("invalid_cvc", "Your card's security code is invalid.")
    return number, month, year, cvc
