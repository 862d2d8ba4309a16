"""The gateway's rules without I/O: the route table, the breaker's states, its settings."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from audifi_gateway.admission import client_path
from audifi_gateway.app import app as gateway_spec
from audifi_gateway.breaker import BreakerState, CircuitBreaker
from audifi_gateway.config import GatewayConfig
from audifi_gateway.ratelimit import DEFAULT_LIMITS, RateLimit, parse_rate_limits
from audifi_gateway.routes import ROUTES, Route, RouteTable
from audifi_kit.errors import Unavailable
from audifi_kit.settings import DEFAULT_PORTS

TABLE = RouteTable()


@pytest.mark.parametrize(
    ("path", "method", "service"),
    [
        ("/auth/magic-link", "POST", "auth"),
        ("/.well-known/jwks.json", "GET", "auth"),
        ("/users/me", "PUT", "auth"),
        ("/mediaid/preferences", "GET", "auth"),
        ("/masters/7/ipo", "POST", "nft"),
        ("/user/holdings", "GET", "nft"),
        ("/projects/3/fund", "POST", "nft"),
        ("/revenue-pass/distributions/2026-02", "GET", "nft"),
        ("/vstudio/sessions/s1/vote", "POST", "vstudio"),
        ("/lottery/rounds/current", "GET", "coin"),
        ("/coins/a1/stake", "POST", "coin"),
        ("/ledger/entries", "GET", "payment"),
        ("/webhooks/stripe", "POST", "payment"),
        ("/stripe/webhook", "POST", "payment"),
        ("/balances/me", "GET", "payment"),
        ("/connect/accounts", "POST", "payment"),
        ("/utility-factory/project/p1", "GET", "payment"),
        ("/events", "POST", "analytics"),
        ("/ai/anomalies/resolve", "POST", "analytics"),
        ("/dev/mail", "GET", "notify"),
    ],
)
def test_each_seed_route_reaches_the_service_that_owns_it(
    path: str, method: str, service: str
) -> None:
    route = TABLE.match(path, method)
    assert route is not None and route.service == service


def test_the_longest_prefix_wins() -> None:
    assert TABLE.match("/auth/login", "POST").public  # type: ignore[union-attr]
    assert not TABLE.match("/auth/logout", "POST").public  # type: ignore[union-attr]
    assert TABLE.match("/lottery/purchase", "POST").rate_class == "write"  # type: ignore[union-attr]
    assert TABLE.match("/lottery/tickets/0xabc", "GET").rate_class == "default"  # type: ignore[union-attr]
    assert TABLE.match("/coins/a-1/deploy", "POST").rate_class == "write"  # type: ignore[union-attr]
    assert TABLE.match("/coins/a-1/pool", "GET").rate_class == "default"  # type: ignore[union-attr]


def test_a_prefix_matches_whole_segments_only() -> None:
    assert TABLE.match("/user/holdings", "GET").service == "nft"  # type: ignore[union-attr]
    assert TABLE.match("/users/me", "GET").service == "auth"  # type: ignore[union-attr]
    assert TABLE.match("/mastersx", "GET") is None
    assert TABLE.match("/nowhere", "GET") is None


def test_an_entry_for_some_methods_beats_one_for_all() -> None:
    assert TABLE.match("/projects/3", "GET").public  # type: ignore[union-attr]
    assert not TABLE.match("/projects", "POST").public  # type: ignore[union-attr]


def test_only_the_ways_to_get_a_token_signed_webhooks_and_public_reads_are_public() -> None:
    public = {r.prefix for r in ROUTES if r.public}
    assert public == {
        "/auth/signup",
        "/auth/login",
        "/auth/magic-link",
        "/auth/verify-magic-link",
        "/auth/refresh",
        "/auth/2fa/verify",
        "/auth/request-challenge",
        "/auth/verify-signature",
        "/auth/connect-wallet",
        "/.well-known/jwks.json",
        "/projects",
        "/payments/webhook",
        "/webhooks/stripe",
        "/stripe/webhook",
        "/dev/mail",
        "/chain",  # reads only: the chain id and the contracts' addresses and ABIs
    }
    assert TABLE.match("/chain/contracts/Lottery", "GET").public  # type: ignore[union-attr]
    assert TABLE.match("/chain", "POST") is None  # nothing to write there


def test_a_path_allows_the_methods_of_every_entry_that_takes_it() -> None:
    everything = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    assert TABLE.allowed("/chain/contracts") == ("GET", "HEAD", "OPTIONS")
    assert TABLE.allowed("/projects/3") == everything  # public reads, authenticated writes
    assert TABLE.allowed("/auth/login") == everything
    assert TABLE.allowed("/nowhere") == ()
    assert TABLE.match("/auth/login", "TRACE") is None


def test_every_route_names_a_known_service_and_rate_class() -> None:
    assert set(TABLE.services) == set(DEFAULT_PORTS) - {"gateway"}
    assert {r.rate_class for r in ROUTES} <= set(DEFAULT_LIMITS)


def test_a_table_refuses_a_prefix_twice() -> None:
    with pytest.raises(ValueError, match="twice"):
        RouteTable([Route("/a", "nft"), Route("/a", "coin")])


@pytest.mark.parametrize(
    "raw",
    [b"/api/v1/webhooks/stripe/../../ledger", b"/api/v1/auth/login/%2e%2e/x", b"/api/v2/x", b"/"],
)
def test_paths_that_could_escape_their_prefix_are_not_routed(raw: bytes) -> None:
    assert client_path({"type": "http", "path": raw.decode(), "raw_path": raw}) is None


def test_a_breaker_opens_after_consecutive_failures_and_refuses_at_once() -> None:
    now = [0.0]
    breaker = CircuitBreaker("coin", failure_threshold=2, cooldown=5, clock=lambda: now[0])
    breaker.admit()
    breaker.record_failure()
    breaker.admit()
    breaker.record_success()  # a success in between resets the count
    for _ in range(2):
        breaker.admit()
        breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(Unavailable) as refused:
        breaker.admit()
    assert refused.value.headers["Retry-After"] == "5"
    assert refused.value.details == {"service": "coin", "circuit": "open"}


def test_a_half_open_breaker_lets_one_probe_through_and_closes_on_its_success() -> None:
    now = [0.0]
    breaker = CircuitBreaker("coin", failure_threshold=1, cooldown=5, clock=lambda: now[0])
    breaker.admit()
    breaker.record_failure()
    now[0] = 6.0
    breaker.admit()  # the probe
    assert breaker.state is BreakerState.HALF_OPEN
    with pytest.raises(Unavailable):
        breaker.admit()  # others wait for the probe
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    breaker.admit()


def test_a_failed_probe_opens_the_breaker_for_another_cooldown() -> None:
    now = [0.0]
    breaker = CircuitBreaker("coin", failure_threshold=3, cooldown=5, clock=lambda: now[0])
    for _ in range(3):
        breaker.admit()
        breaker.record_failure()
    now[0] = 5.0
    breaker.admit()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    now[0] = 9.0
    with pytest.raises(Unavailable):
        breaker.admit()


def test_rate_limits_are_read_from_the_environment() -> None:
    assert parse_rate_limits("default=300/60, auth=20/60") == {
        "default": RateLimit(300, 60),
        "auth": RateLimit(20, 60),
    }
    config = GatewayConfig.from_env(
        {"AUDIFI_RATE_LIMITS": "auth=5/10", "AUDIFI_CORS_ORIGINS": "https://a.test, https://b.test"}
    )
    assert config.rate_limits["auth"] == RateLimit(5, 10)
    assert config.rate_limits["default"] == DEFAULT_LIMITS["default"]
    assert config.cors_origins == ("https://a.test", "https://b.test")
    with pytest.raises(ValueError, match="AUDIFI_RATE_LIMITS"):
        parse_rate_limits("auth=lots")


def test_body_limits_are_read_from_the_environment() -> None:
    assert (GatewayConfig().max_body, GatewayConfig().body_timeout) == (1024 * 1024, 10.0)
    config = GatewayConfig.from_env({"AUDIFI_MAX_BODY": "2048", "AUDIFI_BODY_TIMEOUT": "2.5"})
    assert (config.max_body, config.body_timeout) == (2048, 2.5)


def test_the_gateway_is_discovered_as_a_deployable() -> None:
    (entry,) = entry_points(group="audifi.apps", name="gateway")
    assert entry.load() is gateway_spec
