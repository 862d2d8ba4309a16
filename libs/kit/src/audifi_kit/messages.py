"""The message that travels on the bus, independent of the transport carrying it.

One `Message` is one integration event on the wire (ARCHITECTURE.md §5.3): the routing key is
also its AMQP `type`, the body is the msgspec JSON of the event Struct, and the envelope carries
the ids that let an operator follow a request through every service it touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

# Header names shared by both transports.
CAUSATION_ID = "causation_id"
SCHEMA_VERSION = "schema_version"
TRACEPARENT = "traceparent"
ATTEMPT = "x-audifi-attempt"  # 1 on first delivery; set by the bus when it schedules a retry
LAST_ERROR = "x-audifi-error"  # why the last attempt failed (kept when a message is parked)
ORIGINAL_QUEUE = "x-audifi-queue"  # the consumer queue a parked message came from


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Message:
    message_id: str
    routing_key: str
    body: bytes
    correlation_id: str | None = None
    causation_id: str | None = None
    schema_version: int = 1
    traceparent: str | None = None
    timestamp: datetime = field(default_factory=utcnow)
    content_type: str = "application/json"
    # Transport-level extras (attempt counter, last error). Never business data.
    headers: Mapping[str, Any] = field(default_factory=dict)

    @property
    def attempt(self) -> int:
        return int(self.headers.get(ATTEMPT, 1))

    @property
    def last_error(self) -> str | None:
        error = self.headers.get(LAST_ERROR)
        return None if error is None else str(error)

    def with_headers(self, **headers: Any) -> Message:
        return replace(self, headers={**self.headers, **headers})

    def without_headers(self, *names: str) -> Message:
        return replace(self, headers={k: v for k, v in self.headers.items() if k not in names})
