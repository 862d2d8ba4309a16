"""`make bench` for payment: the ledger's write path and Stripe webhooks, beside raw baselines.

    ledger     balanced transactions/s (3 legs each: clearing debited, platform fee and a
               user's balance credited — the user's guard checked and moved), 50 concurrent
               writers through the kit's group commit, vs raw asyncpg INSERTs of the same rows
               (the same stored events, one transaction per ledger transaction) in this run
    webhooks   Stripe events verified and booked per second through the gateway: paid charges
               made on the local Stripe with its webhooks held, then released at once; the
               figure is events answered 200 per second (each read back from Stripe, each
               charge booked once), beside the local Stripe's delivery to a receiver that only
               answers 200, in the same run

Printed, never asserted. Uses DATABASE_URL (else the local server).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
import uuid
from pathlib import Path

import httpx
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.eventstore import GroupCommit, open_event_store
from audifi_kit.settings import Settings
from audifi_kit.testing import LOCAL_DEFAULTS, TokenSigner, drop_databases, free_port, served
from audifi_payment.application import PaymentApplication
from audifi_payment.domain.ledger import Direction, Leg
from rich.console import Console
from rich.table import Table

console = Console()
rows: list[tuple[str, str, str, str]] = []
WRITERS = 50


def record(name: str, figure: str, baseline: str, ratio: float | None) -> None:
    rows.append((name, figure, baseline, "" if ratio is None else f"{ratio:.2f}"))
    console.print(
        f"[bold]{name}[/bold]: {figure}  |  baseline {baseline}  |  ratio {ratio or 0:.2f}"
    )


def legs(user: str, amount: int) -> list[Leg]:
    return [
        Leg("stripe:clearing", Direction.DEBIT, amount, "stripe_charge"),
        Leg("platform:fees", Direction.CREDIT, amount // 20, "platform_fee"),
        Leg(f"user:{user}:available", Direction.CREDIT, amount - amount // 20, "split"),
    ]


async def raw_rate(store, transactions: int) -> float:
    """The same rows (each ledger transaction's stored events), inserted by asyncpg, one
    database transaction per ledger transaction, 50 connections at once."""
    conn = await store.connect()
    try:
        stored = await conn.fetch(
            f"SELECT originator_id, originator_version, topic, state FROM {store.table} "
            "ORDER BY notification_id LIMIT 2000"
        )
        await conn.execute(
            "CREATE TABLE raw_rows (originator_id uuid, originator_version bigint, topic text, "
            "state bytea, notification_id bigserial, PRIMARY KEY (originator_id, "
            "originator_version))"
        )
        await conn.execute("CREATE UNIQUE INDEX ON raw_rows (notification_id)")
    finally:
        await conn.close()
    per_txn = 2  # a Recorded transaction and its user guard's Booked
    pool = await store.create_pool(min_size=WRITERS, max_size=WRITERS)
    try:
        insert = (
            "INSERT INTO raw_rows (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bytea[])"
        )

        async def writer(w: int) -> None:
            async with pool.acquire() as c:
                for k in range(transactions // WRITERS):
                    picked = [
                        stored[(w * 7 + k * per_txn + j) % len(stored)] for j in range(per_txn)
                    ]
                    await c.execute(
                        insert,
                        [uuid.uuid4() for _ in picked],
                        [1 for _ in picked],
                        [r["topic"] for r in picked],
                        [r["state"] for r in picked],
                    )

        t = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(WRITERS)))
        return (transactions // WRITERS * WRITERS) / (time.perf_counter() - t)
    finally:
        await pool.close()


async def bench_ledger(settings: Settings, transactions: int) -> None:
    store = await open_event_store("payment", PaymentApplication, settings)
    group = GroupCommit(store)
    users = [str(uuid.uuid4()) for _ in range(WRITERS)]
    try:

        async def writer(w: int) -> None:
            guards = store.app.guards_of("USD", legs(users[w], 1_000))
            for k in range(transactions // WRITERS):
                await group.submit(
                    lambda k=k: (
                        store.app.prepare_record(
                            currency="USD",
                            legs=legs(users[w], 1_000 + k),
                            event_source="stripe_charge",
                            reference_id=f"ch_bench_{w}_{k}",
                        ).aggregates
                    ),
                    loads=guards,
                )

        t = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(WRITERS)))
        rate = (transactions // WRITERS * WRITERS) / (time.perf_counter() - t)
        batches = group.batches
        await group.close()
        raw = await raw_rate(store, transactions)
        record(
            "ledger transactions, group commit (3 legs, 50 writers)",
            f"{rate:,.0f} txn/s ({transactions / max(batches, 1):.0f}/batch)",
            f"raw asyncpg INSERT of the same rows {raw:,.0f} txn/s",
            rate / raw,
        )
    finally:
        store.close()


async def bench_webhooks(settings: Settings, charges: int) -> None:
    """Payment and the gateway served here, the local Stripe as its own process."""
    from audifi_gateway.app import create_app as gateway_app
    from audifi_gateway.config import GatewayConfig
    from audifi_payment.app import create_app as payment_app
    from audifi_payment.config import PaymentSettings
    from audifi_stripe_local.testing import StripeLocal
    from litestar import Litestar, get, post

    signer = TokenSigner()

    @get("/.well-known/jwks.json", sync_to_thread=False)
    def jwks() -> dict:
        return signer.jwks()

    @post("/ok", sync_to_thread=False, status_code=200)
    def taken() -> dict:
        return {}

    secret = f"whsec_bench_{uuid.uuid4().hex}"
    gateway_port, payment_port = free_port(), free_port()
    async with served(Litestar([jwks, taken])) as aux:
        webhook = f"http://127.0.0.1:{gateway_port}/api/v1/stripe/webhook"
        with StripeLocal([webhook, f"{aux}/ok"], secret) as stripe_url:
            s = Settings(
                database_url=settings.database_url,
                db_prefix=settings.db_prefix,
                var_dir=settings.var_dir,
                jwks_url=f"{aux}/.well-known/jwks.json",
                urls={"payment": f"http://127.0.0.1:{payment_port}"},
                ports={"gateway": gateway_port, "payment": payment_port},
            )
            config = PaymentSettings(stripe_api_base=stripe_url, stripe_webhook_secret=secret)
            gateway_config = GatewayConfig.from_env(
                {"AUDIFI_RATE_LIMITS": "webhook=1000000/60,write=1000000/60,default=1000000/60"}
            )
            async with (
                served(payment_app(s, InProcessBus(), config=config), port=payment_port),
                served(gateway_app(s, InProcessBus(), config=gateway_config), port=gateway_port),
                httpx.AsyncClient(timeout=30) as client,
            ):
                await _webhooks(client, stripe_url, aux, signer, gateway_port, charges)


async def _webhooks(client, stripe_url, aux, signer, gateway_port, charges) -> None:
    gw = f"http://127.0.0.1:{gateway_port}/api/v1"
    artist = str(uuid.uuid4())
    auth = {"Authorization": f"Bearer {signer.token(artist, roles=('artist',))}"}
    fan_auth = {"Authorization": f"Bearer {signer.token(str(uuid.uuid4()), roles=('fan',))}"}
    await client.post(f"{stripe_url}/_local/webhooks/hold")
    for i in range(charges):  # a subscription each: many events per charge, all ours
        tier = (
            await client.post(
                f"{gw}/tiers",
                json={
                    "name": f"T{i}",
                    "priceCents": 500 + i,
                    "currency": "USD",
                    "interval": "month",
                },
                headers=auth,
            )
        ).json()
        session = (
            await client.post(f"{gw}/subscriptions", json={"tierId": tier["id"]}, headers=fan_auth)
        ).json()
        await client.post(session["url"], data={"card_number": "4242424242424242"})
        fan_auth = {"Authorization": f"Bearer {signer.token(str(uuid.uuid4()), roles=('fan',))}"}
    released = (await client.post(f"{stripe_url}/_local/webhooks/release")).json()["released"]
    t = time.perf_counter()
    done_at: dict[str, float] = {}
    while len(done_at) < 2:
        data = (await client.get(f"{stripe_url}/_local/deliveries")).json()["data"]
        for target in ("stripe/webhook", "/ok"):
            ok = [d for d in data if target in d["url"] and d["status"] == 200]
            if target not in done_at and len({d["event"] for d in ok} & set(released)) == len(
                released
            ):
                done_at[target] = time.perf_counter() - t
        await asyncio.sleep(0.05)
    handled = len(released) / done_at["stripe/webhook"]
    receiver = len(released) / done_at["/ok"]
    record(
        f"Stripe webhooks verified and booked through the gateway ({charges} subscriptions)",
        f"{handled:,.0f} events/s ({len(released)} events)",
        f"the local Stripe delivering to a bare 200 receiver {receiver:,.0f} events/s",
        handled / receiver,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transactions", type=int, default=10_000)
    parser.add_argument("--charges", type=int, default=30)
    parser.add_argument("--parts", default="ledger,webhooks")
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL") or LOCAL_DEFAULTS["DATABASE_URL"][0]
    prefix = f"audifi_pbench{uuid.uuid4().hex[:6]}_"
    gc.freeze()
    try:
        settings = Settings(
            database_url=server,
            db_prefix=prefix,
            var_dir=Path("var/bench"),
            pool_size=int(os.environ.get("AUDIFI_POOL_SIZE", "8")),
        )
        if "ledger" in args.parts:
            await bench_ledger(settings, args.transactions)
        if "webhooks" in args.parts:
            await bench_webhooks(settings, args.charges)
    finally:
        await drop_databases(server, prefix)
    table = Table("benchmark", "figure", "baseline (same run)", "ratio", title="audifi payment")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
