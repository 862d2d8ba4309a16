"""The payment service's aggregates and rules: plain Python, no I/O, no framework.

Will hold Checkout, Subscription, LedgerTransaction, SplitRule, Payout, Refund, Dispute,
ConnectAccount, ServiceOrder and Report; none is built yet.
"""
