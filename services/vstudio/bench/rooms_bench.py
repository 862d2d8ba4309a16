"""`make bench` for vstudio's session rooms: one server process, the load from another.

    idle sockets   N authenticated sockets (--sockets, default 5,000; goal 20,000) over 100
                   session rooms, each joined: the server's RSS before and with them open (KB
                   per socket), then once they closed and a gc ran (goal: within 20% of
                   before), and after malloc_trim; the objects the gc tracks and pymalloc's
                   arenas before and after, to tell a leak from memory the allocators keep
    one big room   M sockets (--big-room, default 2,000; goal 5,000 in < 10 s) opening one room,
                   each joining, until the last has seen its own join; the presence frames
                   (user_joined / presence_delta) the first member and all of them received;
                   then the same through `audifi serve gateway` in a process of its own
    votes          K members of one room (--voters, default 1,000; goal 2,000) voting on an
                   `equal` decision at a total rate (--rate, default 1,000/s; goal 2,000/s) for
                   --seconds: send -> vote_ack, and send -> the first vote_update after that
                   ack, p50/p99, beside a bare `websockets` echo server's round trip of the same
                   frames at the same rate, in this run; sockets the server closed, by code
    make run       `make run`'s one process (every service and the gateway, embedded) while
                   --big-room sockets open one room through its gateway: a sign-in a second and
                   a signed-in read every 50 ms through the same gateway, p50/p99 and refusals,
                   beside the same with no room (the room must not starve the other services)
    compression    whether the server negotiates permessage-deflate today, and the idle
                   sockets' KB per socket with the client offering it (as browsers do) and
                   refusing it (`compression=None`), each from a fresh server's heap

The server is the app as the tests serve it (uvicorn with the kit's WebSocket protocol, no
connection ceiling), with the collector tuned as `audifi serve` tunes it and the allocator
deploy/ gives vstudio (PYTHONMALLOC=malloc; `--allocator pymalloc` for Python's own),
embedded (in-memory rooms, no REDIS_URL), its event store on DATABASE_URL under a unique
prefix dropped at the end, nft stubbed (every master is the artist's). It runs in a process
of its own, which also serves the JWKS its tokens verify against, so /proc/<pid>/status VmRSS
is the server's alone; its log goes to var/bench/rooms_server.log. The client process
(`websockets`, no keepalive pings, as browsers) signs tokens with the same key (made by this
parent process, named as auth names its keys), one distinct user per socket; the echo
baseline is a third process. `make run`'s figure starts the real platform (`audifi up`, its
log in var/bench/rooms_platform.log) with auth signing with that key. Sizes above the
descriptor limit (`ulimit -n`, per process) less a reserve are cut to it, and said so.

Printed, never asserted. Each figure says the CPU the server spent on it (its event loop and
its other threads: the event store's workers) and the client's: on 2 cores the two compete.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import gc
import json
import multiprocessing
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

console = Console(width=None if sys.stdout.isatty() else 150)
rows: list[tuple[str, str, str, str]] = []

ROOMS = 100
# Descriptors a process keeps beside its sockets: listening sockets, the database pools, the
# JWKS server, pipes, logs. The server needs one per socket and so does the client.
FD_RESERVE = 500
PATIENCE = 120.0  # a guard against a hung phase, never a timing
TICK = 0.002  # the vote sender's pacing step
SERVER_LOG = Path("var/bench/rooms_server.log")
PLATFORM_LOG = Path("var/bench/rooms_platform.log")
GATEWAY_LOG = Path("var/bench/rooms_gateway.log")

# Frames are told apart by their first bytes: msgspec writes the tag first.
PRESENCE = '{"type":"presence"'
PRESENCE_FRAMES = ('{"type":"user_joined"', '{"type":"presence_delta"')
VOTE_ACK = '{"type":"vote_ack"'
VOTE_UPDATE = '{"type":"vote_update"'
ERROR = '{"type":"error"'


def record(name: str, figure: str, baseline: str, ratio: float | None) -> None:
    rows.append((name, figure, baseline, "" if ratio is None else f"{ratio:.2f}"))
    shown = "" if ratio is None else f"  |  ratio {ratio:.2f}"
    console.print(f"[bold]{name}[/bold]: {figure}  |  {baseline}{shown}")


def pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


# ----------------------------------------------------------------------- process plumbing


def signer_of(private: bytes, kid: str) -> Any:
    from audifi_kit.testing import TokenSigner
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return TokenSigner(kid=kid, private=Ed25519PrivateKey.from_private_bytes(private))


async def obey(conn: Connection, handlers: dict[str, Callable[[Any], Awaitable[Any]]]) -> None:
    """Run the parent's commands, `(name, payload)`, one at a time, answering each, until
    "stop" (or the parent is gone). The pipe is watched by the event loop: no thread waits."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def readable() -> None:
        try:
            inbox.put_nowait(conn.recv())
        except (EOFError, OSError):
            loop.remove_reader(conn.fileno())
            inbox.put_nowait(("stop", None))

    loop.add_reader(conn.fileno(), readable)
    try:
        while True:
            name, payload = await inbox.get()
            if name == "stop":
                return
            try:
                conn.send(("ok", await handlers[name](payload)))
            except Exception as exc:
                conn.send(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        with contextlib.suppress(Exception):
            loop.remove_reader(conn.fileno())


def ask(conn: Connection, name: str, payload: Any = None, timeout: float = 600.0) -> Any:
    conn.send((name, payload))
    if not conn.poll(timeout):
        raise TimeoutError(f"no answer to {name!r} within {timeout:.0f} s")
    outcome, answer = conn.recv()
    if outcome != "ok":
        raise RuntimeError(f"{name}: {answer}")
    return answer


class Proc:
    """What the parent reads of a child process in /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    @staticmethod
    def _seconds(stat: str) -> float:
        fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu(self) -> float:
        return self._seconds(f"/proc/{self.pid}/stat")

    def loop_cpu(self) -> float:
        """The main thread's: the event loop (the others are the store's worker threads)."""
        return self._seconds(f"/proc/{self.pid}/task/{self.pid}/stat")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


# ---------------------------------------------------------------------------- the server


def pymalloc_stats() -> dict[str, float]:
    """Python's small-object allocator: MiB of arenas it holds, and of blocks in use in them
    (the rest is free space it cannot give back while one block of an arena lives)."""
    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode()
    stats = {"arenas_mib": float("nan"), "blocks_mib": float("nan")}  # PYTHONMALLOC=malloc
    for line in text.splitlines():
        name, _, value = line.partition("=")
        if "bytes/arena" in name:
            stats["arenas_mib"] = int(value.replace(",", "")) / 2**20
        elif name.startswith("# bytes in allocated blocks"):
            stats["blocks_mib"] = int(value.replace(",", "")) / 2**20
    return stats


class StubMasters:
    """nft's word: every master is the bench artist's, with no holders (decisions: `equal`)."""

    def __init__(self, artist: str) -> None:
        self.artist = artist

    async def master(self, master_id: uuid.UUID, token: str) -> Any:
        from audifi_vstudio.studio import MasterFacts

        return MasterFacts(master_id=master_id, artist_id=self.artist, title="Bench")

    async def holders(self, master_id: uuid.UUID, token: str) -> dict[str, int]:
        return {}


def server_process(conn: Connection, config: dict[str, Any]) -> None:
    # The server logs go to a file, written as a deployed service writes them (the kit's JSON
    # lines, uvicorn's per-connection lines dropped), out of the bench's output.
    log = os.open(config["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    from audifi_kit.http.requests import configure_logging

    configure_logging("vstudio")
    asyncio.run(serve_vstudio(conn, config))


async def serve_vstudio(conn: Connection, config: dict[str, Any]) -> None:
    from audifi_kit.bus.inprocess import InProcessBus
    from audifi_kit.launch import tune_collector
    from audifi_kit.server import connection_ceiling
    from audifi_kit.settings import Settings
    from audifi_kit.testing import served
    from audifi_vstudio.app import create_app
    from litestar import Litestar, get

    signer = signer_of(config["private"], config["kid"])

    @get("/.well-known/jwks.json", sync_to_thread=False)
    def jwks() -> dict[str, Any]:
        return signer.jwks()

    async with served(Litestar([jwks])) as jwks_base:
        settings = Settings(
            database_url=config["database_url"],
            db_prefix=config["prefix"],
            jwks_url=f"{jwks_base}/.well-known/jwks.json",
            var_dir=Path(config["var_dir"]),
        )
        app = create_app(settings, InProcessBus(), masters=StubMasters(config["artist"]))
        tune_collector()  # as `audifi serve` does once its apps are built

        async def collect(_: Any) -> int:
            return gc.collect()

        async def census(_: Any) -> dict[str, int]:
            """The live objects the collector tracks, by type."""
            gc.collect()
            return dict(collections.Counter(type(o).__qualname__ for o in gc.get_objects()))

        async def pymalloc(_: Any) -> dict[str, float]:
            return pymalloc_stats()

        async def trim(_: Any) -> int:
            return ctypes.CDLL("libc.so.6").malloc_trim(0)

        async with served(app) as url:
            conn.send(
                {
                    "url": url,
                    "jwks": f"{jwks_base}/.well-known/jwks.json",
                    "pid": os.getpid(),
                    "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
                    # What `audifi serve` would admit at this limit (the kit's ceiling).
                    "ceiling": connection_ceiling(settings, ["vstudio"]).limit,
                }
            )
            await obey(conn, {"gc": collect, "trim": trim, "census": census, "pymalloc": pymalloc})


def echo_process(conn: Connection) -> None:
    asyncio.run(serve_echo(conn))


async def serve_echo(conn: Connection) -> None:
    """A bare `websockets` server sending every text frame back: the round-trip baseline."""
    from websockets.asyncio.server import ServerConnection, serve

    async def echo(ws: ServerConnection) -> None:
        with contextlib.suppress(Exception):
            async for message in ws:
                await ws.send(message)

    async with serve(echo, "127.0.0.1", 0, backlog=2048) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        conn.send({"url": f"ws://127.0.0.1:{port}", "pid": os.getpid()})
        await obey(conn, {})


# ---------------------------------------------------------------------------- the client


class Tally:
    """What the members of one phase saw."""

    def __init__(self) -> None:
        self.acks: list[float] = []  # send -> vote_ack (echo: send -> the echo)
        self.seen: list[float] = []  # send -> the first vote_update after the ack
        self.updates = 0  # vote_update frames received by all members
        self.last_update = ""
        self.errors = 0
        self.lost = 0
        self.error_sample = ""
        self.closed: collections.Counter[str] = collections.Counter()


class Member:
    """One socket of the client: a user who joined a room, reading every frame it is sent."""

    __slots__ = (
        "acked",
        "choice",
        "joined",
        "presence",
        "presence_bytes",
        "reader",
        "sent",
        "started",
        "user",
        "ws",
    )

    def __init__(self, ws: Any, user: str, started: float) -> None:
        self.ws = ws
        self.user = user
        self.started = started
        self.joined: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.presence = 0
        self.presence_bytes = 0
        self.sent: collections.deque[float] = collections.deque()
        self.acked: list[float] = []
        self.choice = 1
        self.reader: asyncio.Task[None] | None = None

    async def read(self, tally: Tally, echo: bool) -> None:
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                if echo:
                    if self.sent:
                        tally.acks.append(now - self.sent.popleft())
                elif raw.startswith(PRESENCE_FRAMES):
                    self.presence += 1
                    self.presence_bytes += len(raw)
                    if not self.joined.done() and self.user in raw:
                        self.joined.set_result(now)
                elif raw.startswith(VOTE_UPDATE):
                    tally.updates += 1
                    tally.last_update = raw
                    for sent in self.acked:
                        tally.seen.append(now - sent)
                    self.acked.clear()
                elif raw.startswith(VOTE_ACK):
                    if self.sent:
                        sent = self.sent.popleft()
                        tally.acks.append(now - sent)
                        self.acked.append(sent)
                elif raw.startswith(ERROR):
                    tally.errors += 1
                    tally.error_sample = raw[:200]
                    if self.sent:
                        self.sent.popleft()
        except Exception as exc:
            received = getattr(exc, "rcvd", None)  # websockets' ConnectionClosed: the close frame
            code = f"code {received.code}" if received is not None else "no close frame"
            tally.closed[f"{type(exc).__name__}, {code}"] += 1
        finally:
            tally.lost += len(self.sent)  # votes never answered: the socket is gone
            self.sent.clear()
            if not self.joined.done():
                self.joined.set_exception(ConnectionError("closed before its join was seen"))


class Client:
    """The load: groups of members, opened and closed on the parent's word."""

    def __init__(self, private: bytes, kid: str) -> None:
        self.signer = signer_of(private, kid)
        self.groups: dict[str, list[Member]] = {}
        self.tallies: dict[str, Tally] = {}
        self.opened = 0  # every socket ever opened: picks its source address

    def source(self) -> tuple[str, int]:
        # 127.0.0.2, .3, ...: a fresh address every 10,000 sockets, so that sockets closed by
        # one figure (TIME_WAIT) never leave the next short of ephemeral ports.
        self.opened += 1
        return (f"127.0.0.{2 + (self.opened // 10_000) % 250}", 0)

    async def open_group(self, p: dict[str, Any]) -> dict[str, Any]:
        """`count` members over `rooms` (round robin), `concurrency` handshakes at a time; each
        joins, and the answer comes once every one has seen its own join."""
        from websockets.asyncio.client import connect

        echo = p.get("echo", False)
        users = [str(uuid.uuid4()) for _ in range(p["count"])]
        tokens = [None if echo else self.signer.token(u, ttl=3600) for u in users]
        tally = self.tallies[p["tag"]] = Tally()
        members: list[Member] = []
        failures: collections.Counter[str] = collections.Counter()
        extensions: set[str] = set()
        gate = asyncio.Semaphore(p["concurrency"])
        compression = "deflate" if p.get("compression", True) else None
        rooms = p["rooms"]

        async def one(i: int) -> None:
            url = rooms[i % len(rooms)]
            headers = None if echo else {"Authorization": f"Bearer {tokens[i]}"}
            async with gate:
                started = time.perf_counter()
                try:
                    ws = await connect(
                        url,
                        additional_headers=headers,
                        compression=compression,
                        ping_interval=None,  # as browsers: they never ping
                        proxy=None,
                        open_timeout=PATIENCE,
                        close_timeout=10,
                        max_size=2**22,
                        local_addr=self.source(),
                    )
                except Exception as exc:
                    failures[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
                    return
                member = Member(ws, users[i], started)
                members.append(member)
                extensions.add(ws.response.headers.get("Sec-WebSocket-Extensions", "(none)"))
                if echo:
                    member.joined.set_result(started)
                else:
                    try:
                        first = await asyncio.wait_for(ws.recv(), PATIENCE)
                        if not first.startswith(PRESENCE):
                            raise RuntimeError(f"first frame {first[:60]}")
                        await ws.send(
                            json.dumps({"type": "join", "userId": users[i], "displayName": "fan"})
                        )
                    except Exception as exc:
                        failures[f"join {type(exc).__name__}: {str(exc)[:80]}"] += 1
                member.reader = asyncio.create_task(member.read(tally, echo))

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(p["count"])))
        opened = time.perf_counter() - started
        per_socket: list[float] = []
        try:
            async with asyncio.timeout(PATIENCE):
                for m in members:
                    with contextlib.suppress(ConnectionError):
                        per_socket.append(await m.joined - m.started)
        except TimeoutError:
            failures["join not seen in time"] += 1
        everyone = time.perf_counter() - started
        self.groups[p["tag"]] = members
        return {
            "opened": len(members),
            "joined": len(per_socket),
            "open_seconds": opened,
            "all_joined_seconds": everyone,
            "join_p50": pct(per_socket, 50),
            "join_p99": pct(per_socket, 99),
            "failures": dict(failures),
            "extensions": sorted(extensions),
            "first_member_presence": members[0].presence if members else 0,
            "presence_frames": sum(m.presence for m in members),
            "presence_bytes": sum(m.presence_bytes for m in members),
        }

    async def close_group(self, tag: str) -> dict[str, Any]:
        members = self.groups.pop(tag, [])
        started = time.perf_counter()
        await asyncio.gather(*(m.ws.close() for m in members), return_exceptions=True)
        readers = [m.reader for m in members if m.reader is not None]
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        return {"closed": len(members), "seconds": time.perf_counter() - started}

    async def vote_load(self, p: dict[str, Any]) -> dict[str, Any]:
        """The group's members send `rate` vote frames a second in turn for `seconds`; then
        every vote's answer is awaited."""
        members = self.groups[p["tag"]]
        tally = self.tallies[p["tag"]]
        frames = [
            json.dumps({"type": "vote", "decisionId": p["decision"], "choice": c})
            for c in ("A", "B")
        ]
        tally.acks.clear()
        tally.seen.clear()
        sent = 0
        started = time.perf_counter()
        until = started + p["seconds"]
        while (now := time.perf_counter()) < until:
            for _ in range(int((now - started) * p["rate"]) - sent):
                member = members[sent % len(members)]
                sent += 1
                if member.reader is None or member.reader.done():
                    tally.lost += 1  # dropped by the server: its votes are not sent
                    continue
                member.choice ^= 1  # alternate: every vote changes the voter's ballot
                member.sent.append(time.perf_counter())
                try:
                    await member.ws.send(frames[member.choice])
                except Exception:
                    member.sent.pop()
                    tally.lost += 1
            await asyncio.sleep(TICK)
        sending = time.perf_counter() - started
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(PATIENCE):
                while len(tally.acks) + tally.errors + tally.lost < sent:
                    await asyncio.sleep(0.01)
        answered = time.perf_counter() - started
        if not p.get("echo"):
            await asyncio.sleep(0.5)  # the last coalesced vote_update (every 100 ms)
        final = json.loads(tally.last_update) if tally.last_update else {}
        return {
            "sent": sent,
            "sending_seconds": sending,
            "answered_seconds": answered,
            "answered": len(tally.acks),
            "ack_p50": pct(tally.acks, 50),
            "ack_p99": pct(tally.acks, 99),
            "seen": len(tally.seen),
            "seen_p50": pct(tally.seen, 50),
            "seen_p99": pct(tally.seen, 99),
            "updates": tally.updates,
            "final_votes": final.get("votes"),
            "errors": tally.errors,
            "lost": tally.lost,
            "error_sample": tally.error_sample,
            "closed": dict(tally.closed),
        }


def client_process(conn: Connection, private: bytes, kid: str) -> None:
    async def run() -> None:
        client = Client(private, kid)

        async def close(tag: str) -> dict[str, Any]:
            return await client.close_group(tag)

        await obey(conn, {"open": client.open_group, "close": close, "votes": client.vote_load})

    asyncio.run(run())


# ---------------------------------------------------------------------------- the figures


class Server:
    """One vstudio server process: started, asked, read in /proc, stopped."""

    def __init__(self, spawn: Any, config: dict[str, Any]) -> None:
        self.conn, end = spawn.Pipe()
        self.process = spawn.Process(target=server_process, args=(end, config), name="vstudio")
        # The allocator is chosen when the interpreter starts: the child's environment.
        saved = os.environ.get("PYTHONMALLOC")
        os.environ["PYTHONMALLOC"] = config["allocator"]
        try:
            self.process.start()
        finally:
            if saved is None:
                os.environ.pop("PYTHONMALLOC", None)
            else:
                os.environ["PYTHONMALLOC"] = saved
        if not self.conn.poll(PATIENCE):
            raise TimeoutError("the vstudio server did not start")
        self.info = self.conn.recv()
        self.proc = Proc(self.info["pid"])
        self.ws_base = self.info["url"].replace("http://", "ws://")

    def ask(self, name: str, payload: Any = None) -> Any:
        return ask(self.conn, name, payload)

    def room(self, session_id: str) -> str:
        return f"{self.ws_base}/vstudio/sessions/{session_id}/ws"

    def rss_after_gc(self) -> int:
        self.ask("gc")
        return self.proc.rss_kb()

    def settled_rss(self, baseline_fds: int) -> int:
        """The RSS once the sockets are gone (descriptors back to the baseline) and a gc ran."""
        deadline = time.monotonic() + PATIENCE
        while self.proc.fds() > baseline_fds + 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # the rooms tell the last leaves (presence.py batches every 250 ms)
        return self.rss_after_gc()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(("stop", None))
        self.process.join(30)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


class Bench:
    def __init__(self, args: argparse.Namespace, client: Connection, client_pid: int) -> None:
        self.args = args
        self.client = client
        self.client_proc = Proc(client_pid)
        # The big room and the voters offer permessage-deflate (as browsers do) unless told not.
        self.compress = args.compression != "none"

    def cpu(self, server: Server) -> tuple[float, float, float]:
        return server.proc.cpu(), server.proc.loop_cpu(), self.client_proc.cpu()

    def cpu_since(self, server: Server, before: tuple[float, float, float]) -> str:
        now = self.cpu(server)
        spent, loop, client = (a - b for a, b in zip(now, before, strict=True))
        return (
            f"server CPU {spent:.1f} s (event loop {loop:.1f} s, other threads "
            f"{spent - loop:.1f} s), client CPU {client:.1f} s"
        )

    def open(self, server: Server, tag: str, rooms: list[str], count: int, **more: Any) -> Any:
        payload = {
            "tag": tag,
            "rooms": [server.room(r) for r in rooms],
            "count": count,
            "concurrency": self.args.concurrency,
        }
        return ask(self.client, "open", payload | more)

    def close(self, tag: str) -> Any:
        return ask(self.client, "close", tag)

    def warm_up(self, server: Server, rooms: list[str]) -> None:
        """Imports and caches the first sockets fill are the server's, not per socket."""
        self.open(server, "warm-up", rooms, 200)
        self.close("warm-up")
        server.settled_rss(server.proc.fds())


def create_sessions(url: str, signer: Any, artist: str, count: int) -> list[str]:
    headers = {"Authorization": f"Bearer {signer.token(artist, roles=('artist',), ttl=3600)}"}
    ids = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(count):
            made = http.post(
                "/vstudio/sessions",
                json={"masterId": str(uuid.uuid4()), "title": f"Bench room {i}"},
                headers=headers,
            )
            made.raise_for_status()
            ids.append(made.json()["id"])
    return ids


def open_decision(url: str, signer: Any, artist: str, session_id: str) -> str:
    headers = {"Authorization": f"Bearer {signer.token(artist, roles=('artist',), ttl=3600)}"}
    with httpx.Client(base_url=url, timeout=30) as http:
        opened = http.post(
            f"/vstudio/sessions/{session_id}/decisions",
            json={"question": "Which take?", "options": ["A", "B"], "weighting": "equal"},
            headers=headers,
        )
        opened.raise_for_status()
        return opened.json()["decisionId"]


def failures_of(opened: dict[str, Any]) -> str:
    if not opened["failures"]:
        return ""
    shown = "; ".join(f"{n}x {what}" for what, n in list(opened["failures"].items())[:3])
    return f" [red]failures: {shown}[/red]"


def census_growth(before: dict[str, int], after: dict[str, int]) -> str:
    grown = {k: after.get(k, 0) - before.get(k, 0) for k in after.keys() | before.keys()}
    total = sum(grown.values())
    top = [kv for kv in sorted(grown.items(), key=lambda kv: -kv[1]) if kv[1] > 0][:4]
    return f"{total:+,} objects ({', '.join(f'{k} {v:+,}' for k, v in top)})"


def bench_idle(b: Bench, server: Server, rooms: list[str], n: int, compress: bool) -> dict:
    """Figure 1 (and 4): a fresh server, its RSS with `n` idle members and after they left."""
    label = "client offers permessage-deflate" if compress else "client refuses compression"
    label += f", PYTHONMALLOC={b.args.allocator}"
    b.warm_up(server, rooms)
    fds = server.proc.fds()
    objects = server.ask("census")
    before = server.rss_after_gc()
    heap = server.ask("pymalloc")
    cpu = b.cpu(server)
    opened = b.open(server, "idle", rooms, n, compression=compress)
    time.sleep(1.0)  # the last presence frames sent
    during = server.rss_after_gc()
    peak_fds = server.proc.fds()
    spent = b.cpu_since(server, cpu)
    joined = max(opened["joined"], 1)
    per_socket = (during - before) / joined
    took = opened["all_joined_seconds"]
    record(
        f"idle sockets, {label}",
        f"{opened['joined']:,} joined over {len(rooms)} rooms in {took:.1f} s "
        f"({opened['joined'] / took:,.0f}/s); server RSS {before / 1024:,.0f} -> "
        f"{during / 1024:,.0f} MiB = [bold]{per_socket:,.1f} KB per socket[/bold] "
        f"({peak_fds:,} fds); presence frames received meanwhile {opened['presence_frames']:,} "
        f"({opened['presence_frames'] / joined:,.0f} per socket); {spent}" + failures_of(opened),
        f"server RSS before {before / 1024:,.0f} MiB",
        during / before,
    )
    closed = b.close("idle")
    after = server.settled_rss(fds)
    left = census_growth(objects, server.ask("census"))
    heap_after = server.ask("pymalloc")
    server.ask("trim")
    trimmed = server.proc.rss_kb()
    record(
        f"idle sockets closed, {label}",
        f"{closed['closed']:,} closed in {closed['seconds']:.1f} s; server RSS after gc "
        f"{after / 1024:,.0f} MiB ([bold]{100 * (after - before) / before:+.1f}%[/bold] of the "
        f"baseline), after malloc_trim {trimmed / 1024:,.0f} MiB "
        f"({100 * (trimmed - before) / before:+.1f}%); objects the gc tracks vs the baseline: "
        f"{left}; "
        + (
            f"pymalloc arenas {heap['arenas_mib']:,.0f} -> {heap_after['arenas_mib']:,.0f} MiB, "
            f"blocks in use {heap['blocks_mib']:,.0f} -> {heap_after['blocks_mib']:,.0f} MiB"
            if b.args.allocator == "pymalloc"
            else "PYTHONMALLOC=malloc (glibc's heap; the server trims it every 60 s)"
        ),
        f"server RSS before {before / 1024:,.0f} MiB (goal: within 20%)",
        after / before,
    )
    return {"per_socket": per_socket, "extensions": opened["extensions"]}


def report_compression(idle: dict[bool, dict[str, Any]]) -> None:
    """Figure 4: what the server answers a client offering permessage-deflate, and its cost."""
    offered = idle.get(True)
    refused = idle.get(False)
    answer = ", ".join(offered["extensions"]) if offered else "(not measured)"
    figure = f"server answers an offer with: {answer}"
    if offered and refused:
        extra = offered["per_socket"] - refused["per_socket"]
        figure += (
            f"; KB per idle socket {offered['per_socket']:,.1f} with it, "
            f"{refused['per_socket']:,.1f} without ([bold]{extra:+,.1f} KB[/bold])"
        )
    ratio = offered["per_socket"] / refused["per_socket"] if offered and refused else None
    record("permessage-deflate", figure, "the same sockets refusing compression", ratio)


def bench_big_room(b: Bench, server: Server, room: str, m: int) -> None:
    """Figure 2: `m` sockets into one room until the last has seen its own join."""
    cpu = b.cpu(server)
    opened = b.open(server, "big", [room], m, compression=b.compress)
    spent = b.cpu_since(server, cpu)
    took = opened["all_joined_seconds"]
    joined = max(opened["joined"], 1)
    record(
        "one big room",
        f"{opened['joined']:,} of {m:,} sockets open and joined, the last seeing its own join, "
        f"in [bold]{took:.1f} s[/bold] ({opened['joined'] / took:,.0f}/s; per socket "
        f"connect -> own join p50 {ms(opened['join_p50'])}, p99 {ms(opened['join_p99'])}); "
        f"presence frames: the first member got [bold]{opened['first_member_presence']:,}"
        f"[/bold], all members {opened['presence_frames']:,} "
        f"({opened['presence_frames'] / joined:,.1f} each, "
        f"{opened['presence_bytes'] / 2**20:,.0f} MiB of JSON); {spent}" + failures_of(opened),
        f"goal 5,000 in < 10 s; one frame per join per member would be {m * (m + 1) // 2:,}",
        None,
    )
    b.close("big")


def bench_votes(b: Bench, server: Server, echo: dict[str, Any], room: str, decision: str) -> None:
    """Figure 3: `voters` members of one room voting at `rate`, beside the echo baseline."""
    k, rate, seconds = b.args.voters, b.args.rate, b.args.seconds
    load = {"tag": "voters", "decision": decision, "rate": rate, "seconds": seconds}
    wait = seconds + 2 * PATIENCE
    opened = b.open(server, "voters", [room], k, compression=b.compress)
    cpu = b.cpu(server)
    voted = ask(b.client, "votes", load, timeout=wait)
    spent = b.cpu_since(server, cpu)
    b.close("voters")
    # The baseline: the same frames at the same rate, each echoed by a bare websockets server.
    echoing = {"tag": "echo", "rooms": [echo["url"]], "count": k, "echo": True}
    ask(b.client, "open", echoing | {"concurrency": b.args.concurrency, "compression": b.compress})
    raw = ask(b.client, "votes", load | {"tag": "echo", "echo": True}, timeout=wait)
    b.close("echo")
    achieved = voted["answered"] / voted["answered_seconds"]
    trouble = ""
    if voted["errors"] or voted["closed"] or voted["lost"] or opened["failures"]:
        trouble = (
            f" [red]{voted['errors']} error frames {voted['error_sample']}; {voted['lost']:,} "
            f"votes lost with their sockets; sockets closed by the server: "
            f"{voted['closed']}[/red]" + failures_of(opened)
        )
    baseline = (
        f"echo round trip p50 {ms(raw['ack_p50'])}, p99 {ms(raw['ack_p99'])} "
        f"({raw['answered']:,} of {raw['sent']:,})"
    )
    record(
        f"votes: send -> vote_ack ({opened['joined']:,} voters, {rate:,}/s for {seconds:g} s)",
        f"p50 [bold]{ms(voted['ack_p50'])}[/bold], p99 [bold]{ms(voted['ack_p99'])}[/bold]; "
        f"{voted['answered']:,} of {voted['sent']:,} acked, {achieved:,.0f}/s (the last "
        f"{voted['answered_seconds'] - seconds:.1f} s after sending stopped); {spent}" + trouble,
        baseline,
        voted["ack_p50"] / raw["ack_p50"],
    )
    record(
        "votes: send -> first vote_update after the ack",
        f"p50 [bold]{ms(voted['seen_p50'])}[/bold], p99 [bold]{ms(voted['seen_p99'])}[/bold] "
        f"({voted['seen']:,} votes; {voted['updates']:,} vote_update frames received, "
        f"{voted['updates'] / voted['answered_seconds']:,.0f}/s over the room; the last "
        f"counts {voted['final_votes']} votes)",
        baseline,
        voted["seen_p50"] / raw["ack_p50"],
    )
    record(
        "votes: p99 beside the echo's p99",
        f"vote_ack p99 {ms(voted['ack_p99'])}, vote_update p99 {ms(voted['seen_p99'])}",
        f"echo p99 {ms(raw['ack_p99'])}",
        voted["ack_p99"] / raw["ack_p99"],
    )


# ------------------------------------------------------------ the embedded platform


class Platform:
    """`make run`'s process (`audifi up`: every service and the gateway in one process, with
    embedded PostgreSQL, in-process bus and memory stores) on free ports, auth signing with
    the bench's key. Rate limits raised: the probes measure the services, not the limiter."""

    def __init__(self, private_pem: bytes, var_dir: Path) -> None:
        from audifi_kit.settings import DEFAULT_PORTS
        from audifi_kit.testing import free_port

        self.ports = {name: free_port() for name in DEFAULT_PORTS}
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "AMQP_URL", "REDIS_URL", "CHAIN_RPC_URL")
            and not k.startswith("AUDIFI_")
        }
        env |= {f"AUDIFI_{n.upper()}_PORT": str(p) for n, p in self.ports.items()}
        env |= {
            "AUDIFI_VAR_DIR": str(var_dir),
            "AUDIFI_SMTP_SINK_PORT": "0",
            "AUDIFI_STRIPE_LOCAL_PORT": str(free_port()),
            "AUDIFI_HOST": "127.0.0.1",
            "AUDIFI_RATE_LIMITS": "default=1000000/60,auth=1000000/60,write=1000000/60",
            "JWT_PRIVATE_KEY": private_pem.decode(),
        }
        self.log = PLATFORM_LOG.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "audifi_kit.cli", "up"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.proc = Proc(self.process.pid)
        self.api = f"http://127.0.0.1:{self.ports['gateway']}/api/v1"
        deadline = time.monotonic() + 4 * PATIENCE  # embedded PostgreSQL's initdb included
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"make run's process ended: see {PLATFORM_LOG}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.api}/admin/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"make run's platform did not start: see {PLATFORM_LOG}")
            time.sleep(0.5)

    def room(self, session_id: str) -> str:
        return f"{self.api.replace('http://', 'ws://')}/vstudio/sessions/{session_id}/ws"

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


class GatewayProcess:
    """`audifi serve gateway` in a process of its own (as `make up` runs it) in front of the
    bench's vstudio server, verifying the bench's tokens against the server's JWKS."""

    def __init__(self, vstudio: str, jwks: str) -> None:
        from audifi_kit.testing import free_port

        self.port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "AMQP_URL", "REDIS_URL") and not k.startswith("AUDIFI_")
        }
        env |= {
            "AUDIFI_GATEWAY_PORT": str(self.port),
            "AUDIFI_VSTUDIO_URL": vstudio,
            "AUDIFI_JWKS_URL": jwks,
            "AUDIFI_HOST": "127.0.0.1",
            "AUDIFI_RATE_LIMITS": "default=1000000/60",
        }
        self.log = GATEWAY_LOG.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "audifi_kit.cli", "serve", "gateway"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.proc = Proc(self.process.pid)
        deadline = time.monotonic() + PATIENCE
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway ended: see {GATEWAY_LOG}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).is_success:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the gateway did not start: see {GATEWAY_LOG}")
            time.sleep(0.2)

    def room(self, session_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/vstudio/sessions/{session_id}/ws"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def bench_big_room_gateway(b: Bench, server: Server, room: str, m: int) -> None:
    """Figure 2 again, through a gateway process: each socket's frames cross it both ways."""
    gateway = GatewayProcess(server.info["url"], server.info["jwks"])
    try:
        before = (server.proc.cpu(), gateway.proc.cpu(), b.client_proc.cpu())
        payload = {
            "tag": "big-gw",
            "rooms": [gateway.room(room)],
            "count": m,
            "concurrency": b.args.concurrency,
            "compression": b.compress,
        }
        opened = ask(b.client, "open", payload)
        spent = [
            now - then
            for now, then in zip(
                (server.proc.cpu(), gateway.proc.cpu(), b.client_proc.cpu()), before, strict=True
            )
        ]
        b.close("big-gw")
    finally:
        gateway.stop()
    took = opened["all_joined_seconds"]
    record(
        "one big room through a gateway process",
        f"{opened['joined']:,} of {m:,} sockets open and joined, the last seeing its own join, "
        f"in [bold]{took:.1f} s[/bold] ({opened['joined'] / took:,.0f}/s; per socket p50 "
        f"{ms(opened['join_p50'])}, p99 {ms(opened['join_p99'])}); CPU: vstudio "
        f"{spent[0]:.1f} s, gateway {spent[1]:.1f} s, client {spent[2]:.1f} s"
        + failures_of(opened),
        "goal 5,000 in < 10 s (the gateway, vstudio and the client share 2 cores)",
        None,
    )


class Probe:
    """Other users of the platform meanwhile: a sign-in (`POST /auth/login`, argon2 included)
    every second and a signed-in read (`GET /auth/session`) every 50 ms, through the gateway,
    each from its own task; latencies and refusals by status."""

    SIGN_IN_EVERY = 1.0
    READ_EVERY = 0.05
    TIMEOUT = 30.0

    def __init__(self, api: str) -> None:
        self.api = api
        self.email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        self.password = "a long bench passphrase 42"
        with httpx.Client(base_url=api, timeout=self.TIMEOUT) as client:
            made = client.post(
                "/auth/signup", json={"email": self.email, "password": self.password}
            )
            if made.status_code != 201:
                raise RuntimeError(f"sign-up refused: {made.status_code} {made.text[:200]}")
            self.token = self._sign_in(client)

    def _sign_in(self, client: httpx.Client) -> str:
        answer = client.post("/auth/login", json={"email": self.email, "password": self.password})
        answer.raise_for_status()
        return answer.json()["token"]

    def run(self, stop: threading.Event) -> dict[str, Any]:
        return asyncio.run(self._run(stop))

    async def _run(self, stop: threading.Event) -> dict[str, Any]:
        took: dict[str, list[float]] = {"sign-in": [], "read": []}
        failed: dict[str, collections.Counter[str]] = {k: collections.Counter() for k in took}
        tasks: set[asyncio.Task[None]] = set()
        headers = {"Authorization": f"Bearer {self.token}"}
        credentials = {"email": self.email, "password": self.password}
        async with httpx.AsyncClient(base_url=self.api, timeout=self.TIMEOUT) as client:

            async def one(kind: str) -> None:
                started = time.perf_counter()
                try:
                    if kind == "sign-in":
                        answer = await client.post("/auth/login", json=credentials)
                    else:
                        answer = await client.get("/auth/session", headers=headers)
                except httpx.HTTPError as exc:
                    failed[kind][type(exc).__name__] += 1
                    return
                if answer.status_code == 200:
                    took[kind].append(time.perf_counter() - started)
                else:
                    failed[kind][str(answer.status_code)] += 1

            started = time.perf_counter()
            next_sign_in = next_read = started
            while not stop.is_set():
                now = time.perf_counter()
                for kind, due in (("sign-in", next_sign_in), ("read", next_read)):
                    if now >= due:
                        task = asyncio.create_task(one(kind))
                        tasks.add(task)
                        task.add_done_callback(tasks.discard)
                if now >= next_sign_in:
                    next_sign_in += self.SIGN_IN_EVERY
                if now >= next_read:
                    next_read += self.READ_EVERY
                await asyncio.sleep(TICK)
            await asyncio.gather(*tasks)
        return {"took": took, "failed": {k: dict(v) for k, v in failed.items()}}


def probed(probe: Probe, during: Callable[[], Any] | float) -> tuple[Any, dict[str, Any]]:
    """The probe's figures while `during` runs (or for that many seconds)."""
    stop = threading.Event()
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.update(probe.run(stop)), daemon=True)
    thread.start()
    try:
        result = time.sleep(during) if isinstance(during, float) else during()
    finally:
        stop.set()
        thread.join(PATIENCE)
    return result, out


def probe_figures(seen: dict[str, Any], kind: str) -> str:
    took, failed = seen["took"][kind], seen["failed"][kind]
    shown = f"p50 {ms(pct(took, 50))}, p99 {ms(pct(took, 99))}, max {ms(max(took, default=0))}"
    shown += f" ({len(took):,} answered"
    if failed:
        shown += f"; [red]failed {failed}[/red]"
    return shown + ")"


def bench_platform(b: Bench, m: int, private_pem: bytes) -> None:
    """Figure 4: `make run`'s one process while `m` sockets open one room through its gateway
    (and stay, 10 s in all): sign-ins and reads through the same gateway, beside the same for
    10 s with no room."""
    from audifi_kit.launch import deployables
    from audifi_kit.server import connection_ceiling
    from audifi_kit.settings import Settings

    # In one process a socket through the gateway holds three descriptors (the client's, the
    # gateway's upstream end, vstudio's); the process's ceiling refuses more (503), leaving
    # room for the probes' connections.
    admitted = connection_ceiling(Settings(), deployables()).limit // 3 - 100
    if m > admitted:
        console.print(
            f"make run: {m:,} sockets cut to {admitted:,}: the process's connection ceiling "
            f"at {resource.getrlimit(resource.RLIMIT_NOFILE)[0]:,} descriptors"
        )
        m = admitted
    with tempfile.TemporaryDirectory(prefix="audifi-rooms-bench-") as var:
        platform = Platform(private_pem, Path(var))
        try:
            probe = Probe(platform.api)
            _, quiet = probed(probe, 10.0)
            cpu = platform.proc.cpu()
            payload = {
                "tag": "platform",
                "rooms": [platform.room(str(uuid.uuid4()))],
                "count": m,
                "concurrency": b.args.concurrency,
                "compression": b.compress,
            }

            def open_and_hold() -> Any:  # the room opens, then stays, for the same 10 s
                started = time.monotonic()
                opened = ask(b.client, "open", payload)
                time.sleep(max(0.0, 10.0 - (time.monotonic() - started)))
                return opened

            opened, busy = probed(probe, open_and_hold)
            spent = platform.proc.cpu() - cpu
            b.close("platform")
        finally:
            platform.stop()
    took = opened["all_joined_seconds"]
    record(
        "make run: one big room through the gateway",
        f"{opened['joined']:,} of {m:,} sockets open and joined in [bold]{took:.1f} s[/bold] "
        f"(the last seeing its own join; the platform process's CPU {spent:.1f} s); meanwhile "
        f"sign-in {probe_figures(busy, 'sign-in')}; signed-in read "
        f"{probe_figures(busy, 'read')}" + failures_of(opened),
        f"with no room: sign-in {probe_figures(quiet, 'sign-in')}; read "
        f"{probe_figures(quiet, 'read')}",
        pct(busy["took"]["read"], 99) / pct(quiet["took"]["read"], 99),
    )


# ---------------------------------------------------------------------------- main


def within_descriptors(name: str, wanted: int, limit: int) -> int:
    if wanted <= limit:
        return wanted
    console.print(
        f"[yellow]{name}: {wanted:,} sockets cut to {limit:,}: one process may hold "
        f"{resource.getrlimit(resource.RLIMIT_NOFILE)[1]:,} descriptors (`ulimit -n`), "
        f"{FD_RESERVE} of them kept for pools, listeners and files[/yellow]"
    )
    return limit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sockets", type=int, default=5_000, help="idle sockets (goal 20,000)")
    parser.add_argument("--big-room", type=int, default=2_000, help="one room (goal 5,000)")
    parser.add_argument("--voters", type=int, default=1_000, help="one room voting (goal 2,000)")
    parser.add_argument("--rate", type=int, default=1_000, help="votes per second (goal 2,000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="of voting")
    parser.add_argument("--concurrency", type=int, default=200, help="handshakes in flight")
    parser.add_argument("--only", default="idle,big,votes,platform", help="comma-separated figures")
    parser.add_argument(
        "--compression",
        choices=("both", "deflate", "none"),
        default="deflate",
        help="idle sockets with the client offering permessage-deflate, refusing it, or both "
        "(the big room and the voters offer it unless `none`)",
    )
    parser.add_argument(
        "--allocator",
        choices=("malloc", "pymalloc"),
        default="malloc",
        help="the server's PYTHONMALLOC (deploy/ runs vstudio with malloc: memory a closed "
        "socket freed goes back to the system)",
    )
    args = parser.parse_args()
    only = set(args.only.split(","))

    from audifi_kit.testing import LOCAL_DEFAULTS, drop_databases
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the children inherit it
    most = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - FD_RESERVE
    args.sockets = within_descriptors("idle sockets", args.sockets, most)
    args.big_room = within_descriptors("one big room", args.big_room, most)
    args.voters = within_descriptors("voters", args.voters, most)

    SERVER_LOG.parent.mkdir(parents=True, exist_ok=True)
    database = os.environ.get("DATABASE_URL") or LOCAL_DEFAULTS["DATABASE_URL"][0]
    prefix = f"audifi_vbench{uuid.uuid4().hex[:6]}_"
    from audifi_auth.adapters.signing_keys import SigningKey

    key = Ed25519PrivateKey.generate()
    signing = SigningKey(key)  # auth's: `make run`'s platform signs with it too
    private, kid = key.private_bytes_raw(), signing.kid
    signer = signer_of(private, kid)
    artist = str(uuid.uuid4())
    config = {
        "private": private,
        "kid": kid,
        "database_url": database,
        "prefix": prefix,
        "var_dir": "var/bench",
        "log": str(SERVER_LOG),
        "artist": artist,
        "allocator": args.allocator,
    }
    spawn = multiprocessing.get_context("spawn")
    client, client_end = spawn.Pipe()
    echo, echo_end = spawn.Pipe()
    children = [
        spawn.Process(target=echo_process, args=(echo_end,), name="echo"),
        spawn.Process(target=client_process, args=(client_end, private, kid), name="client"),
    ]
    for child in children:
        child.start()
    server: Server | None = None
    try:
        echo_info = echo.recv()
        b = Bench(args, client, children[1].pid or 0)
        server = Server(spawn, config)
        info = server.info
        console.print(
            f"vstudio (pid {info['pid']}, {info['url']}), client and echo: one process each, "
            f"on {os.cpu_count()} cores; descriptors per process {info['nofile'][0]:,} (at this "
            f"limit `audifi serve` would admit {info['ceiling']:,} connections); server log "
            f"{SERVER_LOG}"
        )
        sessions = create_sessions(info["url"], signer, artist, ROOMS + 2)
        idle_rooms, big, voting = sessions[:ROOMS], sessions[ROOMS], sessions[ROOMS + 1]
        decision = open_decision(info["url"], signer, artist, voting)
        if "idle" in only:
            modes = {"both": (True, False), "deflate": (True,), "none": (False,)}
            idle = {}
            for compress in modes[args.compression]:
                if idle:  # each measured from a fresh server's heap
                    server.stop()
                    server = Server(spawn, config)
                idle[compress] = bench_idle(b, server, idle_rooms, args.sockets, compress)
            report_compression(idle)
        if "big" in only:
            bench_big_room(b, server, big, args.big_room)
            bench_big_room_gateway(b, server, big, args.big_room)
        if "votes" in only:
            bench_votes(b, server, echo_info, voting, decision)
        if "platform" in only:
            server.stop()  # the cores to `make run`'s process alone
            server = None
            bench_platform(b, args.big_room, signing.pem())
    finally:
        for conn in (client, echo):
            with contextlib.suppress(Exception):
                conn.send(("stop", None))
        if server is not None:
            server.stop()
        for child in children:
            child.join(30)
            if child.is_alive():
                child.terminate()
        asyncio.run(drop_databases(database, prefix))
    table = Table(
        "benchmark", "figure", "baseline (same run)", "ratio", title="audifi vstudio rooms"
    )
    for row in rows:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
