"""Subscription tiers and subscriptions, driven by Stripe's objects."""

from __future__ import annotations

from audifi_payment.application.core import PaymentCore


class BillingCommands(PaymentCore):
    """Subscription tiers and subscriptions, driven by Stripe's objects."""
