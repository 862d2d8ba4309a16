"""`make bench` for coin's lottery: tickets issued per second from verified purchases, beside
raw `eth_getTransactionReceipt` calls per second on the same chain, in one run.

    purchases  `POST /lottery/purchase` over HTTP by `--buyers` concurrent buyers (50), each
               through its own `--payments` transfers to the treasury in turn (each paid
               `--tickets` x the price in DevUSD, mined before timing): the transaction,
               receipt and head read and the block's time checked, the hash claimed in the
               event store, the operator's `issueTickets` sent and mined, the range recorded
    baseline   `eth_getTransactionReceipt` of the same hashes, as many concurrent callers,
               through the AsyncWeb3 of the coin's adapter on the same embedded EVM

The coin app is served in this process (uvicorn) on the embedded chain (py-evm, one request
at a time) and PostgreSQL (DATABASE_URL, else the local default server; databases of its own,
dropped at the end) with the in-process bus; its indexer follows the Lottery as in the
service. The chain's RPC calls during the purchases are counted by method (the purchases'
own apart from the indexer's) with the time each held the EVM. Printed, never asserted.

Both figures fall as the chain grows: eth-tester finds a transaction by hash by walking the
blocks back from the head, and each purchase mines a block. The baseline is taken just before
and just after the purchases (the chain they started and ended on) and pooled.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from audifi_coin.app import create_app
from audifi_kit.bus.inprocess import InProcessBus
from audifi_kit.chain.embedded import EmbeddedProvider
from audifi_kit.chain.platform import PlatformChain
from audifi_kit.http import configure_logging
from audifi_kit.settings import Settings
from audifi_kit.testing import LOCAL_DEFAULTS, TokenSigner, drop_databases, served
from eth_account import Account
from eth_account.signers.local import LocalAccount
from litestar import Litestar, get
from rich.console import Console
from rich.table import Table

console = Console()
rows: list[tuple[str, str, str, str]] = []
USDC = 10**6
PRICE = 5 * USDC
INDEXER_TASK = "coin lottery indexer"  # the app's task that follows the Lottery's logs


def record(name: str, figure: str, baseline: str, ratio: float | None) -> None:
    rows.append((name, figure, baseline, "" if ratio is None else f"{ratio:.2f}"))
    console.print(
        f"[bold]{name}[/bold]: {figure}  |  baseline {baseline}  |  ratio {ratio or 0:.2f}"
    )


# Which RPC request (whose, and its method) the current thread serves, while counting.
_serving: ContextVar[tuple[str, str] | None] = ContextVar("lottery_bench_rpc", default=None)


class ChainMeter:
    """The embedded chain's JSON-RPC requests by method while `on`, the indexer's task apart
    from everyone else's (the purchases, while nothing else runs), and the seconds the EVM's
    lock (py-evm serves one request at a time) was held for each."""

    def __init__(self) -> None:
        self.on = False
        self.calls: Counter[tuple[str, str]] = Counter()
        self.held: Counter[tuple[str, str]] = Counter()
        self._lock = threading.RLock()
        self._depth = 0
        self._since = 0.0
        self._key: tuple[str, str] | None = None
        original = EmbeddedProvider.make_request
        meter = self

        async def make_request(provider: Any, method: Any, params: Any) -> Any:
            if not meter.on:
                return await original(provider, method, params)
            task = asyncio.current_task()
            who = "indexer" if task is not None and task.get_name() == INDEXER_TASK else "purchases"
            key = (who, str(method))
            meter.calls[key] += 1
            token = _serving.set(key)  # to_thread copies the context into the worker
            try:
                return await original(provider, method, params)
            finally:
                _serving.reset(token)

        EmbeddedProvider.make_request = make_request  # type: ignore[method-assign]

    # The chain's lock, held as an RLock is, timed.
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = self._lock.acquire(blocking, timeout)
        if got:
            self._depth += 1
            if self._depth == 1:
                self._since = time.perf_counter()
                self._key = _serving.get()
        return got

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0 and self.on:
            self.held[self._key or ("purchases", "(direct: mining)")] += (
                time.perf_counter() - self._since
            )
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def of(self, who: str) -> dict[str, tuple[int, float]]:
        methods = {m for w, m in [*self.calls, *self.held] if w == who}
        return {m: (self.calls[(who, m)], self.held[(who, m)]) for m in sorted(methods)}


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def pay(
    chain: PlatformChain, buyers: int, payments: int, amount: int, treasury: str
) -> list[tuple[LocalAccount, list[str]]]:
    """`buyers` fresh wallets, each with gas and DevUSD, each paying the treasury `amount`
    `payments` times: the wallets and their mined payments' hashes."""
    deployer = await chain.adapter("deployer")
    payment = await chain.adapter("payment")
    dev_usd = await chain.contract("payment", "DevUSD")
    w3 = deployer.w3
    wallets = [Account.create() for _ in range(buyers)]
    await asyncio.gather(*(deployer.send({"to": w.address, "value": 10**18}) for w in wallets))
    await asyncio.gather(
        *(payment.transact(dev_usd, "mint", w.address, amount * payments) for w in wallets)
    )
    data = dev_usd.encode_abi("transfer", args=[treasury, amount])
    gas = await w3.eth.estimate_gas(
        {"from": wallets[0].address, "to": dev_usd.address, "data": data}
    )
    base = (await w3.eth.get_block("latest"))["baseFeePerGas"]
    tip = await w3.eth.max_priority_fee
    chain_id = await w3.eth.chain_id

    async def wallet_pays(wallet: LocalAccount) -> list[str]:
        hashes = []
        for nonce in range(payments):
            signed = wallet.sign_transaction(
                {
                    "to": dev_usd.address,
                    "data": data,
                    "value": 0,
                    "gas": int(gas * 1.5),
                    "maxFeePerGas": 4 * base + tip,
                    "maxPriorityFeePerGas": tip,
                    "nonce": nonce,
                    "chainId": chain_id,
                }
            )
            tx = await w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = await w3.eth.wait_for_transaction_receipt(tx, poll_latency=0.01)
            assert receipt["status"] == 1, receipt
            hashes.append(receipt["transactionHash"].to_0x_hex())
        return hashes

    paid = await asyncio.gather(*(wallet_pays(w) for w in wallets))
    return list(zip(wallets, paid, strict=True))


async def purchases(
    client: httpx.AsyncClient,
    signer: TokenSigner,
    paid: list[tuple[LocalAccount, list[str]]],
    tickets: int,
    amount: int,
) -> dict[str, Any]:
    """Every buyer at once, each through its payments in turn: purchases and tickets per
    second, latencies, refusals by code."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    issued = done = 0
    auth = [{"Authorization": f"Bearer {signer.token(str(uuid.uuid4()), ttl=3600)}"} for _ in paid]

    async def buyer(i: int) -> None:
        nonlocal issued, done
        wallet, hashes = paid[i]
        for tx in hashes:
            body = {
                "walletAddress": wallet.address,
                "ticketCount": tickets,
                "paymentMethod": "USDC",
                "transactionSignature": tx,
                "amountPaid": amount,
            }
            t = time.perf_counter()
            try:
                r = await client.post("/lottery/purchase", json=body, headers=auth[i])
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - t)
            if r.status_code == 200:
                done += 1
                issued += len(r.json()["ticketsIssued"])
            else:
                try:
                    errors[f"{r.status_code} {r.json()['error']['code']}"] += 1
                except Exception:
                    errors[str(r.status_code)] += 1

    started = time.perf_counter()
    await asyncio.gather(*(buyer(i) for i in range(len(paid))))
    elapsed = time.perf_counter() - started
    return {
        "elapsed": elapsed,
        "ok": done,
        "tickets": issued,
        "latencies": latencies,
        "errors": errors,
    }


async def raw_receipts(chain: PlatformChain, hashes: list[list[str]]) -> tuple[int, float]:
    """eth_getTransactionReceipt of the same hashes, one caller per buyer through its own in
    turn, through the coin adapter's AsyncWeb3: (calls, seconds)."""
    w3 = (await chain.adapter("coin")).w3

    async def caller(mine: list[str]) -> int:
        for tx in mine:
            receipt = await w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
            assert receipt["status"] == 1
        return len(mine)

    started = time.perf_counter()
    calls = sum(await asyncio.gather(*(caller(m) for m in hashes)))
    return calls, time.perf_counter() - started


async def bench(args: argparse.Namespace, server: str) -> None:
    signer = TokenSigner()

    @get("/.well-known/jwks.json", sync_to_thread=False)
    def jwks() -> dict[str, Any]:
        return signer.jwks()

    meter = ChainMeter()
    prefix = f"audifi_coinbench{uuid.uuid4().hex[:6]}_"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            async with served(Litestar([jwks], logging_config=None)) as auth:
                settings = Settings(
                    database_url=server,
                    db_prefix=prefix,
                    var_dir=Path(tmp),
                    poll_interval=0.5,
                    jwks_url=f"{auth}/.well-known/jwks.json",
                    pool_size=int(os.environ.get("AUDIFI_POOL_SIZE", "8")),
                    chain_confirmations=1,
                )
                chain = PlatformChain(settings)
                assert chain.embedded is not None
                chain.embedded.lock = meter  # type: ignore[assignment]
                app = create_app(settings, InProcessBus(), chain)
                limits = httpx.Limits(max_connections=args.buyers, max_keepalive_connections=None)
                async with (
                    served(app) as url,
                    httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client,
                ):
                    await run(args, client, signer, chain, meter)
    finally:
        await drop_databases(server, prefix)


async def run(
    args: argparse.Namespace,
    client: httpx.AsyncClient,
    signer: TokenSigner,
    chain: PlatformChain,
    meter: ChainMeter,
) -> None:
    amount = args.tickets * PRICE
    admin = {"Authorization": f"Bearer {signer.token(str(uuid.uuid4()), roles=('admin',))}"}
    now = datetime.now(UTC)
    created = await client.post(
        "/lottery/rounds",
        json={
            "id": f"bench-{uuid.uuid4().hex[:8]}",
            "ticketPrice": PRICE,
            "startDate": (now - timedelta(minutes=5)).isoformat(),
            "endDate": (now + timedelta(days=1)).isoformat(),
            "maxTicketsPerWallet": 0,
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    treasury = created.json()["payTo"]["treasury"]
    chain_round = created.json()["chainRoundId"]

    t = time.perf_counter()
    paid = await pay(chain, args.buyers, args.payments, amount, treasury)
    made = time.perf_counter() - t
    w3 = (await chain.adapter("coin")).w3
    head = await w3.eth.block_number
    console.print(
        f"lottery: {args.buyers} buyers x {args.payments} payments of {args.tickets} ticket(s) "
        f"({amount / USDC:g} DevUSD each) to the treasury, mined in {made:.1f} s; the embedded "
        f"EVM at block {head}, confirmations=1"
    )
    hashes = [h for _, h in paid]
    await asyncio.sleep(2 * chain.settings.poll_interval)  # the indexer past the setup
    before = await raw_receipts(chain, hashes)

    meter.on = True
    result = await purchases(client, signer, paid, args.tickets, amount)
    meter.on = False
    after = await raw_receipts(chain, hashes)
    head_after = await w3.eth.block_number
    coin = await chain.adapter("coin")
    lottery = await chain.contract("coin", "Lottery")
    on_chain = int((await coin.call(lottery, "round", chain_round))[9])
    fan = {"Authorization": f"Bearer {signer.token(str(uuid.uuid4()))}"}
    recorded = 0
    for _ in range(40):  # the indexer records what a refused answer left unrecorded
        current = await client.get("/lottery/rounds/current", headers=fan)
        recorded = current.json()["totalTicketsSold"]
        if recorded == on_chain:
            break
        await asyncio.sleep(0.25)

    # The receipts' cost grows with the chain (eth-tester finds a transaction by walking the
    # blocks back from the head), which grew during the purchases: both ends, pooled.
    raw = (before[0] + after[0]) / (before[1] + after[1])
    elapsed, ok = result["elapsed"], result["ok"]
    latencies = sorted(result["latencies"])
    ticket_rate = result["tickets"] / elapsed
    record(
        f"tickets issued from verified purchases over HTTP ({args.buyers} buyers)",
        f"{ticket_rate:,.1f} tickets/s ({ok / elapsed:,.1f} purchases/s)",
        f"raw eth_getTransactionReceipt ({args.buyers} callers) {raw:,.1f} calls/s",
        ticket_rate / raw,
    )
    console.print(
        f"  baseline at block {head}: {before[0] / before[1]:,.1f} calls/s, at block "
        f"{head_after}: {after[0] / after[1]:,.1f} calls/s"
    )
    console.print(
        f"  {ok} purchases, {result['tickets']} tickets in {elapsed:.1f} s; latency ms: p50 "
        f"{percentile(latencies, 50) * 1e3:,.0f}  p95 {percentile(latencies, 95) * 1e3:,.0f}  "
        f"p99 {percentile(latencies, 99) * 1e3:,.0f}  max {latencies[-1] * 1e3:,.0f}"
    )
    errors = result["errors"]
    console.print(
        "  errors: "
        + (", ".join(f"{code} x{n}" for code, n in errors.most_common()) if errors else "none")
    )
    console.print(
        f"  tickets the Lottery contract issued: {on_chain}; the round records {recorded}"
    )
    mine, indexer = meter.of("purchases"), meter.of("indexer")
    held = sum(s for _, s in mine.values()) + sum(s for _, s in indexer.values())
    console.print(
        f"  the EVM's lock held {held:.1f} s of the {elapsed:.1f} s (py-evm is pure Python: "
        "a holder waiting for the GIL counts)"
    )
    table = Table(title="the chain during the purchases (lock: the EVM's, held)")
    table.add_column("RPC method", no_wrap=True)
    for header in ("per purchase", "lock ms / call", "lock s", "indexer calls", "indexer lock s"):
        table.add_column(header, justify="right")
    per = max(len(latencies), 1)  # every purchase answered, refused ones too
    for m in sorted(set(mine) | set(indexer), key=lambda m: -(mine.get(m, (0, 0))[1])):
        n, s = mine.get(m, (0, 0.0))
        ni, si = indexer.get(m, (0, 0.0))
        table.add_row(
            m,
            f"{n / per:.1f}",
            f"{1e3 * (s + si) / max(n + ni, 1):.1f}",
            f"{s:.1f}",
            str(ni),
            f"{si:.1f}",
        )
    total = sum(n for n, _ in mine.values())
    table.add_row(
        "all",
        f"{total / per:.1f}",
        "",
        f"{sum(s for _, s in mine.values()):.1f}",
        str(sum(n for n, _ in indexer.values())),
        f"{sum(s for _, s in indexer.values()):.1f}",
    )
    console.print(table)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--buyers", type=int, default=50, help="concurrent buyers")
    parser.add_argument("--payments", type=int, default=4, help="payments (purchases) per buyer")
    parser.add_argument("--tickets", type=int, default=1, help="tickets per payment")
    parser.add_argument("--passes", type=int, default=5, help="baseline passes through the hashes")
    args = parser.parse_args()
    configure_logging("coin-bench", "WARNING")
    server = os.environ.get("DATABASE_URL") or LOCAL_DEFAULTS["DATABASE_URL"][0]
    await bench(args, server)
    table = Table(
        "benchmark", "figure", "baseline (same run)", "ratio", title="audifi coin lottery"
    )
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
