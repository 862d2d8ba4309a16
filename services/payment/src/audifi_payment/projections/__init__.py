"""The payment service's read models, fed from its own notification log: the ledger's entries and
balances, subscriptions, payouts and reports. None is built yet.
"""
