"""AudiFi payment service. Stripe checkouts and subscriptions, the double-entry ledger, splits,
payouts, refunds, disputes.
"""
