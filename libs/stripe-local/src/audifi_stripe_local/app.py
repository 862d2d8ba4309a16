"""One aiohttp application: our objects and pages, then localstripe's routes for the rest.

Besides Stripe's API (`/v1/...`, an `sk_...` key required, `Idempotency-Key` honoured as
Stripe does) it serves the pages a person uses (`/pay`, `/portal`, `/onboard`), `/healthz`,
and helpers for tests that are not Stripe's (`/_local/...`): what was delivered to which
webhook URL with which status, re-delivery of an event, and holding events back to release
them in an order a test chooses (`/_local/webhooks/hold`, `/_local/webhooks/release` with
`{"first": [event types]}`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import fnmatch
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import web
from localstripe.errors import UserError

from audifi_stripe_local import localstripe_routes
from audifi_stripe_local.api import PUBLIC_URL, answer, listing, only, params
from audifi_stripe_local.billing import Billing
from audifi_stripe_local.checkout import Checkout
from audifi_stripe_local.clocks import Clocks
from audifi_stripe_local.connect import Connect
from audifi_stripe_local.errors import StripeError
from audifi_stripe_local.payments import Payments
from audifi_stripe_local.portal import Portal
from audifi_stripe_local.prices import Prices
from audifi_stripe_local.store import Store, new_id
from audifi_stripe_local.webhooks import WebhookSender

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STORE = web.AppKey("store", Store)
REPLAYS = web.AppKey("replays", dict)


def api(request: web.Request) -> bool:
    return request.path.startswith("/v1/")


@web.middleware
async def stripe_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except StripeError as exc:
        return exc.response()
    except UserError as exc:  # localstripe's, already in Stripe's shape
        return exc.to_response()
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        if not api(request):
            raise
        return StripeError(
            404, f"Unrecognized request URL ({request.method}: {request.path})."
        ).response()


def api_key(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    key = value
    if scheme == "Basic":
        with contextlib.suppress(binascii.Error, UnicodeDecodeError):
            key = base64.b64decode(value).decode().partition(":")[0]
    elif scheme != "Bearer":
        return None
    return key if key.startswith("sk_") and len(key) > 5 else None


@web.middleware
async def api_keys(request: web.Request, handler: Handler) -> web.StreamResponse:
    if api(request) and api_key(request) is None:
        raise StripeError(
            401,
            "You did not provide an API key. Provide it as a bearer token: "
            "'Authorization: Bearer sk_test_...'.",
        )
    return await handler(request)


@web.middleware
async def idempotency(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A POST retried with the same `Idempotency-Key` gets the first answer again instead of
    doing it twice (the SDK sets a key on every POST and retries on network errors)."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key or not api(request):
        return await handler(request)
    replays = request.app[REPLAYS]
    asked = (request.path, await request.read())
    if key in replays:
        first, status, body = replays[key]
        if first != asked:
            raise StripeError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                "were first used with.",
                type="idempotency_error",
            )
        return web.Response(
            body=body,
            status=status,
            content_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    response = await handler(request)
    if isinstance(response, web.Response) and isinstance(response.body, bytes):
        replays[key] = (asked, response.status, response.body)
    return response


async def request_id(request: web.Request, response: web.StreamResponse) -> None:
    if api(request):
        response.headers["Request-Id"] = new_id("req_")


def event_routes(store: Store) -> list[web.RouteDef]:
    async def retrieve(request: web.Request) -> web.Response:
        return answer(store.event(request.match_info["id"]))

    async def list_all(request: web.Request) -> web.Response:
        data = await params(request)
        only(data, ("type", "types", "limit", "starting_after"))
        patterns = data.get("types") or ([data["type"]] if data.get("type") else ["*"])
        events = [
            e
            for e in reversed(store.events)
            if any(fnmatch.fnmatchcase(e["type"], p) for p in patterns)
        ]
        return answer(listing(events, data, "/v1/events"))

    async def resend(request: web.Request) -> web.Response:
        event = store.event(request.match_info["id"])
        store.sender.send(event)
        return answer({"resent": event["id"]}, status=202)

    async def deliveries(request: web.Request) -> web.Response:
        wanted = {k: request.query[k] for k in ("event", "type", "url") if k in request.query}
        data = [d for d in store.sender.deliveries if all(d[k] == v for k, v in wanted.items())]
        return answer({"object": "list", "data": data, "pending": store.sender.pending})

    async def hold(request: web.Request) -> web.Response:
        store.sender.hold()
        return answer({"holding": True}, status=202)

    async def release(request: web.Request) -> web.Response:
        data = await request.json() if request.can_read_body else {}
        sent = store.sender.release(first=list(data.get("first", [])))
        return answer({"released": sent}, status=202)

    async def health(request: web.Request) -> web.Response:
        return answer({"status": "ok"})

    return [
        web.get("/v1/events/{id}", retrieve),
        web.get("/v1/events", list_all),
        web.post("/_local/events/{id}/resend", resend),
        web.get("/_local/deliveries", deliveries),
        web.post("/_local/webhooks/hold", hold),
        web.post("/_local/webhooks/release", release),
        web.get("/healthz", health),
    ]


def build_app(
    *,
    webhook_urls: Sequence[str] = (),
    webhook_secret: str | None = None,
    public_url: str | None = None,
) -> web.Application:
    sender = WebhookSender(webhook_urls, webhook_secret)
    store = Store(sender)
    localstripe_routes.adapt(store)
    payments = Payments(store)
    prices = Prices(store)
    billing = Billing(store, payments)
    checkout = Checkout(store, prices, payments, billing)

    app = web.Application(middlewares=[stripe_errors, api_keys, idempotency])
    app[STORE] = store
    app[REPLAYS] = {}
    app[PUBLIC_URL] = (public_url or "").rstrip("/")
    app.on_response_prepare.append(request_id)
    app.add_routes(
        [
            *event_routes(store),
            *payments.routes(),
            *prices.routes(),
            *checkout.routes(),
            *billing.routes(),
            *Clocks(store, billing).routes(),
            *Portal(store, billing).routes(),
            *Connect(store).routes(),
        ]
    )
    localstripe_routes.mount(app)

    async def background(app: web.Application) -> AsyncIterator[None]:
        await sender.start()

        async def expire_sessions() -> None:
            while True:
                await asyncio.sleep(1)
                checkout.expire_due()

        sweeper = asyncio.create_task(expire_sessions())
        yield
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await sender.stop()

    app.cleanup_ctx.append(background)
    return app
