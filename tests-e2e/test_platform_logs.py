"""After the whole e2e suite: the log of every platform it started holds no unhandled exception
and no credential (issue 9, finding 8b).

Every process a platform of the session ran (`Platform`, `make run`, `make up`) wrote its
output to a file that `platform_processes.SESSION_LOGS` lists. conftest runs this module last,
so every other module's platform has stopped and its log is complete. What a log must never
hold, whoever wrote it (our structlog lines, uvicorn, a library's stdlib logger):

* an unhandled exception: the kit's `unhandled_exception` event, or any `Traceback`;
* a credential: a JWT-shaped string (access tokens), `access_token=` or another secret
  parameter with its value (query strings, form bodies), a secret JSON field with its value
  (`refreshToken`, `token`, `signature`, `password`, `code` of TOTP digits...), a refresh token
  (`<session hex>.<random>`), a bearer header, a recovery code, an EVM signature.

Values the platform redacted (`***`, `[REDACTED]`, empty) pass. The scan is this module's own,
not the platform's redaction code: it checks that code's result from the outside.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from platform_processes import SESSION_LOGS

UNHANDLED = re.compile(r"unhandled_exception|Traceback \(most recent call last\)")
# CPython's report of a signal byte it could not write while a process's event loop was
# closing or not yet open (asyncio's `_sighandler_noop`; under `make up` when the supervisor
# and the terminal both signal a child): the interpreter's, raised by no code of ours, and
# the signal still stops the process. Its traceback is not counted; anything else is.
IGNORED_BEFORE_TRACEBACK = "Exception ignored when trying to write to the signal wakeup fd"

_SECRET_PARAMS = (
    r"access_token|refresh_token|id_token|token|magic_token|challenge_token|signature|sig"
    r"|password|secret|otp|totp|totp_code|recovery_code"
)
_SECRET_FIELDS = (
    r"access_?token|accessToken|refresh_?token|refreshToken|token|challenge_?token"
    r"|challengeToken|signature|password|secret|otp|totp|totp_?code|totpCode"
    r"|recovery_?codes?|recoveryCodes?|authorization"
)
# Each: what it is, and a pattern whose group "value" is the secret.
CREDENTIALS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("JWT", re.compile(r"(?P<value>eyJ[\w-]{6,}\.eyJ[\w-]{6,}\.[\w-]*)")),
    (
        "secret parameter",
        re.compile(rf"(?<![\w.-])(?:{_SECRET_PARAMS})=(?P<value>[^&\s#\"'<>\\]+)", re.IGNORECASE),
    ),
    (
        "secret JSON field",
        re.compile(rf"\\?\"(?:{_SECRET_FIELDS})\\?\"\s*:\s*\\?\"(?P<value>[^\"\\]+)"),
    ),
    (
        "TOTP code",
        re.compile(
            r"\\?\"code\\?\"\s*:\s*\\?\"?(?P<value>\d{6,8})\b|(?<![\w.-])code=(?P<v2>\d{6,8})\b"
        ),
    ),
    ("refresh token", re.compile(r"(?<![\w-])(?P<value>[0-9a-f]{32}\.[\w-]{43})(?![\w-])")),
    ("bearer token", re.compile(r"Bearer\s+(?P<value>[\w.~+/-]{16,}=*)")),
    ("recovery code", re.compile(r"(?<![\w-])(?P<value>[0-9a-f]{6}-[0-9a-f]{6})(?![\w-])")),
    ("EVM signature", re.compile(r"(?<![\w])(?P<value>0x[0-9a-fA-F]{130})(?![0-9a-fA-F])")),
)
REDACTED = re.compile(r"^(?:\*+|\[?redacted\]?|<redacted>|x+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.excerpt}"


def _masked(value: str) -> str:
    """Enough of a secret to find it again, not enough to use it."""
    return f"{value[:6]}...({len(value)} chars)"


def credentials_in(text: str) -> Iterator[tuple[str, str]]:
    """(kind, masked value) of each credential in `text`."""
    for kind, pattern in CREDENTIALS:
        for match in pattern.finditer(text):
            value = next((v for v in match.groups() if v), "")
            if value and not REDACTED.match(value):
                yield kind, _masked(value)


def scan(paths: Iterable[Path]) -> tuple[list[Finding], list[Finding]]:
    """(unhandled exceptions, credentials) found in the files at `paths`."""
    unhandled: list[Finding] = []
    leaked: list[Finding] = []
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as lines:
            previous = ""
            for number, line in enumerate(lines, 1):
                if UNHANDLED.search(line) and not previous.startswith(IGNORED_BEFORE_TRACEBACK):
                    unhandled.append(Finding(path, number, "unhandled exception", line[:300]))
                previous = line
                for kind, masked in credentials_in(line):
                    leaked.append(Finding(path, number, kind, masked))
    return unhandled, leaked


def session_logs() -> list[Path]:
    logs = [path for path in SESSION_LOGS if path.exists()]
    if not logs:
        pytest.skip("no platform ran in this session (run the e2e suite with it)")
    return logs


def _report(findings: list[Finding], limit: int = 40) -> str:
    shown = "\n".join(map(str, findings[:limit]))
    more = len(findings) - limit
    return shown + (f"\n... and {more} more" if more > 0 else "")


def test_no_platform_of_the_session_logged_an_unhandled_exception() -> None:
    unhandled, _ = scan(session_logs())
    assert not unhandled, _report(unhandled)


def test_no_platform_of_the_session_logged_a_credential() -> None:
    _, leaked = scan(session_logs())
    assert not leaked, _report(leaked)


# The scan itself, on lines as the platform writes them.
JWT = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLWJ5dGVz"


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ('{"event": "GET /vstudio/sessions/1/ws?access_token=' + JWT[:20] + 'x HTTP/1.1"}',
         "secret parameter"),
        ('{"authorization": "Bearer ' + JWT + '"}', "JWT"),
        ('{"event": "request", "body": "{\\"refreshToken\\": \\"abc.def\\"}"}',
         "secret JSON field"),
        ('"link": "http://127.0.0.1:8080/magic-link?token=Zm9vYmFyYmF6cXV4cXV1eA"',
         "secret parameter"),
        ('{"event": "2fa", "code": "123456"}', "TOTP code"),
        (f"refresh {'0123456789abcdef' * 2}.{'Zm9vYmFy' * 5}YmF", "refresh token"),
        ("recovery codes a1b2c3-d4e5f6", "recovery code"),
        ('{"signature": "0x' + "ab" * 65 + '"}', "EVM signature"),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz", "bearer token"),
    ],
)  # fmt: skip
def test_the_scan_finds_each_kind_of_credential(line: str, kind: str) -> None:
    assert kind in {found for found, _ in credentials_in(line)}


@pytest.mark.parametrize(
    "line",
    [
        '{"event": "GET /vstudio/sessions/1/ws?access_token=*** HTTP/1.1"}',
        '{"authorization": "***", "token": "***", "code": "NOT_FOUND"}',
        '{"method": "POST", "route": "/auth/refresh", "status": 200, "duration_ms": 3.2}',
        '{"request_id": "0123456789abcdef0123456789abcdef", "status": 401}',
        '{"event": "deployed", "tx": "0x' + "ab" * 32 + '"}',
        '{"token_type": "Bearer", "session_id": "6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b"}',
    ],
)
def test_the_scan_passes_redacted_and_harmless_lines(line: str) -> None:
    assert list(credentials_in(line)) == []


def test_the_scan_counts_every_traceback_but_cpythons_unwritable_signal(tmp_path: Path) -> None:
    log = tmp_path / "up.log"
    log.write_text(
        "Exception ignored when trying to write to the signal wakeup fd:\n"
        "Traceback (most recent call last):\n"
        '  File "asyncio/unix_events.py", line 42, in _sighandler_noop\n'
        "OSError: [Errno 9] Bad file descriptor\n"
        '{"event": "request failed", "exception": "Traceback (most recent call last):"}\n'
        "Traceback (most recent call last):\n"
    )
    unhandled, _ = scan([log])
    assert [f.line for f in unhandled] == [5, 6]
