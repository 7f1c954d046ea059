"""Soak benchmark (not a test): a bridge under connection churn for a long time; does its memory
stay flat, and do its full garbage collections find anything?

Run: ``.venv/bin/python bench/bench_soak.py [--minutes 30]`` (``--root /tmp/pb-base`` runs the
bridge of another checkout with this venv, e.g. the previous commit, for comparison).

One bridge process (``progress-bridge serve --bare``) with its timed full collection every
``--gc-interval-s`` (600 s, its default: memory must stay flat without one; 60 shows one
collection a minute and what it found), fed by
one producer appending ``--rate`` events/s to each of ``--jobs`` jobs. Clients (minimal raw
WebSocket clients in ``--workers`` processes, uvloop, no cyclic GC): ``--stable`` connections
held for the whole run and answering the heartbeat, and ``--churn`` new connections per second,
each subscribed to a job and gone after 0.5-3 s (half with a close frame, half by a TCP reset).

Every minute: the bridge's RSS (``/proc``), its connections, deliveries/s counted at the
clients, connects/s, and the full collections of that minute from its ``/metrics``: objects
found unreachable, tracked objects freed (which also counts cycles a finalizer broke, that
``gc.collect()`` does not report), pause. At the end every client leaves and the RSS is read
once more. The verdicts: RSS growth after the first ``--warm-min`` minutes (target < 5 %), and
what full collections found (target ~0).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import gc
import json
import multiprocessing as mp
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import redis

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from progress_bridge.bridge.tokens import TokenAuthority  # noqa: E402
from progress_bridge.config import Settings  # noqa: E402
from progress_bridge.events import ProcessingQueued, ZoneCompleted  # noqa: E402
from progress_bridge.store import EventStore  # noqa: E402
from progress_bridge.store.embedded import free_port, redis_url_or_embedded  # noqa: E402

PING = b'{"op":"ping"'
PONG = bytes([0x81, 0x80 | 13]) + b"\0\0\0\0" + b'{"op":"pong"}'


def client_frame(payload: bytes) -> bytes:
    """A masked text frame (the all-zero mask leaves the payload as is)."""
    return bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


class Client(asyncio.Protocol):
    """Handshake, subscribe, count events, answer the heartbeat and protocol pings."""

    def __init__(self, stats: dict[str, int], request: bytes, subscribe: bytes) -> None:
        self.stats = stats
        self.request = request
        self.subscribe = subscribe
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            ok = buf.startswith(b"HTTP/1.1 101")
            del buf[: end + 4]
            if not ok:
                self.stats["refused"] += 1
                if self.transport is not None:
                    self.transport.close()
                return
            self.open = True
            self.stats["connected"] += 1
            if self.transport is not None:
                self.transport.write(self.subscribe)
        pos, size = 0, len(buf)
        while size - pos >= 2:
            n, hdr = buf[pos + 1] & 0x7F, 2
            if n == 126:
                if size - pos < 4:
                    break
                n, hdr = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif n == 127:
                if size - pos < 10:
                    break
                n, hdr = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if size - pos < hdr + n:
                break
            start = pos + hdr
            head = bytes(buf[start : start + 14])
            if head.startswith(b'{"op":"event"'):
                self.stats["events"] += 1
            elif head.startswith(b'{"op":"batch"'):
                self.stats["events"] += bytes(buf[start : start + n]).count(b'{"id":"')
            elif head.startswith(PING) and self.transport is not None:
                self.transport.write(PONG)
            elif buf[pos] & 0x0F == 9 and self.transport is not None and n < 126:
                # A protocol ping (browsers answer them): the pong echoes its payload.
                payload = bytes(buf[start : start + n])
                self.transport.write(bytes([0x8A, 0x80 | n]) + b"\0\0\0\0" + payload)
            elif buf[pos] & 0x0F == 8:
                self.stats["closed_by_server"] += 1
            pos = start + n
        if pos:
            del buf[:pos]

    def leave(self, abort: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        if abort or not self.open:
            transport.abort()
        else:
            transport.write(bytes([0x88, 0x82]) + b"\0\0\0\0" + (1000).to_bytes(2, "big"))
            transport.close()


async def run_clients(pipe: Connection, args: dict[str, Any]) -> None:
    """Stable clients for the whole run, and churn, until told to stop."""
    loop = asyncio.get_running_loop()
    stats = {"connected": 0, "events": 0, "refused": 0, "closed_by_server": 0, "failed": 0}
    host, port = "127.0.0.1", args["port"]
    token, jobs = args["token"], args["jobs"]
    rng = random.Random(args["seed"])

    def request(job: str) -> tuple[bytes, bytes]:
        head = (
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: progress.v1.json, "
            f"token.{token}\r\n\r\n"
        ).encode()
        return head, client_frame(json.dumps({"op": "subscribe", "job_id": job}).encode())

    async def open_one(job: str) -> Client | None:
        client = Client(stats, *request(job))
        try:
            await loop.create_connection(lambda: client, host, port)
        except OSError:
            stats["failed"] += 1
            return None
        return client

    stable = [await open_one(jobs[i % len(jobs)]) for i in range(args["stable"])]
    stopping = asyncio.Event()

    async def churn() -> None:
        interval = 1 / args["churn"] if args["churn"] else 0
        next_at = loop.time()
        while interval and not stopping.is_set():
            client = await open_one(rng.choice(jobs))
            if client is not None:
                loop.call_later(rng.uniform(0.5, 3.0), client.leave, rng.random() < 0.5)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    churning = asyncio.create_task(churn())
    while True:
        cmd = await loop.run_in_executor(None, pipe.recv)
        if cmd == "stats":
            pipe.send(dict(stats))
        elif cmd == "stop":
            stopping.set()
            await churning
            for client in stable:
                if client is not None:
                    client.leave(False)
            await asyncio.sleep(4)  # churners still open leave within 3 s
            pipe.send(dict(stats))
            return


def client_main(pipe: Connection, args: dict[str, Any]) -> None:
    import resource

    import uvloop

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    gc.disable()  # the clients' own pauses are not the bridge's
    uvloop.run(run_clients(pipe, args))


#: Zones each job cycles through: a job's snapshot (read by every first subscribe) keeps one
#: entry per zone, so ever-new zone ids would make each subscribe costlier than the last.
ZONES = 20


def produce(store: EventStore, jobs: list[str], rate: float, stop: threading.Event) -> None:
    """``rate`` zone events/s for each job, in 10 appends a second."""
    per_tick = max(1, round(rate / 10))
    n = 0
    next_at = time.monotonic()
    while not stop.is_set():
        store.append_many(
            ZoneCompleted(
                job_id=job,
                zone_id=f"z{(n + i) % ZONES}",
                zone_index=(n + i) % ZONES,
                processing_tool="soak",
            )
            for job in jobs
            for i in range(per_tick)
        )
        n += per_tick
        next_at += 0.1
        stop.wait(max(0.0, next_at - time.monotonic()))


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)


def scrape(port: int) -> dict[str, float]:
    """The bridge's gauges (``progress_bridge_*`` without labels)."""
    import httpx

    out: dict[str, float] = {}
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("progress_bridge_") and ("{" not in line or "closed_total{" in line):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):
                out[name.removeprefix("progress_bridge_")] = float(value)
    return out


def gc_delta(now: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    """The full collections between two scrapes."""
    keys = ("collections", "found", "freed", "pause_seconds")
    d = {k: now.get(f"gc_full_{k}", 0.0) - before.get(f"gc_full_{k}", 0.0) for k in keys}
    d["last_pause_ms"] = now.get("gc_full_last_pause_seconds", 0.0) * 1e3
    return d


def main() -> None:
    parser = argparse.ArgumentParser(description="bridge memory under connection churn")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--warm-min", type=float, default=5, help="growth counted after this")
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--rate", type=float, default=50, help="events/s per job")
    parser.add_argument("--stable", type=int, default=100, help="connections held throughout")
    parser.add_argument("--churn", type=float, default=50, help="new connections per second")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--gc-interval-s",
        type=float,
        default=600,
        help="the bridge's timed full collection (600: its default; 60 shows one a minute)",
    )
    parser.add_argument("--root", type=Path, default=BENCH.parent, help="the bridge's checkout")
    parser.add_argument("--out", type=Path, help="write the samples here (JSON)")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C: the embedded valkey and the bridge are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    started_at = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    load = os.getloadavg()
    print(f"{started_at}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; root {args.root}")
    secret = secrets.token_urlsafe(32)
    settings = Settings(token_secret=secret)
    token = TokenAuthority(settings).mint("soak", admin=True)
    log_path = Path(tempfile.mkdtemp(prefix="pb-soak-")) / "bridge.log"
    with redis_url_or_embedded(os.environ.get("REDIS_URL")) as redis_url:
        store = EventStore(redis.Redis.from_url(redis_url, decode_responses=True), settings)
        jobs = [f"soak-{uuid.uuid4().hex[:8]}" for _ in range(args.jobs)]
        for job in jobs:
            store.append(ProcessingQueued(job_id=job, task_name="soak", owner="soak"))
        port = free_port()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(args.root), env.get("PYTHONPATH")]))
        env.update(
            PROGRESS_REDIS_URL=redis_url,
            PROGRESS_TOKEN_SECRET=secret,
            PROGRESS_BRIDGE_MAX_CONNECTIONS_PER_USER="20000",
            PROGRESS_BRIDGE_GC_FULL_INTERVAL_S=str(args.gc_interval_s),
        )
        cmd = [sys.executable, "-m", "progress_bridge.cli", "serve", "--bare"]
        cmd += ["--port", str(port), "--log-level", "warning"]
        with open(log_path, "w") as log:
            bridge = subprocess.Popen(cmd, env=env, cwd=args.root, stdout=log, stderr=log)
        atexit.register(_stop, bridge)  # also when interrupted: no bridge left running
        deadline = time.monotonic() + 30
        import httpx

        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).is_success:
                    break
            time.sleep(0.1)
        stop = threading.Event()
        producer = threading.Thread(target=produce, args=(store, jobs, args.rate, stop))
        producer.start()
        ctx = mp.get_context("spawn")
        pipes, procs = [], []
        for w in range(args.workers):
            parent, child = ctx.Pipe()
            share = {
                "port": port,
                "token": token,
                "jobs": jobs,
                "seed": w,
                "stable": args.stable // args.workers,
                "churn": args.churn / args.workers,
            }
            proc = ctx.Process(target=client_main, args=(child, share), daemon=True)
            proc.start()
            pipes.append(parent)
            procs.append(proc)

        def client_stats() -> dict[str, int]:
            total: dict[str, int] = {}
            for pipe in pipes:
                pipe.send("stats")
            for pipe in pipes:
                for key, value in pipe.recv().items():
                    total[key] = total.get(key, 0) + value
            return total

        print(
            f"{'min':>4} {'RSS MB':>8} {'conns':>6} {'deliv/s':>9} {'conn/s':>7} "
            f"{'buf MB':>6} {'4008s':>5} {'full GCs':>8} {'found':>6} {'freed objs':>10} "
            f"{'pause ms':>8} {'load':>5} {'failed':>6}"
        )
        samples: list[dict[str, Any]] = []
        metrics_prev = scrape(port)
        prev = client_stats()
        t_prev = time.monotonic()
        t0 = t_prev
        try:
            for minute in range(1, int(args.minutes) + 1):
                time.sleep(max(0.0, t0 + 60 * minute - time.monotonic()))
                now = time.monotonic()
                cur = client_stats()
                metrics = scrape(port)
                gcd = gc_delta(metrics, metrics_prev)
                sample = {
                    "minute": minute,
                    "rss_mb": rss_mb(bridge.pid),
                    "connections": metrics.get("connections", float("nan")),
                    "deliveries_s": (cur["events"] - prev["events"]) / (now - t_prev),
                    "connects_s": (cur["connected"] - prev["connected"]) / (now - t_prev),
                    "gc": gcd,
                    "buffered_mb": metrics.get("buffered_bytes", 0.0) / 2**20,
                    "closed_slow": metrics.get("closed_slow_total", 0.0),
                    "closed_by_server": cur["closed_by_server"],
                    "failed": cur["failed"] + cur["refused"],
                    "load": os.getloadavg()[0],
                }
                samples.append(sample)
                prev, t_prev, metrics_prev = cur, now, metrics
                print(
                    f"{minute:>4} {sample['rss_mb']:>8.1f} {sample['connections']:>6.0f} "
                    f"{sample['deliveries_s']:>9,.0f} {sample['connects_s']:>7.1f} "
                    f"{sample['buffered_mb']:>6.1f} {sample['closed_slow']:>5.0f} "
                    f"{gcd['collections']:>8.0f} {gcd['found']:>6.0f} "
                    f"{gcd['freed']:>10,.0f} {gcd['last_pause_ms']:>8.1f} "
                    f"{sample['load']:>5.1f} {sample['failed']:>6}",
                    flush=True,
                )
        finally:
            for pipe in pipes:
                pipe.send("stop")
            for pipe in pipes:
                with contextlib.suppress(EOFError):
                    pipe.recv()
            stop.set()
            producer.join()
        time.sleep(max(5.0, args.gc_interval_s + 5))  # every client gone, one more collection
        metrics = scrape(port)
        after = {
            "rss_mb": rss_mb(bridge.pid),
            "connections": metrics.get("connections", float("nan")),
            "gc": gc_delta(metrics, metrics_prev),
            "closes": {
                k.partition('code="')[2].rstrip('"}'): v
                for k, v in metrics.items()
                if k.startswith("connections_closed_total{")
            },
        }
        bridge.send_signal(signal.SIGTERM)
        bridge.wait(30)
        for proc in procs:
            proc.join(10)
    report(samples, after, args, started_at, load)
    if args.out:
        args.out.write_text(json.dumps({"samples": samples, "after": after}, indent=1))
    print(f"bridge log: {log_path}")


def report(
    samples: list[dict[str, Any]],
    after: dict[str, Any],
    args: argparse.Namespace,
    started_at: str,
    load: tuple[float, float, float],
) -> None:
    if not samples:
        return
    warm = [s for s in samples if s["minute"] >= args.warm_min]
    base = warm[0]["rss_mb"] if warm else samples[0]["rss_mb"]
    peak = max(s["rss_mb"] for s in warm or samples)
    growth = (samples[-1]["rss_mb"] - base) / base
    runs = [s["gc"] for s in samples if s["gc"]["collections"]]
    found = [g["found"] / g["collections"] for g in runs]
    freed = [g["freed"] / g["collections"] for g in runs]
    pauses = [g["pause_seconds"] * 1e3 / g["collections"] for g in runs]
    deliveries = sum(s["deliveries_s"] for s in samples) / len(samples)
    connects = sum(s["connects_s"] for s in samples) / len(samples)
    print()
    end_load = os.getloadavg()[0]
    print(f"started {started_at}, load average at start {load[0]:.1f}, at end {end_load:.1f}")
    print(f"mean deliveries/s {deliveries:,.0f}, mean connects/s {connects:.1f}")
    print(
        f"RSS at minute {args.warm_min:g}: {base:.1f} MB; at the end: {samples[-1]['rss_mb']:.1f} "
        f"MB ({growth:+.1%}); peak after minute {args.warm_min:g}: {peak:.1f} MB "
        f"({(peak - base) / base:+.1%})"
    )
    closes = {k: v for k, v in after.get("closes", {}).items() if v}
    print(f"connections closed by the bridge, by code: {closes or 'none'}")
    print(
        f"after every client left: {after['rss_mb']:.1f} MB, {after['connections']:.0f} "
        f"connections; full collections since: found {after['gc']['found']:.0f}, freed "
        f"{after['gc']['freed']:.0f} objects"
    )
    if found:
        print(
            f"full collections: {sum(g['collections'] for g in runs):.0f}; per collection: "
            f"found max {max(found):.0f}, mean {sum(found) / len(found):.1f}; freed objects max "
            f"{max(freed):,.0f}, mean {sum(freed) / len(freed):,.0f}; pause max "
            f"{max(pauses):.1f} ms, mean {sum(pauses) / len(pauses):.1f} ms"
        )
    ok_growth = (peak - base) / base < 0.05
    ok_found = bool(found) and max(found) <= 10
    print(f"{'met ' if ok_growth else 'MISS'} RSS growth after minute {args.warm_min:g} < 5 %")
    print(f"{'met ' if ok_found else 'MISS'} full collections find ~0 objects (<= 10)")
    print(f"{'met ' if deliveries >= 5000 else 'MISS'} >= 5,000 deliveries/s")


if __name__ == "__main__":
    main()
