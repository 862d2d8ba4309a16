"""Split rules: recipients in basis points, one default per owner."""

from __future__ import annotations

from audifi_payment.application.core import PaymentCore


class SplitRuleCommands(PaymentCore):
    """Split rules: recipients in basis points, one default per owner."""
