"""A circuit breaker per upstream service: stop waiting on a service that is down.

Closed, it lets every request through and counts consecutive failures. What counts as a
failure is the upstream not answering at all: a connection refused or reset, or a timeout.
An HTTP answer, even a 5xx, is a success here: the service is up and said something, and its
5xx goes to the client as it is. `failure_threshold` failures in a row open the breaker: for
`cooldown` seconds every request is refused at once with 503 UNAVAILABLE and a Retry-After,
without touching the upstream. Then it is half-open: one request goes through as a probe
while the others are still refused; the probe's success closes the breaker, its failure opens
it for another cooldown.

State is per gateway process: each replica finds out about a dead upstream by itself, after
`failure_threshold` requests, which is cheap.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from enum import IntEnum

import structlog
from audifi_kit.errors import Unavailable

from audifi_gateway import metrics

log = structlog.get_logger("audifi.gateway.breaker")


class BreakerState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(
        self,
        upstream: str,
        *,
        failure_threshold: int = 5,
        cooldown: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or cooldown <= 0:
            raise ValueError("a breaker needs a threshold >= 1 and a positive cooldown")
        self.upstream = upstream
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._state = BreakerState.CLOSED
        self._gauge = metrics.breaker_state.labels(upstream)
        self._gauge.set(BreakerState.CLOSED)

    @property
    def state(self) -> BreakerState:
        return self._state

    def admit(self) -> None:
        """Let a request through, or raise 503 UNAVAILABLE with a Retry-After."""
        if self._state is BreakerState.CLOSED:
            return
        if self._state is BreakerState.OPEN:
            remaining = self._opened_at + self.cooldown - self._clock()
            if remaining > 0:
                raise self._refusal(remaining)
            self._set(BreakerState.HALF_OPEN)
        if self._probing:  # half-open and the probe is still out
            raise self._refusal(self.cooldown)
        self._probing = True

    def record_success(self) -> None:
        self._failures = 0
        self._probing = False
        if self._state is not BreakerState.CLOSED:
            log.info("breaker_closed", upstream=self.upstream)
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._probing = False
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            if self._state is not BreakerState.OPEN:
                log.warning("breaker_opened", upstream=self.upstream, failures=self._failures)
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def release(self) -> None:
        """The request ended with no verdict on the upstream (the client went away)."""
        self._probing = False

    def _set(self, state: BreakerState) -> None:
        self._state = state
        self._gauge.set(state)

    def _refusal(self, retry_in: float) -> Unavailable:
        return Unavailable(
            f"The {self.upstream} service is unavailable; retry later",
            details={"service": self.upstream, "circuit": "open"},
            headers={"Retry-After": str(max(1, math.ceil(retry_in)))},
        )


class Breakers:
    """One breaker per upstream, all with the same settings. Those named up front show their
    state on /metrics from the start; another is made on first use."""

    def __init__(
        self, upstreams: Iterable[str] = (), *, failure_threshold: int = 5, cooldown: float = 10.0
    ) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._by_upstream = {upstream: self._new(upstream) for upstream in upstreams}

    def __getitem__(self, upstream: str) -> CircuitBreaker:
        breaker = self._by_upstream.get(upstream)
        if breaker is None:
            breaker = self._by_upstream[upstream] = self._new(upstream)
        return breaker

    def _new(self, upstream: str) -> CircuitBreaker:
        return CircuitBreaker(
            upstream, failure_threshold=self.failure_threshold, cooldown=self.cooldown
        )
