"""What a readiness check answers, free of the web: the runtime's checks return these and
`audifi_kit.http.health` turns them into `/ready`.

A readiness check is an async callable that returns when its dependency is usable and raises
otherwise. It may also say more, in public terms (names and numbers, never error texts): it
returns a `CheckReport` (its `details`; `degraded=True` when it works but needs an operator),
or raises `CheckFailed` with details (the check fails, its details are shown).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

ReadinessCheck = Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What a passing check may return: public details, and whether it is degraded."""

    details: Mapping[str, Any] = field(default_factory=dict)
    degraded: bool = False


class CheckFailed(Exception):
    """A failing check whose `details` (names and numbers only) `/ready` may show."""

    def __init__(self, message: str, details: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.details = dict(details)


__all__ = ["CheckFailed", "CheckReport", "ReadinessCheck"]
