"""Bridge benchmark (not a test): one bridge process against the seed design, side by side.

Run: ``.venv/bin/python bench/bench_bridge.py`` (``REDIS_URL`` to use a server; otherwise an
embedded valkey-server is started). ``--quick`` runs a smaller version (1,000 connections at
most). Everything runs on loopback; every loop is bounded in count and time.

Servers, each its own process, each fed by the same Redis live feed:

* ``bridge``: ``progress-bridge serve --bare`` (uvicorn, ``websockets-sansio``).
* ``bridge2``: the same with ``--workers 2`` (two bridge processes on one port, the kernel
  spreading connections; not run unless named in ``--only``). Compare it with ``--no-pin``: a
  bridge per core needs the cores the clients otherwise get.
* ``naive``: the seed design (``bench/naive_manager.py naive``): FastAPI, a dict of sockets,
  ``await send_json`` to each in turn; same uvicorn WebSocket implementation.
* ``broadcast``: ``websockets.broadcast()`` of one pre-encoded frame per event
  (``bench/naive_manager.py broadcast``): the single-frame ceiling.

Clients are minimal raw WebSocket clients in ``--workers`` processes (uvloop, no cyclic GC),
spread over several source addresses in 127.0.0.0/8. The server under test runs alone on core 0,
everything else on the other cores (``--no-pin`` to share). Per server, in this order:

1. connect time p50/p99 of ``--clients`` connections (TCP + handshake + subscribe answered),
   ``--connect-concurrency`` handshakes in flight per worker;
2. end-to-end latency (event appended → client received; the event's ``ts`` against the
   client's clock, same machine) p50/p99, ``--clients`` clients × ``--rate`` events/s;
3. deliveries/s with ``--clients`` subscribers: ``--burst`` events appended at once (pipelined),
   deliveries counted at the clients until all arrived;
4. the same with ``--big`` subscribers;
5. maximum connections held: open up to ``--max-conns`` in total, then check each one still
   receives an event;
6. (bridge only) reconnect + replay of 1,000 missed events: subscribe, drop, 1,000 events
   appended, reconnect with ``(epoch, last_id)``: time until the 1,000th event is in.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing as mp
import os
import platform
import resource
import secrets
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
import zlib
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from progress_bridge.bridge.tokens import TokenAuthority  # noqa: E402
from progress_bridge.config import Settings  # noqa: E402
from progress_bridge.events import ProcessingQueued, ZoneCompleted  # noqa: E402
from progress_bridge.store import EventStore  # noqa: E402
from progress_bridge.store.embedded import free_port, redis_url_or_embedded  # noqa: E402

KINDS = ("bridge", "base", "bridge2", "naive", "broadcast")
DEFAULT_KINDS = "bridge,naive,broadcast"
#: ``--base-root``: the checkout whose bridge runs as the ``base`` server (e.g. the previous
#: commit, ``git worktree add /tmp/pb-base <commit>``), started with this venv.
BASE_ROOT: Path | None = None
SOURCE_IPS = [f"127.0.0.{n}" for n in range(1, 9)]
WAIT_S = 60.0  # longest any single phase may take
SERVER_CPUS = {0}  # --pin: the server under test has core 0 to itself
RAMP_CHUNK = 600  # connections opened per round trip to the workers
NOFILE = 65_536


def raise_nofile(want: int = NOFILE) -> int:
    """Raise this process's open-file limit (children inherit it); return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for target in (want, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), max(hard, target)))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


# -- client worker processes ---------------------------------------------------------------------


class Worker:
    """Many WebSocket clients in one process, driven by commands over a pipe."""

    def __init__(self, pipe: Connection, wid: int, deflate: bool = False) -> None:
        self.pipe = pipe
        self.wid = wid
        self.deflate = deflate
        self.conns: list[RawClient] = []
        self.mode = "count"
        self.events = 0
        self.last_at = 0.0
        self.latencies: list[float] = []
        self.received: list[tuple[float, bytes]] = []
        self.closed = 0

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            cmd, args = await loop.run_in_executor(None, self.pipe.recv)
            if cmd == "quit":
                await self.cmd_close_all()
                self.pipe.send(None)
                return
            try:
                result = await getattr(self, f"cmd_{cmd}")(*args)
            except Exception as exc:  # report, keep serving
                result = {"error": repr(exc)}
            self.pipe.send(result)

    def on_message(self, msg: bytes) -> None:
        if msg.startswith(b'{"op":"batch"'):
            n = msg.count(b'{"id":"')
        elif msg.startswith((b'{"op":"event"', b'{"op": "event"')):
            n = 1
        else:
            return
        now = time.time()
        if self.mode == "latency":
            # Stamped now, decoded in cmd_stats: the clients share the machine with the
            # server, and a json.loads per frame here would delay the next frames' stamps.
            self.received.append((now, msg))
        self.events += n
        self.last_at = now

    async def cmd_connect(
        self, url: str, protocols: list[str], job_id: str, n: int, concurrency: int
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        host, _, rest = url.removeprefix("ws://").partition(":")
        port_text, _, path = rest.partition("/")
        request = (
            f"GET /{path} HTTP/1.1\r\nHost: {host}:{port_text}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            + ("Sec-WebSocket-Extensions: permessage-deflate\r\n" if self.deflate else "")
            + (f"Sec-WebSocket-Protocol: {', '.join(protocols)}\r\n" if protocols else "")
            + "\r\n"
        ).encode()
        subscribe = client_frame(json.dumps({"op": "subscribe", "job_id": job_id}).encode())
        sem = asyncio.Semaphore(concurrency)
        times: list[float] = []
        errors: list[str] = []
        base = len(self.conns)

        async def one(i: int) -> None:
            src = SOURCE_IPS[(base + i + self.wid) % len(SOURCE_IPS)]
            async with sem:
                t0 = time.perf_counter()
                proto = RawClient(self, request, subscribe, loop.create_future())
                try:
                    await loop.create_connection(
                        lambda: proto, host, int(port_text), local_addr=(src, 0)
                    )
                    await asyncio.wait_for(proto.ready, 30)
                except Exception as exc:
                    errors.append(repr(exc)[:200])
                    if proto.transport is not None:
                        proto.transport.abort()
                    return
                times.append(time.perf_counter() - t0)
            self.conns.append(proto)

        await asyncio.gather(*(one(i) for i in range(n)))
        return {"times": times, "errors": len(errors), "first_error": errors[:1]}

    async def cmd_reset(self, mode: str) -> dict[str, Any]:
        self.mode = mode
        self.events = 0
        self.last_at = 0.0
        self.latencies = []
        self.received = []
        return {"open": len(self.conns) - self.closed}

    async def cmd_stats(self) -> dict[str, Any]:
        for now, msg in self.received:
            frame = json.loads(msg)
            events = [frame["event"]] if frame.get("op") == "event" else frame.get("events", [])
            self.latencies.extend(now - event["ts"] for event in events)
        self.received = []
        return {
            "events": self.events,
            "last_at": self.last_at,
            "latencies": self.latencies,
            "open": len(self.conns) - self.closed,
        }

    async def cmd_close_all(self) -> dict[str, Any]:
        for proto in self.conns:
            if proto.transport is not None:
                reset(proto.transport)
        await asyncio.sleep(0.5)  # let connection_lost callbacks run before counting anew
        self.conns, self.closed = [], 0
        return {}


#: SO_LINGER on, 0 s: closing a socket sends a reset instead of a FIN.
_RESET = struct.pack("ii", 1, 0)


def reset(transport: asyncio.BaseTransport) -> None:
    """Drop a client connection with a reset. A plain abort closes with a FIN, leaving the
    client side in TIME_WAIT for a minute: 10,000 of those slowed the next server's connects
    (the kernel searches past them for free ports) by up to 4x, whichever server came next."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    transport.abort()


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    """A masked client frame (RFC 6455 §5.3; the all-zero key leaves the payload as is)."""
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


class RawClient(asyncio.Protocol):
    """A minimal WebSocket client: handshake, subscribe, then count or time event frames.

    The ``websockets`` client spends tens of µs of Python per received frame, so thousands of
    them on the same 2 cores would measure the clients, not the servers; this one parses frame
    headers and hands the payload over (a few µs). Server frames are never fragmented by
    uvicorn or ``websockets``; pings are answered.
    """

    def __init__(
        self, worker: Worker, request: bytes, subscribe: bytes, ready: asyncio.Future[None]
    ) -> None:
        self.worker = worker
        self.request = request
        self.subscribe = subscribe
        self.ready = ready
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.open = False
        self.inflater: Any = None  # with --deflate: one per connection (context takeover)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.closed += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before subscribed: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end])
            del buf[: end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(ConnectionError(head.split(b"\r\n")[0].decode()))
                assert self.transport is not None
                self.transport.close()
                return
            self.open = True
            assert self.transport is not None
            self.transport.write(self.subscribe)
        pos, size = 0, len(buf)
        while size - pos >= 2:
            length, hdr = buf[pos + 1] & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, hdr = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, hdr = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if size - pos < hdr + length:
                break
            opcode = buf[pos] & 0x0F
            payload = bytes(buf[pos + hdr : pos + hdr + length])
            if buf[pos] & 0x40:  # RSV1: a compressed message (RFC 7692 §7.2.2)
                if self.inflater is None:
                    self.inflater = zlib.decompressobj(-15)
                payload = self.inflater.decompress(payload + b"\x00\x00\xff\xff")
            pos += hdr + length
            if opcode == 1 or opcode == 2:
                if self.ready.done():
                    self.worker.on_message(payload)
                elif b'"subscribed"' in payload[:40]:
                    self.ready.set_result(None)
            elif opcode == 9 and self.transport is not None:
                self.transport.write(client_frame(payload, 0xA))
            elif opcode == 8 and self.transport is not None:
                self.transport.close()
        if pos:
            del buf[:pos]


def worker_main(pipe: Connection, wid: int, deflate: bool) -> None:
    raise_nofile()
    import uvloop

    # No cyclic GC in the clients: with thousands of connections and every latency sample
    # kept, a full collection here paused a worker for tens of ms and showed up as server
    # latency (p99 outliers of 70-150 ms for every server alike). Memory is bounded by the run.
    gc.disable()

    uvloop.run(Worker(pipe, wid, deflate).serve())


class Clients:
    """The worker processes, addressed together."""

    def __init__(self, n: int, deflate: bool = False) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs = []
        for wid in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, wid, deflate), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def call(self, cmd: str, *args: Any, split: int | None = None) -> list[Any]:
        """Send ``cmd`` to every worker (``split``: share that many clients among them)."""
        for i, pipe in enumerate(self.pipes):
            if split is not None:
                share = split // len(self.pipes) + (1 if i < split % len(self.pipes) else 0)
                pipe.send((cmd, (*args[:-1], share, args[-1])))
            else:
                pipe.send((cmd, args))
        out = []
        for pipe in self.pipes:
            if not pipe.poll(WAIT_S * 2):
                raise RuntimeError(f"worker did not answer {cmd}")
            out.append(pipe.recv())
        return out

    def connect(
        self, url: str, protocols: list[str], job_id: str, n: int, concurrency: int
    ) -> tuple[list[float], int, list[str]]:
        results = self.call("connect", url, protocols, job_id, concurrency, split=n)
        times = [t for r in results for t in r.get("times", [])]
        errors = sum(r.get("errors", 0) for r in results)
        first = [e for r in results for e in r.get("first_error", [])][:1]
        first += [r["error"] for r in results if "error" in r][:1]
        return times, errors, first

    def stats(self) -> dict[str, Any]:
        results = self.call("stats")
        return {
            "events": sum(r["events"] for r in results),
            "last_at": max(r["last_at"] for r in results),
            "latencies": [x for r in results for x in r["latencies"]],
            "open": sum(r["open"] for r in results),
        }

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.call("quit")
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


# -- servers ---------------------------------------------------------------------------------


def is_bridge(kind: str) -> bool:
    """A bridge (this checkout's, ``--workers 2``, or ``--base-root``'s), not a baseline."""
    return kind.startswith("bridge") or kind == "base"


class Server:
    """One server under test, as a child process on a free loopback port."""

    def __init__(
        self, kind: str, settings: Settings, redis_url: str, cpus: set[int] | None = None
    ) -> None:
        self.kind = kind
        self.port = free_port()
        env = dict(os.environ)
        # The caller's PYTHONPATH is kept (e.g. to try an extra package in the servers only).
        root = BASE_ROOT if kind == "base" and BASE_ROOT is not None else ROOT
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
        if is_bridge(kind):
            secret = settings.token_secret
            assert secret is not None
            env.update(
                PROGRESS_REDIS_URL=redis_url,
                PROGRESS_TOKEN_SECRET=secret.get_secret_value(),
                PROGRESS_BRIDGE_MAX_CONNECTIONS="20000",
                PROGRESS_BRIDGE_MAX_CONNECTIONS_PER_USER="20000",
                PROGRESS_BRIDGE_HEARTBEAT_S="600",
            )
            cmd = [sys.executable, "-m", "progress_bridge.cli", "serve", "--bare"]
            cmd += ["--port", str(self.port), "--log-level", "warning"]
            if kind == "bridge2":
                cmd += ["--workers", "2"]
                cpus = None  # one process per core: pinning to one core would defeat it
        else:
            cmd = [sys.executable, str(ROOT / "bench" / "naive_manager.py"), kind]
            cmd += ["--port", str(self.port), "--redis-url", redis_url]
        pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
        self.proc = subprocess.Popen(cmd, env=env, cwd=root, preexec_fn=pin)
        self._wait_listening()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited at start-up")
            if self.kind == "broadcast":
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", self.port), timeout=1),
                ):
                    return
            else:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success:
                        return
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind} server did not start")

    def pids(self) -> list[int]:
        """The server's process and its children (``--workers``' bridge processes)."""
        pid = self.proc.pid
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as children:
                return [pid, *map(int, children.read().split())]
        except OSError:
            return [pid]

    def rss_mb(self) -> float:
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total / 1024 if total else float("nan")

    def cpu_s(self) -> float:
        ticks = 0
        for pid in self.pids():
            with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- phases ----------------------------------------------------------------------------------


def zone(job_id: str, n: int) -> ZoneCompleted:
    return ZoneCompleted(
        job_id=job_id, zone_id=f"z{n}", zone_index=n, processing_tool="bench", confidence=0.9
    )


def wait_deliveries(clients: Clients, expected: int, started: float) -> tuple[int, float]:
    """Poll until ``expected`` deliveries arrived (or no progress for 5 s); deliveries, rate."""
    deadline = time.monotonic() + WAIT_S
    last_count, last_change = -1, time.monotonic()
    stats = clients.stats()
    while time.monotonic() < deadline:
        stats = clients.stats()
        if stats["events"] >= expected:
            break
        if stats["events"] != last_count:
            last_count, last_change = stats["events"], time.monotonic()
        elif time.monotonic() - last_change > 5:
            break
        time.sleep(0.1)
    took = max(1e-9, stats["last_at"] - started)
    return stats["events"], stats["events"] / took


def ramp(
    kind: str,
    clients: Clients,
    url: str,
    protocols: list[str],
    job_id: str,
    n: int,
    args: argparse.Namespace,
) -> int:
    """Open ``n`` more connections in chunks, within ``--ramp-s``; return how many opened."""
    opened, deadline = 0, time.monotonic() + args.ramp_s
    while opened < n and time.monotonic() < deadline:
        chunk = min(RAMP_CHUNK, n - opened)
        times, errors, first = clients.connect(url, protocols, job_id, chunk, args.ramp_concurrency)
        opened += len(times)
        if first:
            print(f"  {kind}: {errors} connect errors, first: {first[0]}")
        if not times:
            break
    print(f"  {kind}: {opened} more connections opened")
    return opened


def run_server(
    kind: str,
    args: argparse.Namespace,
    settings: Settings,
    redis_url: str,
    store: EventStore,
    clients: Clients,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    server = Server(kind, settings, redis_url, SERVER_CPUS if args.pin else None)
    job_id = f"bench-{kind}-{uuid.uuid4().hex[:8]}"
    store.append(ProcessingQueued(job_id=job_id, task_name="bench", owner="bench"))
    protocols: list[str] = []
    if is_bridge(kind):
        token = TokenAuthority(settings).mint("bench", admin=True)
        protocols = ["progress.v1.json", f"token.{token}"]
    try:
        # 1. connect time.
        cpu0 = server.cpu_s()
        t0 = time.perf_counter()
        times, errors, first = clients.connect(
            server.url, protocols, job_id, args.clients, args.connect_concurrency
        )
        out["connect_rate"] = len(times) / (time.perf_counter() - t0)
        out["connect_cpu_ms"] = (server.cpu_s() - cpu0) * 1e3 / max(1, len(times))
        out["connect_p50"], out["connect_p99"] = pct(times, 0.5), pct(times, 0.99)
        out["connect_errors"] = errors
        if first:
            print(f"  {kind}: connect errors, first: {first[0]}")
        held = len(times)
        print(f"  {kind}: {held} connected")
        # 2. end-to-end latency at --rate events/s.
        clients.call("reset", "latency")
        cpu0 = server.cpu_s()
        n_events = int(args.rate * args.latency_s)
        next_at = time.perf_counter()
        for n in range(n_events):
            store.append(zone(job_id, n))
            next_at += 1 / args.rate
            time.sleep(max(0.0, next_at - time.perf_counter()))  # pacing the producer
        wait_deliveries(clients, n_events * held, time.time())
        lat = clients.stats()["latencies"]
        out["lat_us_per_delivery"] = (server.cpu_s() - cpu0) * 1e6 / max(1, len(lat))
        out["lat_p50"], out["lat_p99"] = pct(lat, 0.5), pct(lat, 0.99)
        out["lat_samples"] = len(lat)
        out["lat_expected"] = n_events * held
        print(f"  {kind}: latency p99 {out['lat_p99'] * 1e3:.1f} ms")
        # 3. deliveries/s at --clients subscribers.
        for label, subs in (("small", args.clients), ("big", args.big)):
            if subs > held:
                held += ramp(kind, clients, server.url, protocols, job_id, subs - held, args)
            burst = max(10, args.deliveries // max(1, held))
            clients.call("reset", "count")
            cpu0 = server.cpu_s()
            started = time.time()
            store.append_many(zone(job_id, n) for n in range(burst))
            got, rate = wait_deliveries(clients, burst * held, started)
            cpu = server.cpu_s() - cpu0
            out[f"rate_{label}"] = rate
            out[f"subs_{label}"] = held
            out[f"complete_{label}"] = got / max(1, burst * held)
            out[f"us_per_delivery_{label}"] = cpu * 1e6 / max(1, got)
            print(
                f"  {kind}: {held} subscribers, {burst} events: {rate:,.0f} deliveries/s "
                f"({got / (burst * held):.0%} delivered, {cpu * 1e6 / max(1, got):.1f} µs "
                "server CPU each)"
            )
        # 5. maximum connections.
        if args.max_conns > held:
            t0 = time.perf_counter()
            cpu0 = server.cpu_s()
            more = ramp(kind, clients, server.url, protocols, job_id, args.max_conns - held, args)
            out["ramp_rate"] = more / (time.perf_counter() - t0)
            out["ramp_cpu_ms"] = (server.cpu_s() - cpu0) * 1e3 / max(1, more)
            held += more
        clients.call("reset", "count")
        started = time.time()
        store.append(zone(job_id, 10**6))
        got, _ = wait_deliveries(clients, held, started)
        out["max_conns"] = got
        out["max_tried"] = max(args.max_conns, held)
        out["rss_mb"] = server.rss_mb()
        print(f"  {kind}: {got} of {held} connections received the check event")
        # 6. reconnect + replay (the bridges only: the baselines cannot replay).
        if is_bridge(kind):
            out["replay"] = asyncio.run(replay_times(server.url, protocols, store, args.replays))
    finally:
        clients.call("close_all")
        server.stop()
    return out


async def replay_times(
    url: str, protocols: list[str], store: EventStore, rounds: int
) -> list[float]:
    """Subscribe, drop, 1,000 events appended, reconnect with the position: time to all 1,000."""
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    subs = [Subprotocol(p) for p in protocols]
    out = []
    for _ in range(rounds):
        job_id = f"bench-replay-{uuid.uuid4().hex[:8]}"
        store.append(ProcessingQueued(job_id=job_id, task_name="bench", owner="bench"))
        async with connect(url, subprotocols=subs, compression=None) as ws:
            await ws.send(json.dumps({"op": "subscribe", "job_id": job_id}))
            while True:
                frame = json.loads(await ws.recv())
                if frame["op"] == "subscribed":
                    epoch, last_id = frame["epoch"], frame["snapshot"]["last_id"]
                    break
        store.append_many(zone(job_id, n) for n in range(1000))
        t0 = time.perf_counter()
        got = 0
        async with connect(url, subprotocols=subs, compression=None) as ws:
            await ws.send(
                json.dumps(
                    {"op": "subscribe", "job_id": job_id, "epoch": epoch, "last_id": last_id}
                )
            )
            async with asyncio.timeout(30):
                while got < 1000:
                    frame = json.loads(await ws.recv())
                    if frame["op"] == "event":
                        got += 1
                    elif frame["op"] == "batch":
                        got += len(frame["events"])
                    elif frame["op"] == "subscribed":
                        assert frame["recovered"], frame
        out.append(time.perf_counter() - t0)
    return out


# -- report ----------------------------------------------------------------------------------


def fmt_ms(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{x * 1e3:.1f} ms"


def fmt_n(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{x:,.0f}"


def ratio(a: float | None, b: float | None, higher_better: bool) -> str:
    if not a or not b or a != a or b != b:
        return "n/a"
    r = a / b if higher_better else b / a
    return f"{r:.2f}x"


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    kinds = [k for k in KINDS if k in results]
    rows: list[tuple[str, str, bool, Any]] = [
        ("connect p50", "connect_p50", False, fmt_ms),
        ("connect p99", "connect_p99", False, fmt_ms),
        ("server CPU per connect", "connect_cpu_ms", False, lambda x: f"{x:.2f} ms"),
        (f"latency p50 ({args.clients} × {args.rate:g}/s)", "lat_p50", False, fmt_ms),
        (f"latency p99 ({args.clients} × {args.rate:g}/s)", "lat_p99", False, fmt_ms),
        ("server CPU µs/delivery (latency)", "lat_us_per_delivery", False, lambda x: f"{x:.2f}"),
        (f"deliveries/s ({args.clients} subs)", "rate_small", True, fmt_n),
        (f"deliveries/s ({args.big} subs)", "rate_big", True, fmt_n),
        ("server CPU µs/delivery (small)", "us_per_delivery_small", False, lambda x: f"{x:.2f}"),
        ("server CPU µs/delivery (big)", "us_per_delivery_big", False, lambda x: f"{x:.2f}"),
        ("connect rate, ramp to max (/s)", "ramp_rate", True, fmt_n),
        ("server CPU per connect, ramp", "ramp_cpu_ms", False, lambda x: f"{x:.2f} ms"),
        ("connections held", "max_conns", True, fmt_n),
        ("server RSS at max (MB)", "rss_mb", False, lambda x: f"{x:.0f}"),
    ]
    head = f"{'':38}" + "".join(f"{k:>16}" for k in kinds)
    head += "".join(f"{'bridge/' + k:>18}" for k in kinds if k != "bridge")
    print()
    print(head)
    for label, key, higher, show in rows:
        line = f"{label:38}"
        for k in kinds:
            value = results[k].get(key)
            line += f"{show(value) if value is not None else 'n/a':>16}"
        for k in kinds:
            if k != "bridge" and "bridge" in results:
                line += f"{ratio(results['bridge'].get(key), results[k].get(key), higher):>18}"
        print(line)
    replay: list[float] = results.get("bridge", {}).get("replay") or []
    for k in ("bridge", "bridge2", "base"):
        rounds: list[float] = results.get(k, {}).get("replay") or []
        if rounds:
            print(
                f"{'reconnect + replay 1,000 events (' + k + ')':38}"
                f"{fmt_ms(pct(rounds, 0.5)):>16} p50, {fmt_ms(pct(rounds, 0.99))} p99, "
                f"{fmt_ms(max(rounds))} max ({len(rounds)} rounds; baselines cannot replay)"
            )
    incomplete = [
        f"{k} {label}: {results[k][f'complete_{label}']:.0%}"
        for k in kinds
        for label in ("small", "big")
        if results[k].get(f"complete_{label}", 1) < 1
    ]
    if incomplete:
        print(
            "incomplete deliveries (lost or still queued at the deadline): " + ", ".join(incomplete)
        )
    b = results.get("bridge", {})
    if b:
        print("\ntargets (one bridge process):")
        checks = [
            ("≥ 10,000 concurrent connections", b.get("max_conns", 0) >= 10_000),
            ("≥ 100,000 deliveries/s", max(b.get("rate_small", 0), b.get("rate_big", 0)) >= 1e5),
            ("latency p99 < 25 ms at 1,000 × 10/s", b.get("lat_p99", 1) < 0.025),
            ("connect p99 < 50 ms", b.get("connect_p99", 1) < 0.050),
            ("reconnect + replay of 1,000 < 250 ms", bool(replay) and pct(replay, 0.99) < 0.25),
        ]
        for what, ok in checks:
            print(f"  {'met ' if ok else 'MISS'} {what}")


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, "
        f"load average {load[0]:.1f} at start"
    )


def redis_server() -> contextlib.AbstractContextManager[str]:
    return redis_url_or_embedded(os.environ.get("REDIS_URL"))


def main() -> None:
    parser = argparse.ArgumentParser(description="bridge vs naive manager vs broadcast()")
    parser.add_argument(
        "--only", default=DEFAULT_KINDS, help=f"comma-separated servers of {', '.join(KINDS)}"
    )
    parser.add_argument("--workers", type=int, default=3, help="client processes")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--big", type=int, default=5000)
    parser.add_argument("--max-conns", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=10.0, help="events/s in the latency phase")
    parser.add_argument("--latency-s", type=float, default=5.0)
    parser.add_argument("--deliveries", type=int, default=500_000, help="per throughput phase")
    parser.add_argument("--connect-concurrency", type=int, default=4, help="per worker")
    parser.add_argument("--ramp-concurrency", type=int, default=32, help="per worker")
    parser.add_argument("--ramp-s", type=float, default=400.0, help="time to open connections")
    parser.add_argument("--replays", type=int, default=20)
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin the server to core 0 and everything else (clients, Redis, this "
        "process) to the other cores",
    )
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="clients offer permessage-deflate (the servers accept it; the bridge then frames "
        "per connection instead of writing shared pre-built frames)",
    )
    parser.add_argument("--quick", action="store_true", help="at most 1,000 connections")
    parser.add_argument(
        "--base-root",
        type=Path,
        help="also run the bridge of this checkout (server 'base'; add it to --only)",
    )
    args = parser.parse_args()
    global BASE_ROOT
    BASE_ROOT = args.base_root.resolve() if args.base_root else None
    if args.quick:
        args.clients, args.big, args.max_conns = 200, 1000, 1000
        args.deliveries, args.latency_s, args.replays = 100_000, 2.0, 5
    limit = raise_nofile()
    if args.pin and (os.cpu_count() or 1) >= 2:
        # Pinned before Redis and the client workers start, so they inherit the other cores.
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)) - SERVER_CPUS)
    else:
        args.pin = False
    print(
        f"machine: {machine()}; open files {limit}; server pinned to core 0: {args.pin}; "
        f"clients offer permessage-deflate: {args.deflate}"
    )
    settings = Settings(token_secret=secrets.token_urlsafe(32))
    results: dict[str, dict[str, Any]] = {}
    with redis_server() as redis_url:
        store = EventStore(redis.Redis.from_url(redis_url, decode_responses=True), settings)
        clients = Clients(args.workers, args.deflate)
        try:
            for kind in args.only.split(","):
                print(f"== {kind}")
                results[kind] = run_server(kind, args, settings, redis_url, store, clients)
        finally:
            clients.stop()
    report(results, args)
    print(
        f"\n(connect: {args.connect_concurrency} handshakes in flight per worker, "
        f"{args.workers} workers; connection ramp: {args.ramp_concurrency} per worker; "
        f"load average at end {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
