"""Which replica of a service takes the next request or socket.

AUDIFI_<NAME>_URL may list a service's replicas, comma-separated. Requests and sockets go to
them in turn (round robin); a replica that refused a connection is passed over for
`cooldown` seconds (then tried again), so clients move to the others at once when one dies —
a WebSocket client that lost its replica reconnects through the gateway and lands on a live
one. When every replica is passed over, all are tried anyway: a refusal is the only verdict.
A connection refused before the request left is tried on the next replica (nothing reached
the first); any later failure is the client's to see, never replayed.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from audifi_kit.settings import Settings


class Upstreams:
    def __init__(
        self,
        settings: Settings,
        *,
        cooldown: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.cooldown = cooldown
        self.clock = clock
        self._turns: dict[str, itertools.count[int]] = {}
        self._down_until: dict[str, float] = {}  # replica URL -> when to try it again

    def replicas(self, service: str) -> list[str]:
        return self.settings.service_urls(service)

    def candidates(self, service: str) -> list[str]:
        """The service's replicas in the order to try them now: the next in turn first,
        those recently refusing last."""
        replicas = self.replicas(service)
        if len(replicas) == 1:
            return replicas
        turn = next(self._turns.setdefault(service, itertools.count())) % len(replicas)
        ordered = replicas[turn:] + replicas[:turn]
        now = self.clock()
        live = [u for u in ordered if self._down_until.get(u, 0.0) <= now]
        return live + [u for u in ordered if u not in live]

    def refused(self, url: str) -> None:
        self._down_until[url] = self.clock() + self.cooldown

    def answered(self, url: str) -> None:
        self._down_until.pop(url, None)
