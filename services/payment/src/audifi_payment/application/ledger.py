"""The double-entry ledger: transactions, two-phase holds, reversals, flagged balances."""

from __future__ import annotations

from audifi_payment.application.core import PaymentCore


class LedgerCommands(PaymentCore):
    """The double-entry ledger: transactions, two-phase holds, reversals, flagged balances."""
