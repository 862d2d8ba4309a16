"""Orders: how nft, coin and payment itself sell through one contract."""

from __future__ import annotations

from audifi_payment.application.core import PaymentCore


class OrderCommands(PaymentCore):
    """Orders: how nft, coin and payment itself sell through one contract."""
