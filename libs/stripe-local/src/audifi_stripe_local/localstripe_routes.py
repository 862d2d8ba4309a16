"""What we take from localstripe (https://github.com/adrienverge/localstripe), and how.

localstripe answers, in our app, for customers, payment methods, products, plans, coupons,
tax rates, tokens, sources, setup intents and payouts. Its routes are mounted after ours and
left out where we answer the same objects ourselves — the ones it lacks, or has in a shape the
SDK 16 reads wrongly (a PaymentIntent's `latest_charge` nested instead of an id, invoices and
subscriptions without test clocks, no fee on balance transactions, events unordered) — so an
id never lives in two stores.

It is adapted in three ways, process-wide since localstripe keeps its objects in module
globals (one app per process):
- its store is no longer pickled to /tmp/localstripe.pickle on every write (two processes
  would overwrite each other's, and every write would cost a full dump);
- the events it raises (customer.created, customer.updated, product.created) go into our event
  log and out through our webhooks;
- Stripe's test payment method ids it does not know (`pm_card_chargeDeclined`, ...) resolve.
"""

from __future__ import annotations

from typing import Any

import localstripe.resources as resources
import localstripe.server
from aiohttp import web
from localstripe.resources import PaymentMethod

from audifi_stripe_local import cards
from audifi_stripe_local.store import Store

OURS = (
    "/v1/charges",
    "/v1/payment_intents",
    "/v1/balance",
    "/v1/refunds",
    "/v1/invoice",
    "/v1/subscription",
    "/v1/events",
    "/v1/customers/{id}/subscriptions",
    "/_config",
)

_localstripe_test_payment_method = PaymentMethod._try_get_canonical_test_article


def _test_payment_method(cls: type, id: str) -> Any:
    return cards.test_payment_method(id) or _localstripe_test_payment_method(id)


def adapt(store: Store) -> None:
    resources.store.dump_to_disk = lambda: None
    resources.schedule_webhook = store.emit_foreign
    PaymentMethod._try_get_canonical_test_article = classmethod(_test_payment_method)


def mount(app: web.Application) -> None:
    """Adds localstripe's routes to `app`, after and below the ones it already has."""
    taken = {(r.method, path_of(r)) for r in app.router.routes()}
    for route in localstripe.server.app.router.routes():
        path = path_of(route)
        if path.startswith(OURS) or (route.method, path) in taken:
            continue
        app.router.add_route(route.method, path, route.handler)


def path_of(route: web.AbstractRoute) -> str:
    info = route.resource.get_info() if route.resource else {}
    return str(info.get("path") or info.get("formatter"))
