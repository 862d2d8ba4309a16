"""The payment service's aggregates and rules: plain Python, no I/O, no framework.

Built: the double-entry ledger (`ledger.py`: LedgerTransaction, AccountGuard; `accounts.py`:
the chart of accounts and their flags), split rules and the allocation of cents
(`split_rule.py`, `allocation.py`), tiers and subscriptions (`tier.py`, `subscription.py`),
orders (`order.py`). To come (issue 17): Payout, Refund, Dispute, ConnectAccount,
ServiceOrder, Report.
"""
