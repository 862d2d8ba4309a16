"""A throwaway RabbitMQ node on this machine, for tests that stop and restart the broker.

The machine's own broker (port 5672) stays untouched: the scratch node gets its own node name,
free AMQP and distribution ports, and keeps its data, logs, config and Erlang cookie (its HOME)
in a temporary directory. No plugins are enabled, so nothing else listens. `stop()` keeps the
data (a restart finds durable queues and persistent messages again); `destroy()` stops the node
and deletes the directory.

The server script runs in the foreground as our child, in its own session: we know its process
group, see it die if boot fails, and can kill that group if `rabbitmqctl stop` does not work.

Also a pytest plugin: the session-scoped `scratch_rabbit` fixture (listed in the root
conftest's `pytest_plugins`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_SCRIPT_DIRS = ("/usr/lib/rabbitmq/bin", "/usr/local/lib/rabbitmq/bin", "/opt/rabbitmq/sbin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def find_rabbitmq_scripts() -> Path | None:
    """The directory holding the real `rabbitmq-server` and `rabbitmqctl` scripts.

    Prefer the unwrapped scripts: Debian's /usr/sbin wrappers switch to the `rabbitmq` user,
    which could not write our temporary directory. RABBITMQ_SCRIPTS_DIR overrides.
    """
    candidates = [os.environ.get("RABBITMQ_SCRIPTS_DIR", ""), *_SCRIPT_DIRS]
    which = shutil.which("rabbitmq-server")
    if which:
        candidates.append(str(Path(which).resolve().parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "rabbitmq-server").is_file():
            return Path(candidate)
    return None


class ScratchRabbitNode:
    def __init__(self, scripts: Path | None = None) -> None:
        found = scripts or find_rabbitmq_scripts()
        if found is None:
            raise FileNotFoundError("rabbitmq-server not found (set RABBITMQ_SCRIPTS_DIR)")
        self._scripts = found
        self.nodename = f"audifi-scratch-{uuid.uuid4().hex[:8]}@localhost"
        self.dir = Path(tempfile.mkdtemp(prefix="audifi-rabbit-"))
        self.port = _free_port()
        self.dist_port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._destroyed = False
        (self.dir / "home").mkdir()
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = true\n"
            "log.console = false\n"
        )
        (self.dir / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's NODENAME
        atexit.register(self.destroy)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _env(self) -> dict[str, str]:
        d = self.dir
        return {
            **os.environ,
            "HOME": str(d / "home"),  # its own Erlang cookie, shared with our rabbitmqctl
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_PID_FILE": str(d / "rabbitmq.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_CRASH_DUMP": str(d / "erl_crash.dump"),
        }

    def _ctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self._scripts / "rabbitmqctl"), "-n", self.nodename, *args],
            env=self._env(),
            cwd=self.dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def _log_tail(self, lines: int = 30) -> str:
        out = self.dir / "server.out"
        text = out.read_text(errors="replace") if out.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout: float = 60) -> None:
        if self._destroyed:
            raise RuntimeError("node destroyed")
        if self.running:
            return
        with open(self.dir / "server.out", "ab") as out:
            self._process = subprocess.Popen(
                [str(self._scripts / "rabbitmq-server")],
                env=self._env(),
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"RabbitMQ node {self.nodename} exited during boot:\n{self._log_tail()}"
                )
            # Fails at once until the node has registered with epmd, then waits for boot.
            if self._ctl("await_startup", "--timeout", "10", timeout=20).returncode == 0:
                if _answers(self.port):
                    return
            if time.monotonic() > deadline:
                self._kill()
                raise TimeoutError(
                    f"RabbitMQ node {self.nodename} not up in {timeout}s:\n{self._log_tail()}"
                )
            time.sleep(0.3)

    def stop(self, timeout: float = 60) -> None:
        """Stop the node gracefully (data kept); kill its process group if that fails."""
        if self._process is None:
            return
        self.thaw()
        if self._process.poll() is None:
            try:
                self._ctl("stop", timeout=timeout)
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        if self._process.poll() is None:
            self._kill()
        self._process = None

    def _kill(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # our own session: script + beam
        process.wait(timeout=30)

    def freeze(self) -> None:
        """SIGSTOP the node: its sockets stay open but nothing answers (a hung broker)."""
        if self.running:
            assert self._process is not None
            os.killpg(self._process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.running:
            assert self._process is not None
            os.killpg(self._process.pid, signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        if self._destroyed:
            return
        try:
            self.stop()
        finally:
            self._kill()
            self._destroyed = True
            shutil.rmtree(self.dir, ignore_errors=True)
            atexit.unregister(self.destroy)


@pytest.fixture(scope="session")
def scratch_rabbit() -> Iterator[ScratchRabbitNode]:
    """A private RabbitMQ node that tests may stop and restart (its `url` stays the same).

    Tests that stop it must start it again before they end."""
    try:
        node = ScratchRabbitNode()
    except FileNotFoundError as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and {exc}", pytrace=False)
        pytest.skip(str(exc))
    try:
        node.start()
        yield node
    finally:
        node.destroy()
