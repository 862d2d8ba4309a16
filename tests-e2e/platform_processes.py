"""The distributed topology as processes: one `audifi serve NAME` per deployable.

Each runs as it would in production (its own process, RabbitMQ, PostgreSQL, Redis), on free
loopback ports so a developer's `make run` is left alone, with databases under a prefix of its
own. Tests then talk only to the gateway, and may stop and restart any service.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import httpx
from audifi_auth.adapters.signing_keys import SigningKeys
from audifi_kit import stripe_dev
from audifi_kit.launch import chain_envs, load_app
from audifi_kit.settings import DEFAULT_PORTS, Settings
from audifi_kit.testing import eventually_sync, free_port

# Eight services with their default pools hold about 80 PostgreSQL connections; tests that
# start a second platform (make run, make up) must fit beside whatever else the server serves.
# Mail goes to notify's local sink, on a port of its own choosing.
SMALL_FOOTPRINT = {"AUDIFI_POOL_SIZE": "3", "AUDIFI_SMTP_SINK_PORT": "0"}

DEPLOYABLES = tuple(DEFAULT_PORTS)  # gateway first in the table; started last below
CHAIN = "chain"  # the development chain node (`audifi chain node`), started first
CHAIN_USERS = tuple(n for n in DEPLOYABLES if load_app(n).uses_chain)
STRIPE = "stripe"  # the local Stripe (libs/stripe-local), started before the services
STRIPE_USERS = tuple(n for n in DEPLOYABLES if load_app(n).uses_stripe)


ROOT = Path(__file__).resolve().parents[1]

# Every log file a platform of this test session wrote (each process's output, `make run` and
# `make up` included), for the checks that read them after the platforms stopped.
SESSION_LOGS: list[Path] = []


def make(target: str, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`make TARGET` at the repository root, as a developer runs it, in its own process group."""
    SESSION_LOGS.append(log)
    with log.open("wb") as out:
        return subprocess.Popen(
            ["make", "--no-print-directory", target],
            cwd=ROOT,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_group(process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """SIGTERM to the process group (make, uv, audifi and its children), SIGKILL if it hangs."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        process.wait()
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_http(url: str, timeout: float, *, expect: int = 200) -> httpx.Response:
    def answered() -> httpx.Response:
        try:
            response = httpx.get(url, timeout=2.0)
        except httpx.HTTPError as exc:
            raise AssertionError(f"{type(exc).__name__}: {exc}") from exc  # not up yet
        assert response.status_code == expect, f"{response.status_code} {response.text[:300]}"
        return response

    return eventually_sync(answered, within=timeout, every=0.2, what=f"{url} answering {expect}")


class Platform:
    """Every deployable as its own process, plus the development chain node they share (as
    `make up` runs it: nft, coin and payment sign with their own development keys) and the
    local Stripe payment talks to (its webhooks signed for this run, sent to the gateway)."""

    def __init__(
        self, env: Mapping[str, str], log_dir: Path, replicas: Mapping[str, int] | None = None
    ) -> None:
        self.ports = {name: free_port() for name in (*DEPLOYABLES, CHAIN, STRIPE)}
        # More replicas of a service (`vstudio-2`...): the same service on ports of their own,
        # every one listed in AUDIFI_<NAME>_URL, so the gateway spreads clients over them.
        self.replica_of: dict[str, str] = {}
        for service, count in (replicas or {}).items():
            for n in range(2, count + 1):
                self.replica_of[f"{service}-{n}"] = service
                self.ports[f"{service}-{n}"] = free_port()
        self.env = {
            **os.environ,
            **env,
            **{
                f"AUDIFI_{n.upper()}_PORT": str(p)
                for n, p in self.ports.items()
                if n not in (CHAIN, STRIPE) and n not in self.replica_of
            },
            **{
                f"AUDIFI_{service.upper()}_URL": ",".join(
                    f"http://127.0.0.1:{self.ports[n]}"
                    for n in (service, *(r for r, s in self.replica_of.items() if s == service))
                )
                for service in set(self.replica_of.values())
            },
            "AUDIFI_CHAIN_NODE_PORT": str(self.ports[CHAIN]),
            "AUDIFI_STRIPE_LOCAL_PORT": str(self.ports[STRIPE]),
            "AUDIFI_HOST": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("CHAIN_RPC_URL", None)
        for key in ("STRIPE_SECRET_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET"):
            self.env.pop(key, None)
        self.stripe_env = stripe_dev.local_stripe_env(Settings.from_env(self.env), self.env)
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def _process_env(self, name: str) -> dict[str, str]:
        service = self.replica_of.get(name, name)
        extra = chain_envs(CHAIN_USERS, Settings.from_env(self.env), self.env).get(service, {})
        if service in STRIPE_USERS:
            extra = {**extra, **self.stripe_env}
        if name in self.replica_of:  # the same service on its own port
            extra = {**extra, f"AUDIFI_{service.upper()}_PORT": str(self.ports[name])}
        return {**self.env, **extra}

    @property
    def stripe(self) -> str:
        """The local Stripe's base URL (its pay page, `/_local/` helpers, the API)."""
        return self.stripe_env["STRIPE_API_BASE"]

    @property
    def gateway(self) -> str:
        return f"{self.url('gateway')}/api/v1"

    def start(self, name: str, *, wait: float = 60.0) -> None:
        if (path := self.log_dir / f"{name}.log") not in SESSION_LOGS:
            SESSION_LOGS.append(path)
        log = open(path, "ab")
        command = ["chain", "node"] if name == CHAIN else ["serve", self.replica_of.get(name, name)]
        argv = [sys.executable, "-m", "audifi_kit.cli", *command]
        if name == STRIPE:
            argv = stripe_dev.command(Settings.from_env(self.env), self.stripe_env)
        self.processes[name] = subprocess.Popen(
            argv,
            env=self._process_env(name),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            wait_http(f"{self.url(name)}/{'healthz' if name == STRIPE else 'health'}", wait)
        except TimeoutError as exc:
            raise RuntimeError(f"{name} did not start:\n{self.log_tail(name)}") from exc

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self, name: str) -> None:
        """A crash: SIGKILL, no goodbye (its sockets drop, its presence entries expire)."""
        process = self.processes.pop(name, None)
        if process is not None:
            process.kill()
            process.wait()

    def start_all(self) -> None:
        services = [n for n in DEPLOYABLES if n != "gateway"] + list(self.replica_of)
        for name in [CHAIN, STRIPE, *services, "gateway"]:
            self.start(name)
        wait_http(f"{self.gateway}/admin/health", 60)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def verify_ledger(self) -> str:
        """`audifi ledger verify` against payment's store, as an operator runs it: its report
        (it fails the test on any unbalanced transaction or overdrawn balance)."""
        env = {**self.env, **self._process_env("payment")}
        done = subprocess.run(
            [sys.executable, "-m", "audifi_kit.cli", "ledger", "verify"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def token(keys: SigningKeys, **claims: object) -> str:
    """An access token as auth issues it: sub, roles, sid, exp."""
    return keys.sign(
        {
            "sub": str(uuid.uuid4()),
            "roles": ["fan"],
            "sid": str(uuid.uuid4()),
            "exp": int(time.time()) + 300,
            **claims,
        }
    )
