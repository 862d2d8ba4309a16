"""Schemathesis against the whole platform, through the gateway, as an outsider (issue 9).

Every operation of the merged OpenAPI (`/api/v1/openapi.json`: a route added later is fuzzed
because it is there) is called with requests generated from its schema, valid ones and ones
that break it, anonymously and with an access token of each role (fan, artist, brand, admin;
each names an account signed up through the API). Each answer must be:

* not a server error (no 5xx; a dropped connection counts as one);
* documented: its status among the operation's responses (`status_code_conformance`), its
  body fitting the documented schema (`response_schema_conformance`) and its content type the
  documented one (`content_type_conformance`).

The platform is this module's own, with the shipped configuration except its limits: rate
limits and brute-force budgets generous enough that the fuzzer explores the API instead of
meeting 429s (set through configuration; nothing spoofs a client address). Generation is
derandomized, so a run is repeatable; it is bounded by examples per operation, not time.
Destructive operations (DELETE) run last for each caller: erasing the caller's account first
would leave the rest of its run nothing to reach. The report (operations, requests, failures
by check and by operation, each failure's request and response) is printed and written to
`fuzz-report.txt` under the platform's log directory.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from audifi_auth.adapters.signing_keys import SigningKeys
from audifi_gateway.ratelimit import DEFAULT_LIMITS
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis.errors import Unsatisfiable
from platform_processes import Platform, token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

GENEROUS = "1000000/60"
# Read by conftest's `platform` fixture: this module's platform, its own limits (every rate
# class the gateway ships, and auth's brute-force budgets).
PLATFORM_ENV = {
    "AUDIFI_RATE_LIMITS": ",".join(f"{name}={GENEROUS}" for name in DEFAULT_LIMITS),
    "AUTH_LOGIN_MAX_FAILURES": "1000000",
    "AUTH_LOGIN_MAX_FAILURES_PER_IP": "1000000",
    "AUTH_2FA_MAX_FAILURES": "1000000",
    "AUTH_MAGIC_LINK_MAX": "1000000",
    "AUTH_CHALLENGE_MAX": "1000000",
    "AUTH_PER_IP_MAX": "1000000",
}

CHECKS: dict[str, Callable[..., Any]] = {
    "not_a_server_error": not_a_server_error,
    "status_code_conformance": status_code_conformance,
    "response_schema_conformance": response_schema_conformance,
    "content_type_conformance": content_type_conformance,
}
ROLES = ("fan", "artist", "brand", "admin")
METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
ANONYMOUS = "anonymous"

# Examples per operation, caller and generation mode, where each caller's run matters: an
# authenticated operation with each role's token, a public one anonymously. Elsewhere a few:
# anonymous calls to an authenticated operation all meet the gateway's 401, and a token does
# not change what a public operation does. `make test` runs 15 (the API grows with every
# service: 25 took five minutes of the suite's thirty); `make fuzz` runs many more.
EXAMPLES = int(os.environ.get("AUDIFI_FUZZ_EXAMPLES", "15"))
EXAMPLES_ELSEWHERE = 3
REQUEST_TIMEOUT = 20.0
SHOWN_PER_FAILURE = 3
CASE_ID_HEADER = "x-schemathesis-testcaseid"


@dataclass
class Finding:
    check: str
    operation: str
    caller: str
    request: str
    response: str
    message: str


@dataclass
class Report:
    operations: set[str] = field(default_factory=set)
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    def failures_by(self, key: Callable[[Finding], str]) -> Counter[str]:
        return Counter(key(f) for f in self.findings)

    def summary(self) -> str:
        lines = [
            f"fuzzing: {len(self.operations)} operations, {sum(self.requests.values())} "
            f"requests in {self.seconds:.0f} s, {len(self.findings)} failures",
            "statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items())),
            "failures by check: "
            + (", ".join(f"{c}: {n}" for c, n in sorted(self.failures_by(_check).items())) or "0"),
        ]
        by_operation = self.failures_by(_operation)
        if by_operation:
            lines.append("failures by operation:")
            lines += [f"  {op}: {n}" for op, n in sorted(by_operation.items())]
        shown: Counter[tuple[str, str, str]] = Counter()
        for finding in self.findings:
            key = (finding.check, finding.operation, finding.message.splitlines()[0])
            shown[key] += 1
            if shown[key] > SHOWN_PER_FAILURE:
                continue
            lines += [
                f"- {finding.check} | {finding.operation} | as {finding.caller}",
                f"    {finding.message.strip()[:400]}".replace("\n", "\n    "),
                f"    request:  {finding.request}",
                f"    response: {finding.response}",
            ]
        return "\n".join(lines)


def _check(finding: Finding) -> str:
    return finding.check


def _operation(finding: Finding) -> str:
    return finding.operation


def _describe_request(request: Any) -> str:
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "backslashreplace")
    text = f"{request.method} {request.url}"
    if body:
        text += f" body={body[:300]!r}"
    content_type = request.headers.get("Content-Type")
    return f"{text} content-type={content_type!r}" if content_type else text


def _describe_response(response: Any) -> str:
    content_type = (response.headers.get("content-type") or [None])[0]
    return f"{response.status_code} {content_type!r} {response.text[:300]!r}"


@dataclass
class Caller:
    name: str
    account_id: str | None = None

    def headers(self, keys: SigningKeys) -> dict[str, str]:
        if self.account_id is None:
            return {}
        # A fresh session id per operation: an operation that signs its session out (logout)
        # leaves the caller's later operations their token.
        access = token(
            keys,
            sub=self.account_id,
            roles=[self.name],
            sid=str(uuid.uuid4()),
            exp=int(time.time()) + 900,
        )
        return {"Authorization": f"Bearer {access}"}


def sign_up(gateway: str, role: str) -> Caller:
    """An account made through the API, for the tokens of `role` to name."""
    response = httpx.post(
        f"{gateway}/auth/signup",
        json={"email": f"fuzz-{role}-{uuid.uuid4().hex[:8]}@example.com", "password": "x" * 12},
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return Caller(role, response.json()["userId"])


def _ordered(operations: Iterable[Any]) -> list[Any]:
    """Deleting operations last: they take away what the others would reach."""
    return sorted(operations, key=lambda op: (op.method.upper() == "DELETE", op.label))


def fuzz(schema: Any, base_url: str, callers: Iterable[Caller], keys: SigningKeys) -> Report:
    report = Report()
    started = time.monotonic()
    operations = _ordered(result.ok() for result in schema.get_all_operations())
    with requests.Session() as session:
        for caller in callers:
            for operation in operations:
                report.operations.add(operation.label)
                secured = bool(operation.definition.raw.get("security"))
                matters = secured == (caller.account_id is not None)
                run = Run(
                    operation,
                    base_url,
                    caller,
                    caller.headers(keys),
                    EXAMPLES if matters else EXAMPLES_ELSEWHERE,
                    session,
                    report,
                )
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    run.fuzz(mode)
    report.seconds = time.monotonic() - started
    return report


@dataclass
class Run:
    """One caller's requests to one operation."""

    operation: Any
    base_url: str
    caller: Caller
    headers: dict[str, str]
    examples: int
    session: requests.Session
    report: Report
    # What was sent already: the caller's token replaces a generated Authorization header,
    # so an operation without parameters would otherwise get the same request every time.
    sent: set[str] = field(default_factory=set)

    def fuzz(self, mode: GenerationMode) -> None:
        @settings(
            max_examples=self.examples,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
        )
        @given(case=self.operation.as_strategy(generation_mode=mode))
        def call(case: Any) -> None:
            if self._first_time(case):
                self.call(case)

        try:
            call()
        except Unsatisfiable:
            pass  # nothing in this operation can be made invalid (no parameters, no body)

    def _first_time(self, case: Any) -> bool:
        request = case.as_transport_kwargs(base_url=self.base_url, headers=self.headers)
        request["headers"] = {
            k: v for k, v in request["headers"].items() if k.lower() != CASE_ID_HEADER
        }
        key = json.dumps(request, sort_keys=True, default=repr)
        if key in self.sent:
            return False
        self.sent.add(key)
        return True

    def call(self, case: Any) -> None:
        label, report = self.operation.label, self.report
        report.requests[label] += 1
        try:
            response = case.call(
                base_url=self.base_url,
                session=self.session,
                headers=self.headers,
                timeout=REQUEST_TIMEOUT,
            )
        except requests.RequestException as exc:  # no answer at all: the server broke
            request = getattr(exc, "request", None)
            report.findings.append(
                Finding(
                    "not_a_server_error",
                    label,
                    self.caller.name,
                    _describe_request(request) if request is not None else repr(case),
                    "no response",
                    f"{type(exc).__name__}: {exc}",
                )
            )
            return
        report.statuses[response.status_code] += 1
        for name, check in CHECKS.items():
            try:
                case.validate_response(response, checks=[check], headers=self.headers)
            except FailureGroup as group:
                report.findings.extend(
                    Finding(
                        name,
                        label,
                        self.caller.name,
                        _describe_request(response.request),
                        _describe_response(response),
                        f"{failure.title}: {failure.message}",
                    )
                    for failure in group.exceptions
                )


@pytest.mark.timeout(600)
def test_fuzzing_the_merged_openapi_finds_no_failure(
    platform: Platform, signing_keys: SigningKeys
) -> None:
    document = httpx.get(f"{platform.gateway}/openapi.json", timeout=REQUEST_TIMEOUT).json()
    assert document["x-audifi-unavailable"] == [], "a service's operations would go unfuzzed"
    schema = schemathesis.openapi.from_dict(document)
    callers = [Caller(ANONYMOUS), *(sign_up(platform.gateway, role) for role in ROLES)]

    report = fuzz(schema, platform.url("gateway"), callers, signing_keys)

    summary = report.summary()
    (platform.log_dir / "fuzz-report.txt").write_text(summary + "\n")
    print(summary)
    assert len(report.operations) == sum(
        1 for item in document["paths"].values() for key in item if key in METHODS
    )
    assert not report.findings, summary
