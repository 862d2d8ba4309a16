"""`make bench` for the event platform kit: figures, each beside a raw baseline of the same run.

    write      saves/s one command per transaction and with group commit, 50 concurrent
               writers, vs raw asyncpg INSERTs of rows shaped like the events, one per
               transaction, on one connection
    relay      events/s from the event store to RabbitMQ with confirms
               vs raw aio-pika publish-with-confirms of the same messages
    replay     events/s rebuilding a projection (set-based: a page per statement; and the
               same view one statement per event) vs a raw SELECT of the same rows that
               decodes each payload with msgspec (the SELECT alone is printed beside it)
    latency    save -> consumer handler, p50/p99, at half the rate and at the rate (500/s)
    saturation save -> consumer handler: the rate the consumer keeps up with when writers
               submit as fast as they can

In latency and saturation the consuming service runs in its own process, as it does deployed:
this process is the writing service (its commands, group commit and outbox relay); the
consumer's handler records when each event arrived (CLOCK_MONOTONIC, shared by processes).

Printed, never asserted. Uses DATABASE_URL / AMQP_URL, else the local default servers.
`--parts write,replay` runs only those parts.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import aio_pika
import asyncpg
import msgspec
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from audifi_kit.bus.rabbitmq import RabbitBus
from audifi_kit.eventstore import GroupCommit, open_event_store
from audifi_kit.inbox import Consumer, HandlerContext, InboxWorker
from audifi_kit.notifications import NotificationLog
from audifi_kit.postgres import service_database
from audifi_kit.projections import rebuild
from audifi_kit.relay import OutboxRelay, build_messages
from audifi_kit.settings import Settings
from audifi_kit.testing import LOCAL_DEFAULTS
from kit_sample import Balances, Bank, PageBalances, outbox

console = Console()
# Benchmarks publish through their own exchange: queues of anything else on the broker never
# receive (and slow down) their traffic. Deleted at the end of the run.
BENCH_EXCHANGE = f"audifi.bench-{uuid.uuid4().hex[:6]}"
rows: list[tuple[str, str, str, str]] = []
SATURATION_WRITERS = 200


def record(name: str, figure: str, baseline: str, ratio: float | None) -> None:
    rows.append((name, figure, baseline, "" if ratio is None else f"{ratio:.2f}"))
    console.print(
        f"[bold]{name}[/bold]: {figure}  |  baseline {baseline}  |  ratio {ratio or 0:.2f}"
    )


async def seed(store, accounts: int, credits: int) -> list[uuid.UUID]:
    group = GroupCommit(store)
    ids = [await store.call(store.app.open_account, f"o{i}") for i in range(accounts)]
    try:
        for start in range(0, credits, 1000):
            await asyncio.gather(
                *(
                    group.submit(
                        lambda i=i: store.app.decide_credit(ids[i % accounts], 1),
                        loads=[ids[i % accounts]],
                    )
                    for i in range(start, min(start + 1000, credits))
                )
            )
    finally:
        await group.close()
    return ids


async def raw_insert_rate(store, rows: int) -> float:
    """INSERTs of rows shaped like the store's events (same payloads), one per transaction."""
    conn = await store.connect()
    try:
        payloads = [
            (r["topic"], r["state"])
            for r in await conn.fetch(f"SELECT topic, state FROM {store.table} LIMIT 1000")
        ]
        await conn.execute(
            "CREATE TABLE raw_rows (originator_id uuid, originator_version bigint, topic text, "
            "state bytea, notification_id bigserial, PRIMARY KEY (originator_id, "
            "originator_version))"
        )
        await conn.execute("CREATE UNIQUE INDEX ON raw_rows (notification_id)")
        insert = await conn.prepare(
            "INSERT INTO raw_rows (originator_id, originator_version, topic, state) "
            "VALUES ($1, $2, $3, $4)"
        )
        t = time.perf_counter()
        for i in range(rows):
            topic, state = payloads[i % len(payloads)]
            await insert.fetch(uuid.uuid4(), 1, topic, state)
        return rows / (time.perf_counter() - t)
    finally:
        await conn.close()


async def single_saves(settings: Settings, n: int) -> float:
    """Saves/s of 50 writers, one command and one transaction each."""
    store = await open_event_store("sample", Bank, settings)
    try:
        ids = [await store.call(store.app.open_account, f"o{i}") for i in range(50)]

        async def one_by_one(worker: int) -> None:
            for k in range(n // 50):
                await store.call(store.app.credit, ids[worker], k)

        t = time.perf_counter()
        await asyncio.gather(*(one_by_one(w) for w in range(50)))
        return n / (time.perf_counter() - t)
    finally:
        store.close()


async def bench_write(settings: Settings, n: int) -> None:
    # A sole writer (one replica, the default) decides from its cache; replicas read the
    # events newer than their cached copy first (fast-forward): both, in their own databases.
    single = await single_saves(replace(settings, db_prefix=settings.db_prefix + "sole_"), n)
    replicas = await single_saves(
        replace(settings, db_prefix=settings.db_prefix + "ff_", sole_writer=False), n
    )
    store = await open_event_store("sample", Bank, settings)
    try:
        ids = [await store.call(store.app.open_account, f"o{i}") for i in range(50)]

        group = GroupCommit(store)

        async def grouped(worker: int) -> None:
            for k in range(n // 50):
                await group.submit(
                    lambda k=k: store.app.decide_credit(ids[worker], k), loads=[ids[worker]]
                )

        t = time.perf_counter()
        await asyncio.gather(*(grouped(w) for w in range(50)))
        batched = n / (time.perf_counter() - t)
        batches = group.batches
        await group.close()

        raw = await raw_insert_rate(store, n // 10)
        record(
            "write, one save per transaction (50 writers)",
            f"{single:,.0f} saves/s",
            f"raw asyncpg INSERT {raw:,.0f}/s",
            single / raw,
        )
        record(
            "write, one save per transaction, replicas (fast-forward)",
            f"{replicas:,.0f} saves/s",
            f"raw asyncpg INSERT {raw:,.0f}/s",
            replicas / raw,
        )
        record(
            "write, group commit (50 writers)",
            f"{batched:,.0f} saves/s ({n / batches:.0f}/batch, {batched / single:.2f}x one-by-one)",
            f"raw asyncpg INSERT {raw:,.0f}/s",
            batched / raw,
        )
    finally:
        store.close()


async def bench_relay(settings: Settings, n: int) -> None:
    store = await open_event_store("sample", Bank, settings)
    bus = RabbitBus(settings.amqp_url, exchange=BENCH_EXCHANGE)
    await bus.connect()
    queue = f"bench.relay-{uuid.uuid4().hex[:6]}"
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        await seed(store, 50, n)
        channel = await connection.channel(publisher_confirms=True)
        q = await channel.declare_queue(queue, durable=True, arguments={"x-queue-type": "quorum"})
        exchange = await channel.get_exchange(BENCH_EXCHANGE)
        await q.bind(exchange, "sample.#")

        conn = await store.connect()
        try:
            head = await NotificationLog(store.table).max_id(conn)
        finally:
            await conn.close()
        relay = OutboxRelay(store, bus, outbox)
        t = time.perf_counter()
        await relay.start()
        await relay.wait_caught_up(head, timeout=300)
        relayed = n / (time.perf_counter() - t)
        await relay.stop()

        conn = await store.connect()
        try:
            page = await NotificationLog(store.table).read(conn, 0, n + 50)
        finally:
            await conn.close()
        messages = build_messages(store, outbox, page)
        t = time.perf_counter()
        for start in range(0, len(messages), 500):
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            m.body,
                            message_id=m.message_id,
                            type=m.routing_key,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            content_type=m.content_type,
                        ),
                        routing_key=m.routing_key,
                    )
                    for m in messages[start : start + 500]
                )
            )
        raw = len(messages) / (time.perf_counter() - t)
        record(
            "relay store -> RabbitMQ, confirmed",
            f"{relayed:,.0f} events/s",
            f"raw aio-pika confirmed publish {raw:,.0f} msg/s",
            relayed / raw,
        )
    finally:
        await channel.queue_delete(queue)
        await connection.close()
        await bus.close()
        store.close()


class NoOpBalances(Balances):
    """The same projection with handlers that do nothing: what replay costs the kit alone."""

    name = "noop_balances"

    async def opened(self, conn, e, _n) -> None:
        pass

    async def credited(self, conn, e, _n) -> None:
        pass


async def bench_replay(settings: Settings, n: int) -> None:
    store = await open_event_store("sample", Bank, settings)
    try:
        await seed(store, 100, n)
        conn = await store.connect()
        try:
            # A log as a replay meets it: written a while ago and visited by autovacuum (not
            # being vacuumed during the measurement, its rows' hint bits set once).
            await conn.execute(f"VACUUM ANALYZE {store.table}")
            select = f"SELECT * FROM {store.table} ORDER BY notification_id"
            decode = msgspec.json.decode
            rebuilt = fetched = raw = 0.0
            # The best of three of each, interleaved: a rebuild and the raw SELECTs are
            # measured side by side, in the same moments of a noisy machine.
            for _ in range(3):
                t = time.perf_counter()
                await rebuild(store, PageBalances(), page_size=10_000)
                rebuilt = max(rebuilt, (n + 100) / (time.perf_counter() - t))
                t = time.perf_counter()
                got = len(await conn.fetch(select))
                fetched = max(fetched, got / (time.perf_counter() - t))
                t = time.perf_counter()
                got = sum(1 for r in await conn.fetch(select) if decode(r["state"]) is not None)
                raw = max(raw, got / (time.perf_counter() - t))
        finally:
            await conn.close()
        t = time.perf_counter()
        await rebuild(store, Balances(), page_size=1000)
        one_by_one = (n + 100) / (time.perf_counter() - t)
        t = time.perf_counter()
        await rebuild(store, NoOpBalances(), page_size=10_000)
        kit_only = (n + 100) / (time.perf_counter() - t)
        baseline = (
            f"raw SELECT + msgspec decode of the same rows {raw:,.0f} rows/s "
            f"(SELECT alone {fetched:,.0f} rows/s)"
        )
        record(
            "replay a projection (set-based, a page per statement)",
            f"{rebuilt:,.0f} events/s",
            baseline,
            rebuilt / raw,
        )
        record(
            "replay, the same view one statement per event",
            f"{one_by_one:,.0f} events/s",
            baseline,
            one_by_one / raw,
        )
        record(
            "replay, per-event handlers doing nothing (decoding domain events)",
            f"{kit_only:,.0f} events/s",
            baseline,
            kit_only / raw,
        )
    finally:
        store.close()


def consumer_process(
    settings: Settings, queue_purpose: str, exchange: str, ready, count, stop, results
) -> None:
    """The consuming service: an InboxWorker on its own event loop, in its own process."""

    async def run() -> None:
        # Its own database, as every service has: its inbox's transactions are none of the
        # writing service's (whose readers wait for transactions in their own database).
        location = await service_database(settings, "consumer")
        bus = RabbitBus(settings.amqp_url, exchange=exchange)
        await bus.connect()
        pool = await asyncpg.create_pool(location.asyncpg_dsn, min_size=2, max_size=8)
        consumer = Consumer("bench", queue_purpose)
        handled_at: dict[int, float] = {}

        @consumer.handler("sample.account.credited")
        async def on_credit(_event, ctx: HandlerContext) -> None:
            handled_at[int(ctx.message.message_id.rsplit("-", 1)[1])] = time.monotonic()
            count.value += 1

        worker = InboxWorker(consumer, bus, pool)
        await worker.start()
        ready.set()
        try:
            while not stop.is_set():
                await asyncio.sleep(0.05)
        finally:
            await worker.stop()
            await bus.delete_queue(consumer.spec)
            await pool.close()
            await bus.close()
        results.put((handled_at, worker.batches))

    asyncio.run(run())


async def bench_latency(settings: Settings, seconds: float, rate: int) -> None:
    store = await open_event_store("sample", Bank, settings)
    bus = RabbitBus(settings.amqp_url, exchange=BENCH_EXCHANGE)
    await bus.connect()
    saved_at: dict[int, float] = {}
    spawn = multiprocessing.get_context("spawn")
    ready, stop, count, results = spawn.Event(), spawn.Event(), spawn.Value("q", 0), spawn.Queue()
    child = spawn.Process(
        target=consumer_process,
        args=(
            settings,
            f"latency-{uuid.uuid4().hex[:6]}",
            BENCH_EXCHANGE,
            ready,
            count,
            stop,
            results,
        ),
        daemon=True,
    )
    child.start()
    relay = OutboxRelay(store, bus, outbox)
    try:
        await asyncio.to_thread(ready.wait, 60)
        await relay.start()
        ids = [await store.call(store.app.open_account, f"o{i}") for i in range(20)]
        group = GroupCommit(store)
        start = time.monotonic()

        async def one(i: int) -> None:
            before = time.monotonic()
            [nid] = await group.submit(
                lambda: store.app.decide_credit(ids[i % 20], 1), loads=[ids[i % 20]]
            )
            saved_at[nid] = before  # from the command's submission, as a caller would see it

        if rate:
            total = int(seconds * rate)
            tasks = []
            for i in range(total):
                target = start + i / rate
                delay = target - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
        else:
            # Saturation: writers as fast as they can (a closed loop of SATURATION_WRITERS
            # callers); the figure is what the consumer keeps up with, end to end.
            stop_at = start + seconds
            counter = iter(range(10**9))

            async def writer() -> None:
                while time.monotonic() < stop_at:
                    await one(next(counter))

            await asyncio.gather(*(writer() for _ in range(SATURATION_WRITERS)))
            total = len(saved_at)
        achieved = total / (time.monotonic() - start)
        deadline = time.monotonic() + 120
        while count.value < total and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await group.close()
        stop.set()
        handled_at, batches = await asyncio.to_thread(results.get, True, 60)
        lat = sorted(handled_at[n] - t for n, t in saved_at.items() if n in handled_at)
        p50 = statistics.median(lat) * 1000
        p99 = lat[int(len(lat) * 0.99) - 1] * 1000
        per_batch = len(lat) / max(batches, 1)
        if rate:
            record(
                f"latency save -> handler at {achieved:,.0f} events/s",
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(lat)}/{total} seen, "
                f"{per_batch:.1f}/consumer transaction)",
                "(no raw baseline: end-to-end figure)",
                None,
            )
        else:
            handled = len(lat) / (max(handled_at.values()) - start)
            record(
                "saturation save -> handler",
                f"{handled:,.0f} events/s handled (saved {achieved:,.0f}/s; "
                f"p50 {p50:.0f} ms, p99 {p99:.0f} ms; {len(lat)}/{total} seen; "
                f"{per_batch:.1f}/consumer transaction)",
                "(no raw baseline: end-to-end figure)",
                None,
            )
    finally:
        stop.set()
        await relay.stop()
        await asyncio.to_thread(child.join, 30)
        await bus.close()
        store.close()


PARTS = ("write", "relay", "replay", "latency", "saturation")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument(
        "--replay-events",
        type=int,
        default=100_000,
        help="events in the replayed log (a replay's fixed costs, schema swap and count, "
        "would dominate a small one)",
    )
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--parts", default=",".join(PARTS), help="of " + ",".join(PARTS))
    args = parser.parse_args()
    wanted = args.parts.split(",")

    server = os.environ.get("DATABASE_URL") or LOCAL_DEFAULTS["DATABASE_URL"][0]
    amqp = os.environ.get("AMQP_URL") or LOCAL_DEFAULTS["AMQP_URL"][0]
    prefix = f"audifi_bench{uuid.uuid4().hex[:6]}_"
    gc.freeze()  # as `audifi up` and `audifi replay` do once started
    console.print(f"kit benchmark: {args.events} events, PostgreSQL and RabbitMQ on this machine")
    try:
        for name, fn in (
            ("write", lambda s: bench_write(s, args.events)),
            ("relay", lambda s: bench_relay(s, args.events)),
            ("replay", lambda s: bench_replay(s, args.replay_events)),
            # Half the rate and the rate: below saturation, and where 2 cores shared by the
            # writer, the relay, RabbitMQ, PostgreSQL and the consumer start to queue.
            ("latency", lambda s: bench_latency(s, args.latency_seconds, args.rate // 2)),
            ("latency2", lambda s: bench_latency(s, args.latency_seconds, args.rate)),
            ("saturation", lambda s: bench_latency(s, args.latency_seconds, 0)),
        ):
            if name.rstrip("2") not in wanted:
                continue
            settings = Settings(database_url=server, amqp_url=amqp, db_prefix=f"{prefix}{name}_")
            await fn(settings)
    finally:
        connection = await aio_pika.connect(amqp)
        async with connection:
            channel = await connection.channel()
            await channel.exchange_delete(BENCH_EXCHANGE)
        admin = await asyncpg.connect(server)
        for row in await admin.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "%"
        ):
            await admin.execute(f'DROP DATABASE "{row["datname"]}" WITH (FORCE)')
        await admin.close()
    table = Table("benchmark", "figure", "baseline (same run)", "ratio", title="audifi kit")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    if profile_to := os.environ.get("KIT_BENCH_PROFILE"):  # cProfile of this process only
        import cProfile

        cProfile.run("asyncio.run(main())", profile_to)
    else:
        asyncio.run(main())
