"""Running the platform: one service per process (distributed) or all in one (embedded).

Every deployable (each service and the gateway) exposes an `AppSpec` under the entry point
group `audifi.apps`: its name and a factory that builds its Litestar app from the settings and
a bus. `serve` runs a set of them on one event loop, each on its own port (ARCHITECTURE.md §9):

* `audifi serve nft` — one service, as `make up`, compose and Kubernetes run it. With AMQP_URL
  it talks to RabbitMQ; with DATABASE_URL it uses that server.
* `audifi up` — every deployable in one process (`make run`): embedded PostgreSQL unless
  DATABASE_URL is set, one in-process bus shared by all services, in-memory stores.
* `audifi up --distributed` — one `audifi serve` process per deployable, supervised
  (`make up`): needs DATABASE_URL and AMQP_URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from litestar import Litestar
from litestar.types import ControllerRouterHandler

from audifi_kit import stripe_dev
from audifi_kit.bus import Bus
from audifi_kit.http.factory import Lifespan, create_service_app, while_serving
from audifi_kit.http.revocations import SessionRevocations
from audifi_kit.recursion import restore_recursion_limit
from audifi_kit.runtime import ServiceRuntime
from audifi_kit.server import build_servers
from audifi_kit.settings import DEFAULT_PORTS, Settings
from audifi_kit.spec import ServiceSpec

if TYPE_CHECKING:  # web3 loads only in the processes of services that use the chain
    from audifi_kit.chain.platform import PlatformChain

log = logging.getLogger(__name__)

APP_GROUP = "audifi.apps"
# Start order of `audifi up`: auth first (its JWKS is what every other app verifies against),
# the gateway last (its health page asks every upstream).
ORDER = tuple(DEFAULT_PORTS)


@dataclass(frozen=True)
class AppSpec:
    """A deployable. `uses_chain`: its factory takes `chain=` too, and `serve` hands every such
    app of one process the same `PlatformChain` (embedded: one EVM, one deployment).
    `uses_stripe`: without STRIPE_SECRET_KEY, the platform starts the local Stripe for it
    (`audifi_kit.stripe_dev`). `environment`: what its own process starts with (read by the
    interpreter before any code runs: PYTHONMALLOC); `make up` sets it, and deploy/ says the
    same (a test holds them equal)."""

    name: str
    factory: Callable[..., Litestar]
    uses_chain: bool = False
    uses_stripe: bool = False
    environment: Mapping[str, str] = field(default_factory=dict)

    def build(self, settings: Settings, bus: Bus, chain: PlatformChain | None = None) -> Litestar:
        if self.uses_chain:
            return self.factory(settings, bus, chain=chain)
        return self.factory(settings, bus)


def deployables() -> list[str]:
    """Names of every installed deployable, in start order."""
    return ordered([ep.name for ep in entry_points(group=APP_GROUP)])


def load_app(name: str) -> AppSpec:
    for ep in entry_points(group=APP_GROUP, name=name):
        spec: AppSpec = ep.load()
        return spec
    raise LookupError(f"no service {name!r}; known: {', '.join(deployables())}")


def service_app(
    spec: ServiceSpec,
    settings: Settings,
    bus: Bus,
    *,
    route_handlers: Sequence[ControllerRouterHandler] = (),
    lifespan: Sequence[Lifespan] = (),
    state: Mapping[str, Any] | None = None,
    chain: PlatformChain | None = None,
) -> Litestar:
    """A service's app: its runtime (event store, relay, projections, consumers) runs while it
    serves, readiness asks its database and broker, and tokens verify against auth's JWKS —
    a token of a session auth revoked (`auth.session.revoked`) is refused here too.

    With `chain`, the platform contracts are deployed (embedded) or found and checked (a node)
    before the app serves, readiness asks the node too, and `app.state.chain` holds it.
    """
    runtime = ServiceRuntime(spec, settings, bus)
    revocations = SessionRevocations(spec.name, settings, bus)
    checks: dict[str, Callable[[], Any]] = dict(runtime.readiness_checks())
    # After the runtime's lifespan (which connects the bus): the consumer of revocations.
    lifespans = [runtime.lifespan, while_serving(revocations.start, revocations.stop)]
    if chain is not None:
        checks["chain"] = chain.check
        lifespans.append(while_serving(chain.start, chain.close))
        state = {**(state or {}), "chain": chain}  # CHAIN_STATE_KEY (not imported: web3)
    return create_service_app(
        spec.name,
        route_handlers=route_handlers,
        settings=settings,
        lifespan=[*lifespans, *lifespan],
        readiness_checks=checks,
        jwks_url=settings.auth_jwks_url,
        revocations=revocations.store,
        state=state,
    )


def make_bus(settings: Settings) -> Bus:
    if settings.amqp_url:
        from audifi_kit.bus.rabbitmq import RabbitBus

        return RabbitBus(settings.amqp_url)
    from audifi_kit.bus.inprocess import InProcessBus

    return InProcessBus()


def ordered(names: Sequence[str]) -> list[str]:
    return sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))


# The collector's thresholds for a server (CPython's are 700, 10, 10). With 700, whatever a
# request holds for tens of milliseconds (a vote waiting for its batch) was promoted to the
# oldest generation, and full collections over 2,000 sockets' half-million objects paused the
# process 200-250 ms, four times in ten seconds of voting (vstudio's rooms_bench: vote_update
# p99 450 ms, 245 ms with 10,000); in `make run`'s one process, with a room of 4,750 sockets
# through the gateway, each full collection paused every service for seconds (sign-in p99
# 2.6 s; 0.8 s without them). So the oldest generation is not collected on the way (1,000
# younger collections first: practically never) but every FULL_COLLECTION_SECONDS.
GC_THRESHOLDS = (10_000, 20, 1_000)
FULL_COLLECTION_SECONDS = 300.0


def tune_collector() -> None:
    """What was allocated to start (modules, apps, the chain) lives as long as the process:
    frozen out of the collector's sight; the youngest generation collected per 10,000
    objects, so short-lived ones die before they are promoted; the oldest left to
    `collect_periodically`."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def collect_periodically(interval: float = FULL_COLLECTION_SECONDS) -> None:
    """A full collection every `interval` seconds: the cycles that reached the oldest
    generation (closed sockets' tasks and protocols) are freed at a known rate, not
    whenever allocation happens to trigger it."""
    while True:
        await asyncio.sleep(interval)
        started = time.perf_counter()
        found = gc.collect()
        log.info(
            "full collection: %d unreachable objects in %.0f ms",
            found,
            1000 * (time.perf_counter() - started),
        )


async def serve(names: Sequence[str], settings: Settings) -> None:
    """Run the named deployables on this loop until SIGINT/SIGTERM; one bus when in-process."""
    apps = {name: load_app(name) for name in names}
    shared = None if settings.amqp_url else make_bus(settings)
    chain = None
    if any(a.uses_chain for a in apps.values()):
        from audifi_kit.chain.platform import PlatformChain

        chain = PlatformChain(settings)
    local_stripe = None
    if any(a.uses_stripe for a in apps.values()) and stripe_dev.wanted(os.environ):
        # One process: the services read STRIPE_* from this environment when they are built.
        os.environ.update(stripe_env := stripe_dev.local_stripe_env(settings, os.environ))
        local_stripe = stripe_dev.LocalStripe(settings, stripe_env)
        await local_stripe.start()
    try:
        await _serve_built(apps, names, settings, shared, chain)
    finally:
        if local_stripe is not None:
            await local_stripe.stop()


async def _serve_built(
    apps: Mapping[str, AppSpec],
    names: Sequence[str],
    settings: Settings,
    shared: Bus | None,
    chain: PlatformChain | None,
) -> None:
    order = ordered(names)
    apps_built = {
        name: apps[name].build(settings, shared or make_bus(settings), chain) for name in order
    }
    # A service that imports eth_account (auth) without the chain package has the limit py_ecc
    # set; put it back before anything is served (audifi_kit.recursion).
    restore_recursion_limit()
    tune_collector()
    # Who may name the client, malformed HTTP in the envelope, one connection ceiling for the
    # process: see audifi_kit.server.
    servers = build_servers(apps_built, settings)

    loop = asyncio.get_running_loop()

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop)
    tasks = [
        asyncio.create_task(s.serve(), name=f"serve-{n}")
        for s, n in zip(servers, order, strict=True)
    ]
    collector = asyncio.create_task(collect_periodically(), name="full-collections")
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        # One server ending (bind failure, startup error) ends the platform: never half up.
        stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        failed = [s.config.port for s in servers if not s.started]
        if failed:
            raise RuntimeError(f"could not start the servers on ports {failed}")
    finally:
        collector.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        _ignore_late_signals()


def _ignore_late_signals() -> None:
    """The process is on its way out: a second SIGINT/SIGTERM (a supervisor's after the
    terminal's) has nothing left to stop. Ignored, it cannot reach a handler whose event loop
    is closing (CPython then prints "Exception ignored when trying to write to the signal
    wakeup fd")."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


async def supervise(names: Sequence[str], settings: Settings, *, max_backoff: float = 30.0) -> None:
    """The distributed topology on one machine (`make up`): one process per deployable.

    Each runs `audifi serve NAME` with this environment. A process that exits is started again
    after a growing pause (reset once it has stayed up for a minute); SIGINT/SIGTERM stop all.
    """
    missing = [
        v
        for v, set_ in (("DATABASE_URL", settings.database_url), ("AMQP_URL", settings.amqp_url))
        if not set_
    ]
    if missing:
        raise LookupError(
            f"the distributed topology needs {' and '.join(missing)} (and REDIS_URL for shared "
            "rate limits); `make run` runs the embedded platform without them"
        )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopping.set)

    async def keep_running(
        name: str,
        command: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        argv: Sequence[str] = (),
    ) -> None:
        backoff = 1.0
        while not stopping.is_set():
            started = loop.time()
            process = await asyncio.create_subprocess_exec(
                *(argv or (sys.executable, "-m", "audifi_kit.cli", *(command or ("serve", name)))),
                env={**os.environ, **(env or {})},
            )
            log.info("started %s (pid %s)", name, process.pid)
            waiter = asyncio.create_task(process.wait())
            stop = asyncio.create_task(stopping.wait())
            await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
            if stopping.is_set():
                if process.returncode is None:
                    process.terminate()
                    try:
                        await asyncio.wait_for(waiter, 20)
                    except TimeoutError:
                        process.kill()
                        await waiter
                return
            stop.cancel()
            if loop.time() - started > 60:
                backoff = 1.0
            log.warning("%s exited with %s; restarting in %.0fs", name, process.returncode, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), backoff)
            backoff = min(backoff * 2, max_backoff)

    node: list[asyncio.Task[None]] = []
    users = [n for n in names if load_app(n).uses_chain]
    if users and not settings.chain_rpc_url:
        # One development chain for every process, as `audifi up` has one EVM for all services.
        node.append(asyncio.create_task(keep_running("chain", ("chain", "node"))))
        await _wait_until_up(f"{settings.chain_node_url}/health", stopping)
    envs = chain_envs(users, settings, os.environ)
    stripe_users = [n for n in names if load_app(n).uses_stripe]
    if stripe_users and stripe_dev.wanted(os.environ):
        stripe_env = stripe_dev.local_stripe_env(settings, os.environ)
        node.append(
            asyncio.create_task(
                keep_running("stripe", argv=stripe_dev.command(settings, stripe_env))
            )
        )
        await _wait_until_up(f"{stripe_env['STRIPE_API_BASE']}/healthz", stopping)
        for n in stripe_users:
            envs[n] = {**envs.get(n, {}), **stripe_env}
    try:
        for n in names:
            envs[n] = {**load_app(n).environment, **envs.get(n, {})}
        await asyncio.gather(*node, *(keep_running(n, env=envs.get(n)) for n in ordered(names)))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        _ignore_late_signals()


def chain_envs(
    users: Sequence[str], settings: Settings, environ: Mapping[str, str]
) -> dict[str, dict[str, str]]:
    """What each chain-using service's process gets on top of the supervisor's environment.

    No CHAIN_RPC_URL: the development node's URL and deployment, and the development key of the
    account the service would sign with in one process. A real node: `<NAME>_CHAIN_PRIVATE_KEY`
    as its CHAIN_PRIVATE_KEY — one key in two processes would be two nonce counters for one
    account, so sharing CHAIN_PRIVATE_KEY between services is warned about.
    """
    if not settings.chain_rpc_url:
        from audifi_kit.chain.devnode import dev_private_key

        node = settings.chain_node_url
        return {
            name: {
                "CHAIN_RPC_URL": node,
                "CHAIN_DEPLOYMENT": f"{node}/deployment",
                "CHAIN_PRIVATE_KEY": dev_private_key(name),
            }
            for name in users
        }
    envs = {
        name: {"CHAIN_PRIVATE_KEY": key}
        for name in users
        if (key := environ.get(f"{name.upper()}_CHAIN_PRIVATE_KEY", "").strip())
    }
    shared = [n for n in users if n not in envs]
    if len(shared) > 1:
        log.warning(
            "%s would all sign with CHAIN_PRIVATE_KEY: set <NAME>_CHAIN_PRIVATE_KEY for each",
            ", ".join(shared),
        )
    return envs


async def _wait_until_up(url: str, stopping: asyncio.Event, timeout: float = 120.0) -> None:
    """Until `url` answers 200 (or the supervisor is stopped)."""
    import httpx

    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while not stopping.is_set():
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"{url} did not come up within {timeout:.0f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 0.2)
