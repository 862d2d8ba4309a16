"""The route table: which service answers which client path, how long it may take, who may
call it and which rate-limit budget it draws on. One table, read top to bottom.

Paths are the seeds' own (AudiFi, Coda Collective, Stoned Rabbits, the creator treasury,
Bucket & MediaID), under `/api/v1` on the gateway; the upstream path is the client path with
`/api/v1` stripped (`/api/v1/masters/7/ipo` -> nft's `/masters/7/ipo`). A prefix matches a
whole path segment (`/user` matches `/user/holdings`, not `/users/me`); the longest matching
prefix wins, and among equal prefixes an entry limited to the request's method beats one that
is not.

Access. Every route needs a verified access token unless marked public, because the seeds ask
for it (the treasury: "all endpoints require a JWT"; AudiFi's services act for a signed-in
user). Public are only:

* the ways to get a token: signup, login, magic link and its verification, refresh, the 2FA
  code check of a login (it runs before the caller has an access token), the wallet challenge
  and signature (Stoned Rabbits), Coda's connect-wallet, and auth's JWKS;
* Coda's project catalogue (`GET /projects...`): its seed marks only creating a project as
  "authenticated users only", so a fan browses projects before signing up. Masters stay
  private: their routes list shareholders and holdings, which are personal;
* Stripe's webhook (`/webhooks/stripe`, the AudiFi seed's `/payments/webhook` and the
  treasury's `/stripe/webhook`): Stripe signs it and the payment service verifies that
  signature; it has no user token;
* `/dev/mail`, the local SMTP sink's mailbox of embedded mode (§6), so a developer can read the
  magic-link mail that signs them in. notify serves it only when it runs that sink.

Marking a route public only drops the edge check: services verify tokens again (zero trust).

Methods. An entry limited to some methods answers the others with 405 METHOD_NOT_ALLOWED and
an `Allow` header, as does any path for a method outside `METHODS` (TRACE, CONNECT, ...); an
entry for every method takes all of `METHODS`. OPTIONS is the gateway's own to answer, from
this table.

Bodies. A request body is read whole at the edge before it is forwarded, up to the route's
`max_body` (None: the gateway's AUDIFI_MAX_BODY); a route that takes uploads names its own.

Rate-limit classes (limits in `ratelimit`): `auth` for the credential endpoints (brute force),
`write` for calls that move money or mint, `ingest` for analytics event ingestion, `webhook`
for Stripe, `default` for everything else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

API_PREFIX = "/api/v1"
UPLOAD_BODY = 201 * 1024 * 1024  # one file of up to 200 MiB and its form's fields


class Access(StrEnum):
    PUBLIC = "public"
    AUTHENTICATED = "authenticated"


PUBLIC = Access.PUBLIC


@dataclass(frozen=True, slots=True)
class Route:
    prefix: str
    service: str
    timeout: float = 10.0
    access: Access = Access.AUTHENTICATED
    rate_class: str = "default"
    # None: every method of METHODS; else only these (upper case).
    methods: frozenset[str] | None = None
    # Largest request body in bytes; None: the gateway's default (GatewayConfig.max_body).
    max_body: int | None = None

    @property
    def public(self) -> bool:
        return self.access is Access.PUBLIC

    @property
    def allowed(self) -> frozenset[str]:
        return METHODS if self.methods is None else self.methods | {"OPTIONS"}

    def takes(self, path: str) -> bool:
        return path == self.prefix or path.startswith(f"{self.prefix}/")

    def covers(self, path: str, method: str) -> bool:
        return self.takes(path) and method in self.allowed


# What the gateway forwards at all; OPTIONS it answers itself.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
READS = frozenset({"GET", "HEAD"})

ROUTES: tuple[Route, ...] = (
    # auth: accounts, sessions, 2FA, wallets, profiles, MediaID preferences, its signing keys
    Route("/auth", "auth", timeout=5),
    Route("/auth/signup", "auth", timeout=5, access=PUBLIC, rate_class="auth"),
    Route("/auth/login", "auth", timeout=5, access=PUBLIC, rate_class="auth"),
    Route("/auth/magic-link", "auth", timeout=5, access=PUBLIC, rate_class="auth"),
    Route("/auth/verify-magic-link", "auth", timeout=5, access=PUBLIC, rate_class="auth"),
    Route("/auth/refresh", "auth", timeout=5, access=PUBLIC, rate_class="auth"),
    Route("/auth/2fa/verify", "auth", timeout=5, access=PUBLIC, rate_class="auth"),
    Route("/auth/request-challenge", "auth", timeout=5, access=PUBLIC, rate_class="auth"),
    Route("/auth/verify-signature", "auth", timeout=5, access=PUBLIC, rate_class="auth"),
    Route("/auth/connect-wallet", "auth", timeout=5, access=PUBLIC, rate_class="auth"),
    Route("/.well-known/jwks.json", "auth", timeout=5, access=PUBLIC),
    Route("/users", "auth", timeout=5),
    Route("/mediaid", "auth", timeout=5),
    # nft: masters, IPOs, shares and holdings, Coda projects, investments and milestones,
    # revenue-pass distributions, the content locker
    # Uploads: a master's audio and cover (200 MiB each), a locker item (200 MiB), a proof.
    Route("/masters", "nft", timeout=120, max_body=UPLOAD_BODY * 2),
    Route("/ipos", "nft", timeout=30),
    Route("/user", "nft"),  # /user/holdings, /user/investments
    Route("/projects", "nft"),
    Route("/projects", "nft", access=PUBLIC, methods=READS),
    Route("/investments", "nft"),
    Route("/milestones", "nft", max_body=26 * 1024 * 1024),  # proof files: 25 MiB and a form
    Route("/distributions", "nft"),
    Route("/revenue-pass", "nft"),
    Route("/content", "nft"),
    Route("/artists", "nft", timeout=120, max_body=UPLOAD_BODY),  # /artists/{id}/content
    # the chain and the platform contracts' addresses and ABIs, for wallets and dApps
    Route("/chain", "nft", access=PUBLIC, methods=READS),
    # vstudio: studio sessions, decisions, votes, the lock; its WebSocket (`websocket`)
    Route("/vstudio", "vstudio", timeout=120, max_body=UPLOAD_BODY),  # producers' takes
    # coin: artist coins, staking, pools, the lottery
    Route("/coins", "coin", timeout=30),
    # a deploy mints a supply, `/rewards` and `/custody` have the operator send transactions
    Route("/coins", "coin", timeout=30, rate_class="write", methods=frozenset({"POST"})),
    Route("/staking", "coin", timeout=30),
    Route("/pool", "coin", timeout=30),
    Route("/lottery", "coin", timeout=30),
    Route("/lottery/purchase", "coin", timeout=30, rate_class="write"),
    Route("/lottery/burn-claim", "coin", timeout=30, rate_class="write"),
    # payment: checkout, subscriptions and tiers, the ledger, splits, payouts, refunds,
    # disputes, reports, admin override and audit, Utility Factory orders, Stripe webhooks
    Route("/payments", "payment"),
    Route("/payments/checkout", "payment", rate_class="write"),
    Route("/payments/webhook", "payment", access=PUBLIC, rate_class="webhook"),
    Route("/webhooks/stripe", "payment", access=PUBLIC, rate_class="webhook"),
    Route("/stripe/webhook", "payment", access=PUBLIC, rate_class="webhook"),
    Route("/checkout", "payment", rate_class="write"),
    Route("/subscriptions", "payment"),
    Route("/tiers", "payment"),
    Route("/ledger", "payment"),
    Route("/balances", "payment"),
    Route("/connect/accounts", "payment", rate_class="write"),
    Route("/split-rules", "payment"),
    Route("/splits", "payment"),
    Route("/payouts", "payment", rate_class="write"),
    Route("/refunds", "payment", rate_class="write"),
    Route("/disputes", "payment"),
    Route("/reports", "payment", timeout=30),
    Route("/orders", "payment"),
    Route("/utility-factory", "payment"),
    Route("/admin/override", "payment"),
    Route("/audit", "payment"),
    # analytics: event ingestion, dashboards, master/artist/brand analytics, campaigns,
    # engagement, anomalies
    Route("/events", "analytics", timeout=5, rate_class="ingest"),
    Route("/analytics", "analytics"),
    Route("/campaigns", "analytics"),
    Route("/engagement", "analytics"),
    Route("/anomalies", "analytics"),
    Route("/ai/anomalies", "analytics"),
    # notify: notification history, the embedded mail sink
    Route("/notifications", "notify"),
    Route("/dev/mail", "notify", access=PUBLIC),
)


class RouteTable:
    """Finds the route of a client path (without `/api/v1`)."""

    def __init__(self, routes: Iterable[Route] = ROUTES) -> None:
        self.routes: tuple[Route, ...] = tuple(routes)
        seen: set[tuple[str, frozenset[str] | None]] = set()
        for route in self.routes:
            if not route.prefix.startswith("/") or route.prefix.endswith("/"):
                raise ValueError(f"route prefix {route.prefix!r} must start and not end with /")
            if (route.prefix, route.methods) in seen:
                raise ValueError(f"route prefix {route.prefix!r} is in the table twice")
            seen.add((route.prefix, route.methods))
        # Most specific first: the longest prefix, then an entry limited to some methods.
        ranked = sorted(self.routes, key=lambda r: (len(r.prefix), r.methods is not None))
        self._by_segment: dict[str, list[Route]] = {}
        for route in reversed(ranked):
            self._by_segment.setdefault(_first_segment(route.prefix), []).append(route)

    def match(self, path: str, method: str) -> Route | None:
        for route in self._by_segment.get(_first_segment(path), ()):
            if route.covers(path, method):
                return route
        return None

    def allowed(self, path: str) -> tuple[str, ...]:
        """Every method some route takes `path` with, in the usual order; () for no route.

        A method one entry refuses may fall through to a shorter prefix that takes it
        (`match`), so the methods of every entry taking the path count.
        """
        methods: set[str] = set()
        for route in self._by_segment.get(_first_segment(path), ()):
            if route.takes(path):
                methods |= route.allowed
        return tuple(m for m in _METHOD_ORDER if m in methods)

    @property
    def services(self) -> Sequence[str]:
        """Every upstream, in table order."""
        return tuple(dict.fromkeys(r.service for r in self.routes))


def _first_segment(path: str) -> str:
    return path.split("/", 2)[1] if path.startswith("/") else ""
