"""The payment service's HTTP API (paths as the gateway forwards them, without `/api/v1`):
checkouts, the Stripe webhook, subscriptions, the ledger, splits, payouts, refunds and disputes.
No route is built yet: the gateway answers 404 in the error envelope.
"""
