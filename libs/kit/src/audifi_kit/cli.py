"""`audifi`: the operator's command line — replay, republish, dead letters, parked projection
events, history, tail.

It reads the same environment as the services (DATABASE_URL, AMQP_URL, ...); with no
DATABASE_URL it uses the embedded PostgreSQL under ./var that `make run` started.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from enum import Enum
from importlib.metadata import entry_points
from typing import Annotated, Any, TypeVar
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from audifi_kit import spec as specs
from audifi_kit.bus import Bus
from audifi_kit.eventstore import EventStore, open_event_store
from audifi_kit.http.requests import configure_logging
from audifi_kit.messages import Message
from audifi_kit.notifications import NotificationLog
from audifi_kit.projections import (
    ParkedEvent,
    discard_parked,
    ensure_positions,
    list_parked,
    rebuild,
    retry_parked,
)
from audifi_kit.relay import build_messages
from audifi_kit.settings import Settings

app = typer.Typer(help="Operate the AudiFi platform: replay, republish, dead letters, history.")
dlq_app = typer.Typer(help="Parked messages: list, redrive or discard them.")
events_app = typer.Typer(help="Read a service's event log.")
app.add_typer(dlq_app, name="dlq")
app.add_typer(events_app, name="events")
chain_app = typer.Typer(help="The platform's contracts on a chain: deploy them, run a dev node.")
app.add_typer(chain_app, name="chain")
projections_app = typer.Typer(
    help="Events a projection could not apply (parked): list, retry or discard them."
)
app.add_typer(projections_app, name="projections")
# A service's own operations (payment: `audifi ledger verify`), from its `audifi.commands`.
for _ep in entry_points(group="audifi.commands"):
    app.add_typer(_ep.load(), name=_ep.name)
console = Console()
T = TypeVar("T")


def _run(coro: Awaitable[T]) -> T:
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except LookupError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


async def _with_store(
    service: str, fn: Callable[[EventStore[Any], specs.ServiceSpec], Awaitable[T]]
) -> T:
    spec = specs.find(service)
    store = await open_event_store(spec.name, spec.application, Settings.from_env())
    try:
        return await fn(store, spec)
    finally:
        await asyncio.to_thread(store.close)


async def _connected_bus(settings: Settings) -> Bus:
    if not settings.amqp_url:
        console.print(
            "[red]error:[/red] AMQP_URL is not set. The embedded platform's bus lives inside "
            "the `audifi up` process; this command needs the distributed bus (RabbitMQ)."
        )
        raise typer.Exit(2)
    from audifi_kit.bus.rabbitmq import RabbitBus

    bus = RabbitBus(settings.amqp_url)
    await bus.connect()
    return bus


async def _on_bus(action: Callable[[Bus], Awaitable[T]]) -> T:
    bus = await _connected_bus(Settings.from_env())
    try:
        return await action(bus)
    finally:
        await bus.close()


@app.command()
def replay(
    service: str,
    projection: str,
    page_size: Annotated[int, typer.Option(help="Events per transaction")] = 10_000,
) -> None:
    """Rebuild a read model from the service's log into a shadow schema and swap it in."""

    async def go(store: EventStore[Any], spec: specs.ServiceSpec) -> int:
        view = spec.projection(projection)()
        gc.freeze()  # what was loaded to start: out of the collector's way while pages churn
        with Progress(
            TextColumn(f"replay {service}.{projection}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("events", total=None)
            position = await rebuild(
                store,
                view,
                page_size=page_size,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        return position

    position = _run(_with_store(service, go))
    console.print(f"{service}.{projection} rebuilt and swapped in at position {position}")


@app.command()
def republish(
    service: str,
    from_: Annotated[int, typer.Option("--from", help="First notification id (inclusive)")],
    to: Annotated[int | None, typer.Option(help="Last notification id (inclusive)")] = None,
    queue: Annotated[str | None, typer.Option(help="Send only to this consumer queue")] = None,
) -> None:
    """Publish a range of the log again; consumers' inboxes drop what they already applied."""

    async def go(store: EventStore[Any], spec: specs.ServiceSpec) -> int:
        if spec.outbox is None:
            raise LookupError(f"{service} publishes no integration events")
        bus = await _connected_bus(store.settings)
        notification_log = NotificationLog(store.table)
        conn = await store.connect()
        sent = 0
        try:
            position = from_ - 1
            while True:
                page = await notification_log.read(conn, position, 500, upto=to)
                if not page:
                    return sent
                messages = build_messages(store, spec.outbox, page)
                if messages:
                    if queue:
                        await bus.send_to_queue(queue, messages)
                    else:
                        await bus.publish(messages)
                sent += len(messages)
                position = page[-1].id
        finally:
            await conn.close()
            await bus.close()

    sent = _run(_with_store(service, go))
    target = f"queue {queue}" if queue else "the exchange"
    console.print(f"republished {sent} message(s) of {service} to {target}")


def _message_row(m: Message) -> list[str]:
    return [
        m.message_id,
        m.routing_key,
        str(m.attempt),
        m.timestamp.isoformat(timespec="seconds"),
        m.last_error or "",
    ]


@dlq_app.command("list")
def dlq_list(queue: str, limit: Annotated[int, typer.Option()] = 50) -> None:
    """Show the messages parked for a consumer queue (nothing is removed)."""

    parked = _run(_on_bus(lambda bus: bus.parked(queue, limit)))
    table = Table("message id", "type", "attempts", "published", "error", title=f"{queue}.parking")
    for m in parked:
        table.add_row(*_message_row(m))
    console.print(table)
    console.print(f"{len(parked)} parked")


@dlq_app.command("redrive")
def dlq_redrive(
    queue: str,
    message_id: Annotated[list[str] | None, typer.Option("--id", help="Only these ids")] = None,
) -> None:
    """Send parked messages back to their queue, attempt counter reset."""

    moved = _run(_on_bus(lambda bus: bus.redrive(queue, message_id or None)))
    console.print(f"redrove {moved} message(s) to {queue}")


@dlq_app.command("discard")
def dlq_discard(
    queue: str,
    message_id: Annotated[list[str] | None, typer.Option("--id", help="Only these ids")] = None,
) -> None:
    """Drop parked messages for good."""

    dropped = _run(_on_bus(lambda bus: bus.discard(queue, message_id or None)))
    console.print(f"discarded {dropped} message(s) from {queue}.parking")


def _parked_row(p: ParkedEvent) -> list[str]:
    return [
        p.projection,
        str(p.notification_id),
        p.topic.rsplit(":", 1)[-1],
        f"{p.originator_id} v{p.originator_version}",
        str(p.attempts),
        p.parked_at.isoformat(timespec="seconds") if p.parked_at else "",
        f"{p.error_type.rsplit('.', 1)[-1]}: {p.error_message}",
    ]


def _parked_table(parked: list[ParkedEvent], title: str) -> Table:
    table = Table(
        "projection", "event id", "event", "aggregate", "attempts", "parked", "error", title=title
    )
    for p in parked:
        table.add_row(*_parked_row(p))
    return table


@projections_app.command("parked")
def projections_parked(
    service: str,
    projection: Annotated[str | None, typer.Argument(help="Only this projection")] = None,
    limit: Annotated[int, typer.Option()] = 50,
) -> None:
    """Show the events a service's projections parked (nothing is changed)."""

    async def go(store: EventStore[Any], spec: specs.ServiceSpec) -> list[ParkedEvent]:
        if projection is not None:
            spec.projection(projection)  # an unknown name is an error, not "0 parked"
        conn = await store.connect()
        try:
            await ensure_positions(conn)
            return await list_parked(conn, projection, limit=limit)
        finally:
            await conn.close()

    parked = _run(_with_store(service, go))
    title = f"{service}.{projection}" if projection else service
    console.print(_parked_table(parked, f"parked events of {title}"))
    console.print(f"{len(parked)} parked")


@projections_app.command("retry")
def projections_retry(
    service: str,
    projection: str,
    event_id: Annotated[list[int] | None, typer.Option("--id", help="Only these event ids")] = None,
) -> None:
    """Apply parked events again with the handlers as deployed now; those that apply leave the
    parked list, the others stay (their attempts counted)."""

    async def go(store: EventStore[Any], spec: specs.ServiceSpec) -> Any:
        return await retry_parked(store, spec.projection(projection)(), event_id or None)

    outcome = _run(_with_store(service, go))
    if outcome.still_parked:
        console.print(_parked_table(outcome.still_parked, "still parked"))
    console.print(
        f"applied {len(outcome.applied)} event(s) to {service}.{projection}; "
        f"{len(outcome.still_parked)} still parked"
    )
    if outcome.still_parked:
        raise typer.Exit(1)


@projections_app.command("discard")
def projections_discard(
    service: str,
    projection: str,
    event_id: Annotated[list[int] | None, typer.Option("--id", help="Only these event ids")] = None,
) -> None:
    """Drop parked events for good: the view stays without them (`audifi replay` rebuilds it
    from the log, where every event still is)."""

    async def go(store: EventStore[Any], spec: specs.ServiceSpec) -> int:
        spec.projection(projection)
        conn = await store.connect()
        try:
            await ensure_positions(conn)
            return await discard_parked(conn, projection, event_id or None)
        finally:
            await conn.close()

    dropped = _run(_with_store(service, go))
    console.print(f"discarded {dropped} parked event(s) of {service}.{projection}")


def _plain(value: Any) -> Any:
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def _public_state(obj: Any) -> dict[str, Any]:
    return {k.lstrip("_"): _plain(v) for k, v in vars(obj).items() if not k.startswith("__")}


@app.command()
def history(
    service: str,
    aggregate_id: UUID,
    version: Annotated[int | None, typer.Option(help="State at this version")] = None,
) -> None:
    """An aggregate's events and its state at a version (default: the latest)."""

    async def go(store: EventStore[Any], spec: specs.ServiceSpec) -> tuple[list[Any], Any]:
        events = await store.call(lambda: list(store.app.events.get(aggregate_id)))
        if not events:
            raise LookupError(f"{service} has no aggregate {aggregate_id}")
        state = await store.call(store.app.repository.get, aggregate_id, version=version)
        return events, state

    events, state = _run(_with_store(service, go))
    table = Table("version", "event", "at", "data", title=f"{service} {aggregate_id}")
    for e in events:
        data = {
            k: v
            for k, v in _public_state(e).items()
            if k not in ("originator_id", "originator_version", "timestamp", "originator_topic")
        }
        table.add_row(
            str(e.originator_version),
            type(e).__qualname__,
            e.timestamp.isoformat(timespec="seconds"),
            json.dumps(data, default=str),
        )
    console.print(table)
    at = version if version is not None else events[-1].originator_version
    console.print(f"state at version {at}:")
    console.print_json(json.dumps(_public_state(state), default=str))


@events_app.command("tail")
def events_tail(
    service: str,
    from_: Annotated[int | None, typer.Option("--from", help="After this notification id")] = None,
    follow: Annotated[bool, typer.Option(help="Keep printing new events")] = True,
    limit: Annotated[int, typer.Option(help="Without --from: start this many from the end")] = 20,
) -> None:
    """Print a service's events as JSON lines, oldest first."""

    async def go(store: EventStore[Any], spec: specs.ServiceSpec) -> None:
        notification_log = NotificationLog(store.table)
        conn = await store.connect()
        try:
            position = from_
            if position is None:
                position = await notification_log.position_before_last(conn, limit)
            while True:
                page = await notification_log.read(conn, position, 500)
                for n in page:
                    event, event_meta = store.decode(n)
                    line = {
                        "id": n.id,
                        "aggregate": str(n.originator_id),
                        "version": n.originator_version,
                        "event": n.topic,
                        "data": _public_state(event),
                        **event_meta.as_dict(),
                    }
                    console.print_json(json.dumps(line, default=str), indent=None)
                if page:
                    position = page[-1].id
                elif not follow:
                    return
                else:
                    await asyncio.sleep(store.settings.poll_interval)
        finally:
            await conn.close()

    _run(_with_store(service, go))


@app.command()
def serve(
    services: Annotated[list[str], typer.Argument(help="Which to run, e.g. `nft` or `gateway`")],
) -> None:
    """Run services in this process, each on its own port (the distributed topology's unit)."""
    from audifi_kit import launch

    settings = Settings.from_env()
    configure_logging("+".join(services), os.environ.get("AUDIFI_LOG_LEVEL", "INFO"))
    _run(launch.serve(services, settings))


@app.command()
def up(
    distributed: Annotated[
        bool, typer.Option(help="One supervised process per service (needs DATABASE_URL, AMQP_URL)")
    ] = False,
) -> None:
    """The whole platform: every service and the gateway.

    By default in one process (`make run`): with no DATABASE_URL, PostgreSQL runs embedded under
    ./var; with no AMQP_URL, one in-process bus joins the services; with no REDIS_URL, stores
    are in memory. `--distributed` (`make up`) runs each in its own process instead.
    """
    from audifi_kit import launch

    settings = Settings.from_env()
    configure_logging("platform", os.environ.get("AUDIFI_LOG_LEVEL", "INFO"))
    names = launch.deployables()
    if distributed:
        console.print(f"AudiFi distributed: one process each for {', '.join(names)}")
        _run(launch.supervise(names, settings))
        return
    console.print(
        f"AudiFi: starting {', '.join(names)}; gateway on "
        f"http://{settings.host}:{settings.port('gateway')}/api/v1"
    )
    _run(launch.serve(names, settings))


@chain_app.command("deploy")
def chain_deploy(
    out: Annotated[str, typer.Option(help="Where to write the deployment (CHAIN_DEPLOYMENT)")],
    nft: Annotated[str, typer.Option(help="Address the nft service signs with")],
    coin: Annotated[str, typer.Option(help="Address the coin service signs with")],
    payment: Annotated[str, typer.Option(help="Address the payment service signs with")],
    payment_token: Annotated[
        str | None,
        typer.Option(help="The ERC-20 the platform is paid in (e.g. USDC); unset: deploy DevUSD"),
    ] = None,
) -> None:
    """Deploy the platform contracts to CHAIN_RPC_URL, signed with CHAIN_PRIVATE_KEY.

    Each contract is handed to the service that operates it; the deploying key keeps no role.
    The services then run with CHAIN_DEPLOYMENT pointing at the written file.
    """
    from audifi_kit.chain import ChainAdapter
    from audifi_kit.chain.platform import deploy_platform
    from audifi_kit.errors import BlockchainError

    settings = Settings.from_env()
    if not settings.chain_rpc_url:
        console.print("[red]error:[/red] CHAIN_RPC_URL is not set: deploy to which node?")
        raise typer.Exit(2)

    async def go() -> bytes:
        adapter = await ChainAdapter.connect(settings)
        try:
            operators = {"nft": nft, "coin": coin, "payment": payment}
            for service, address in operators.items():
                if not adapter.w3.is_address(address):
                    raise BlockchainError(
                        f"--{service} is not an address", details={"value": address}
                    )
            operators = {s: adapter.w3.to_checksum_address(a) for s, a in operators.items()}
            deployment = await deploy_platform(
                adapter, operators, payment_token=payment_token, settings=settings
            )
            return deployment.to_json()
        finally:
            await adapter.close()

    try:
        data = _run(go())
    except BlockchainError as exc:
        details = json.dumps(exc.details or {}, default=str)
        console.print(f"[red]error:[/red] {exc.message} {details}")
        raise typer.Exit(1) from None
    with open(out, "wb") as f:
        f.write(data)
    console.print(f"deployed; wrote {out}")
    console.print_json(data.decode())


@chain_app.command("node")
def chain_node(
    port: Annotated[
        int | None, typer.Option(help="Default: AUDIFI_CHAIN_NODE_PORT, else 8545")
    ] = None,
) -> None:
    """A development node: the embedded EVM over JSON-RPC with the platform deployed (its
    accounts' keys are public: for development and tests only)."""
    import uvicorn

    from audifi_kit.chain.devnode import create_node_app

    settings = Settings.from_env()
    configure_logging("chain", os.environ.get("AUDIFI_LOG_LEVEL", "INFO"))
    uvicorn.run(
        create_node_app(settings),
        host=settings.host,
        port=port or settings.chain_node_port,
        log_config=None,
        access_log=False,
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
