"""`make bench` for nft: share purchases on one hot IPO, beside a raw baseline.

    purchases  shares reserved per second on one open IPO by 50 concurrent buyers through the
               kit's group commit (each purchase checked against the cap and the buyer's
               maximum, the IPO's state carried from one purchase to the next), vs raw
               asyncpg INSERTs of the same rows (the same stored events, one transaction per
               purchase, 50 connections) in this run

Printed, never asserted. Uses DATABASE_URL (else the local server).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from audifi_kit.eventstore import GroupCommit, open_event_store
from audifi_kit.settings import Settings
from audifi_kit.testing import LOCAL_DEFAULTS, drop_databases
from audifi_nft.application import NftApplication
from audifi_nft.domain.media import PNG, WAV, MediaKind, StoredObject
from rich.console import Console
from rich.table import Table

console = Console()
rows: list[tuple[str, str, str, str]] = []
WRITERS = 50
ARTIST = str(uuid.uuid4())


def record(name: str, figure: str, baseline: str, ratio: float | None) -> None:
    rows.append((name, figure, baseline, "" if ratio is None else f"{ratio:.2f}"))
    console.print(
        f"[bold]{name}[/bold]: {figure}  |  baseline {baseline}  |  ratio {ratio or 0:.2f}"
    )


def stored(content: bytes, kind: MediaKind) -> StoredObject:
    return StoredObject.of("masters", hashlib.sha256(content).digest(), len(content), kind)


async def raw_rate(store, purchases: int) -> float:
    """The purchases' stored events, inserted by asyncpg, one transaction each, 50 at once."""
    conn = await store.connect()
    try:
        events = await conn.fetch(
            f"SELECT topic, state FROM {store.table} WHERE topic LIKE '%SharesReserved' LIMIT 2000"
        )
        await conn.execute(
            "CREATE TABLE raw_rows (originator_id uuid, originator_version bigint, topic text, "
            "state bytea, notification_id bigserial, PRIMARY KEY (originator_id, "
            "originator_version))"
        )
        await conn.execute("CREATE UNIQUE INDEX ON raw_rows (notification_id)")
    finally:
        await conn.close()
    pool = await store.create_pool(min_size=WRITERS, max_size=WRITERS)
    try:
        insert = (
            "INSERT INTO raw_rows (originator_id, originator_version, topic, state) "
            "VALUES ($1, $2, $3, $4)"
        )

        async def writer(w: int) -> None:
            async with pool.acquire() as c:
                for k in range(purchases // WRITERS):
                    row = events[(w * 7 + k) % len(events)]
                    await c.execute(insert, uuid.uuid4(), 1, row["topic"], row["state"])

        t = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(WRITERS)))
        return (purchases // WRITERS * WRITERS) / (time.perf_counter() - t)
    finally:
        await pool.close()


async def bench_purchases(settings: Settings, purchases: int) -> None:
    store = await open_event_store("nft", NftApplication, settings)
    group = GroupCommit(store)
    app = store.app
    now = datetime.now(UTC)
    try:
        master = await store.call(
            app.register_master,
            artist_id=ARTIST,
            registered_by=ARTIST,
            title="Bench",
            isrc_code="USAUD2699999",
            audio=stored(b"RIFF-bench", WAV),
            cover=stored(b"PNG-bench", PNG),
        )
        ipo = await store.call(
            app.configure_ipo,
            master_id=master.id,
            actor_id=ARTIST,
            actor_is_admin=False,
            now=now,
            cap=10_000_000,
            price_cents=500,
            currency="USD",
            opens_at=now,
            closes_at=now + timedelta(days=1),
            per_account_max=1_000,
            royalty_receiver="0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            royalty_bps=500,
        )
        await store.call(app.launch_ipo, ipo.id, now)

        async def buyer(w: int) -> None:
            account = str(uuid.uuid4())
            for _ in range(purchases // WRITERS):
                await group.submit(
                    lambda: app.decide_reserve(
                        ipo.id,
                        reservation_id=str(uuid.uuid4()),
                        account_id=account,
                        quantity=1,
                        method="card",
                        now=datetime.now(UTC),
                    ),
                    loads=[ipo.id],
                )

        t = time.perf_counter()
        await asyncio.gather(*(buyer(w) for w in range(WRITERS)))
        rate = (purchases // WRITERS * WRITERS) / (time.perf_counter() - t)
        batches = group.batches
        await group.close()
        held = (await store.call(app.ipo, ipo.id)).held
        assert held == purchases // WRITERS * WRITERS, held  # none lost, none doubled
        raw = await raw_rate(store, purchases)
        record(
            "IPO purchases reserved on one hot IPO, group commit (50 buyers)",
            f"{rate:,.0f} purchases/s ({purchases / max(batches, 1):.0f}/batch; "
            f"the IPO holds {held:,} reservations at the end)",
            f"raw asyncpg INSERT of the same rows {raw:,.0f}/s",
            rate / raw,
        )
    finally:
        store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--purchases", type=int, default=10_000)
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL") or LOCAL_DEFAULTS["DATABASE_URL"][0]
    prefix = f"audifi_nbench{uuid.uuid4().hex[:6]}_"
    gc.freeze()
    try:
        settings = Settings(
            database_url=server,
            db_prefix=prefix,
            var_dir=Path("var/bench"),
            pool_size=int(os.environ.get("AUDIFI_POOL_SIZE", "8")),
        )
        await bench_purchases(settings, args.purchases)
    finally:
        await drop_databases(server, prefix)
    table = Table("benchmark", "figure", "baseline (same run)", "ratio", title="audifi nft")
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
