"""What may leave in a log line, and how often (issue 9, finding 8).

Redaction: no access token, refresh token, magic-link token, TOTP code or signature is ever
written, whoever logs it — our structlog calls or a library's stdlib logger (uvicorn writes the
path of every WebSocket handshake with its query, `?access_token=<JWT>` included). `redact`
walks a log line's values: a value under a secret-looking key is replaced, and every string is
scrubbed of JWT-shaped tokens and of secret query/form/JSON parameters.

Repetition: a condition that repeats per attempt (asyncio's "socket.accept() out of system
resource" at the descriptor limit, uvicorn's "Invalid HTTP request received.") is logged once,
then at most once per interval with the number of lines it stood for.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

REDACTED = "***"

# Keys whose values are credentials wherever they appear (searched within the key).
SECRET_KEYS = re.compile(
    r"authorization|cookie|password|passwd|secret|token|api[_-]?key|private[_-]?key|jwt",
    re.IGNORECASE,
)
# Keys that are credentials only as the whole name: `code` is not one (error codes are logged).
_SECRET_NAMES = re.compile(
    r"signature|sig|otp|totp|totp[_-]?code|recovery[_-]?codes?|challenge[_-]?token",
    re.IGNORECASE,
)
# Three base64url parts, the first a JSON object's encoding (`{"` is `eyJ`): a JWT or JWS.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_PARAM_NAMES = (
    r"[A-Za-z0-9_-]*token|code|signature|sig|otp|totp|password|secret|recovery[_-]?codes?"
)
# `name=value` in a query string or form body (not `barcode=`: the name starts a word).
_QUERY_PARAM = re.compile(rf"(?<![A-Za-z0-9_.-])({_PARAM_NAMES})=[^&\s#\"'<>]*", re.IGNORECASE)
# `"name": "value"` in JSON text (a request body quoted in an error message).
_JSON_PARAM = re.compile(
    rf"(\"(?:{_PARAM_NAMES})\"\s*:\s*)\"(?:[^\"\\]|\\.)*\"", re.IGNORECASE | re.DOTALL
)


def redact_text(text: str) -> str:
    """`text` without JWT-shaped strings and without the values of secret parameters."""
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    if "=" in text:
        text = _QUERY_PARAM.sub(rf"\1={REDACTED}", text)
    if '"' in text:
        text = _JSON_PARAM.sub(rf'\1"{REDACTED}"', text)
    return text


def is_secret_key(key: object) -> bool:
    return isinstance(key, str) and bool(SECRET_KEYS.search(key) or _SECRET_NAMES.fullmatch(key))


def redact(value: Any, _depth: int = 0) -> Any:
    """`value` with every credential in it replaced: strings scrubbed, nested dicts, lists and
    tuples walked (to a bounded depth: a log line is not a place for deep structures)."""
    if isinstance(value, str):
        return redact_text(value)
    if _depth > 8:
        return value
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if is_secret_key(k) else redact(v, _depth + 1)) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, _depth + 1) for v in value]  # rendered as a JSON array either way
    return value


def redact_event_dict(event_dict: dict[str, Any]) -> dict[str, Any]:
    """A structlog event dict redacted in place (the `event` key is the message, not a key)."""
    for key, value in event_dict.items():
        if key != "event" and is_secret_key(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = redact(value)
    return event_dict


# ---------------------------------------------------------------------------- repetition

# The loggers that report per attempt what is one condition: asyncio's accept loop, uvicorn's
# protocol warnings, the kit's server (connections shed above the ceiling).
REPEATING_LOGGERS = ("asyncio", "uvicorn.error", "audifi_kit.server")
REPEAT_INTERVAL = 60.0


class RepeatFilter(logging.Filter):
    """Lets the first line of a message through, then one per `interval` saying how many like
    it were dropped meanwhile. A message is its logger, level, the first line of its template
    (so `%s` arguments and the socket asyncio appends do not make it new) and the exception it
    carries, if any (two tasks failing differently are two messages). Lines below
    `min_level` always pass: they are per-request by design (access lines)."""

    def __init__(
        self,
        interval: float = REPEAT_INTERVAL,
        *,
        min_level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
        max_messages: int = 1024,
    ) -> None:
        super().__init__()
        self.interval = interval
        self.min_level = min_level
        self.clock = clock
        self.max_messages = max_messages
        self._windows: dict[tuple[str, int, str, str], list[float]] = {}  # [started, dropped]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return True
        key = (record.name, record.levelno, str(record.msg).split("\n", 1)[0][:200], _error(record))
        now = self.clock()
        with self._lock:
            window = self._windows.get(key)
            if window is not None and now - window[0] < self.interval:
                window[1] += 1
                return False
            if len(self._windows) >= self.max_messages:
                self._forget(now)
            self._windows[key] = [now, 0]
        if window is not None and window[1]:
            message = record.getMessage()
            first, sep, rest = message.partition("\n")
            record.msg = (
                f"{first} ({int(window[1])} more like it in the last {now - window[0]:.0f}s)"
                f"{sep}{rest}"
            )
            record.args = None
        return True

    def _forget(self, now: float) -> None:
        for key in [k for k, w in self._windows.items() if now - w[0] >= self.interval]:
            del self._windows[key]
        while len(self._windows) >= self.max_messages:  # all recent: drop the oldest
            del self._windows[next(iter(self._windows))]


def _error(record: logging.LogRecord) -> str:
    """The exception a line carries: distinct failures behind one message stay distinct."""
    exc = record.exc_info[1] if record.exc_info else None
    return "" if exc is None else f"{type(exc).__name__}: {str(exc)[:200]}"


def install_repeat_filter(
    loggers: Iterable[str] = REPEATING_LOGGERS, interval: float = REPEAT_INTERVAL
) -> RepeatFilter:
    """One shared RepeatFilter on each of `loggers`, replacing one installed before."""
    repeat = RepeatFilter(interval)
    for name in loggers:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RepeatFilter)]:
            logger.removeFilter(old)
        logger.addFilter(repeat)
    return repeat


# ------------------------------------------------------------------------- access lines

# uvicorn's WebSocket protocol (and the websockets library under it) write two or three INFO
# lines per connection: "connection open", '<client> - "WebSocket <path>" [accepted]',
# "connection closed". The kit runs uvicorn with access_log=False; these are access lines by
# another name, and at thousands of sockets a second they cost more CPU than the frames.
_CONNECTION_LINES = frozenset(("connection open", "connection closed"))
_WEBSOCKET_ACCESS = '%s - "WebSocket %s"'


class ConnectionLinesFilter(logging.Filter):
    """Drops the per-connection INFO lines of uvicorn's WebSocket protocol; warnings pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO:
            return True
        msg = record.msg
        return not (
            isinstance(msg, str) and (msg in _CONNECTION_LINES or msg.startswith(_WEBSOCKET_ACCESS))
        )


def install_connection_lines_filter(logger_name: str = "uvicorn.error") -> None:
    """One ConnectionLinesFilter on uvicorn's error logger, replacing one installed before."""
    logger = logging.getLogger(logger_name)
    for old in [f for f in logger.filters if isinstance(f, ConnectionLinesFilter)]:
        logger.removeFilter(old)
    logger.addFilter(ConnectionLinesFilter())
