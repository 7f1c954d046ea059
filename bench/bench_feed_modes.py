"""The two feed designs side by side: every bridge reads every event (a), or only its own (b).

Run: ``.venv/bin/python bench/bench_feed_modes.py [--bridges 4] [--jobs 1000] [--rate 2000]
[--seconds 10] [--rounds 2]``.

``--bridges`` bridge processes (``progress-bridge serve --bare``) share one Redis; ``--jobs``
jobs are written round-robin at ``--rate`` events/s for ``--seconds`` by a writer process
(``append_many``, one batch every 10 ms), and each bridge's clients watch their own share of the
jobs (bridge *i* serves jobs *i*, *i + n*, …: a quarter each with 4 bridges), each job watched
by exactly one client. Per design, alternating in ``--rounds`` rounds (fresh key prefix each):

- **Redis egress to the bridges** (bytes/s): the ``tot-net-out`` counters of every connection
  but the writer's and this script's, from ``CLIENT LIST`` before and after;
- **bridge CPU per event** written (µs, the bridges' user + system time from ``/proc``);
- deliveries counted at the clients (each event must arrive once: a check, not a figure).

(a) is ``feed_mode=stream``: each bridge ``XREAD``s every feed shard, so Redis sends every event
to every bridge (``events × bridges``) and each bridge parses all of them. (b) is
``feed_mode=notify``: the append publishes on the job's sharded pub/sub channel and only the
bridges subscribed to it receive it (``events × watching bridges``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import redis
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from progress_bridge.bridge.tokens import TokenAuthority  # noqa: E402
from progress_bridge.config import Settings  # noqa: E402
from progress_bridge.events import ProcessingQueued, ZoneCompleted  # noqa: E402
from progress_bridge.store import EventStore  # noqa: E402
from progress_bridge.store.embedded import free_port, redis_url_or_embedded  # noqa: E402

SECRET = secrets.token_hex(32)
#: Subscriptions per client connection (the bridge allows 200).
PER_CONNECTION = 150
WRITER_NAME = "bench-writer"
MONITOR_NAME = "bench-monitor"


def settings_for(url: str, prefix: str, mode: Any) -> Settings:
    return Settings(redis_url=url, key_prefix=prefix, feed_mode=mode, token_secret=SECRET)


class Bridge:
    def __init__(self, url: str, prefix: str, mode: str) -> None:
        self.port = free_port()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.update(
            PROGRESS_REDIS_URL=url,
            PROGRESS_KEY_PREFIX=prefix,
            PROGRESS_FEED_MODE=mode,
            PROGRESS_TOKEN_SECRET=SECRET,
            PROGRESS_BRIDGE_HEARTBEAT_S="600",
            # Subscribing hundreds of jobs at once is this bench's set-up, not what it measures.
            PROGRESS_BRIDGE_RATE_PER_S="100000",
            PROGRESS_BRIDGE_RATE_BURST="100000",
        )
        cmd = [sys.executable, "-m", "progress_bridge.cli", "serve", "--bare"]
        cmd += ["--port", str(self.port), "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).is_success:
                    return
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("a bridge did not become ready")
            time.sleep(0.05)

    def cpu_s(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def writer_main(
    url: str, prefix: str, mode: str, jobs: list[str], rate: int, seconds: float
) -> None:
    """Append ``rate`` zone events/s round-robin over ``jobs`` for ``seconds`` (own process)."""
    client = redis.Redis.from_url(url, decode_responses=True, client_name=WRITER_NAME)
    store = EventStore(client, settings_for(url, prefix, mode))
    per_tick = max(1, rate // 100)
    start = time.monotonic()
    n = 0
    while (now := time.monotonic()) - start < seconds:
        due = int((now - start) * rate) - n
        if due > 0:
            batch = [
                ZoneCompleted(
                    job_id=jobs[(n + i) % len(jobs)],
                    zone_id=f"z{n + i}",
                    zone_index=n + i,
                    processing_tool="bench",
                )
                for i in range(min(due, per_tick * 5))
            ]
            store.append_many(batch)
            n += len(batch)
        time.sleep(0.01)
    client.close()


class Watcher:
    """WebSocket clients of one bridge, each watching up to PER_CONNECTION jobs by id."""

    def __init__(self) -> None:
        self.events = 0
        self.seen: set[tuple[str, str]] = set()
        self.duplicates = 0

    async def run(self, url: str, token: str, jobs: list[str], ready: asyncio.Event) -> None:
        protocols = ["progress.v1.json", f"token.{token}"]
        async with websockets.connect(
            url,
            max_size=None,
            compression=None,
            subprotocols=protocols,  # type: ignore[arg-type]
        ) as ws:
            for job in jobs:
                await ws.send(json.dumps({"op": "subscribe", "job_id": job}))
            answered = 0
            while True:
                frame = json.loads(await ws.recv())
                op = frame.get("op")
                if op == "subscribed":
                    answered += 1
                    if answered == len(jobs):
                        ready.set()
                elif op == "event":
                    self._count([frame["event"]])
                elif op == "batch":
                    self._count(frame["events"])
                elif op == "ping":
                    await ws.send('{"op":"pong"}')

    def _count(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            if event["type"] != "zone_completed":
                continue
            key = (event["job_id"], event["id"])
            if key in self.seen:
                self.duplicates += 1
            self.seen.add(key)
            self.events += 1


def egress(monitor: redis.Redis) -> dict[str, int]:
    """tot-net-out per connection (by id), except the writer's and this monitor's."""
    out: dict[str, int] = {}
    for client in monitor.client_list():
        if client.get("name") in (WRITER_NAME, MONITOR_NAME):
            continue
        out[client["id"]] = int(client.get("tot-net-out", 0))
    return out


async def run_design(url: str, mode: str, args: argparse.Namespace, rnd: int) -> dict[str, float]:
    prefix = f"bfm{rnd}{mode[0]}{uuid.uuid4().hex[:4]}"
    settings = settings_for(url, prefix, mode)
    monitor = redis.Redis.from_url(url, decode_responses=True, client_name=MONITOR_NAME)
    setup = EventStore(redis.Redis.from_url(url, decode_responses=True), settings)
    jobs = [f"job-{uuid.uuid4().hex[:12]}" for _ in range(args.jobs)]
    setup.append_many(
        [ProcessingQueued(job_id=job, task_name="bench", owner="bench") for job in jobs]
    )
    bridges = [Bridge(url, prefix, mode) for _ in range(args.bridges)]
    token = TokenAuthority(settings).mint("bench")
    watchers: list[Watcher] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for i, bridge in enumerate(bridges):
            mine = jobs[i :: args.bridges]
            for k in range(0, len(mine), PER_CONNECTION):
                watcher, ready = Watcher(), asyncio.Event()
                url_ws = f"ws://127.0.0.1:{bridge.port}/ws"
                part = mine[k : k + PER_CONNECTION]
                tasks.append(asyncio.create_task(watcher.run(url_ws, token, part, ready)))
                await asyncio.wait_for(ready.wait(), 60)
                watchers.append(watcher)
        await asyncio.sleep(1.0)
        before, cpu0 = egress(monitor), sum(b.cpu_s() for b in bridges)
        started = time.monotonic()
        writer = mp.get_context("spawn").Process(
            target=writer_main, args=(url, prefix, mode, jobs, args.rate, args.seconds)
        )
        writer.start()
        await asyncio.to_thread(writer.join)
        written = sum(
            int(setup.client.xlen(setup.keys.stream(job))) - 1 for job in jobs
        )  # each stream: its queued event and the zones
        deadline = time.monotonic() + 60
        while sum(w.events for w in watchers) < written and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        after, cpu1 = egress(monitor), sum(b.cpu_s() for b in bridges)
        out_bytes = sum(after[c] - before[c] for c in after if c in before)
        delivered = sum(w.events for w in watchers)
        return {
            "written": written,
            "delivered": delivered,
            "duplicates": sum(w.duplicates for w in watchers),
            "egress_Bps": out_bytes / args.seconds,
            "egress_per_event": out_bytes / max(1, written),
            "cpu_us_per_event": (cpu1 - cpu0) / max(1, written) * 1e6,
            "elapsed": elapsed,
        }
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for bridge in bridges:
            bridge.stop()
        monitor.close()
        setup.client.close()


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load {load[0]:.2f}"
    )


async def main_async(args: argparse.Namespace) -> None:
    results: dict[str, list[dict[str, float]]] = {"stream": [], "notify": []}
    with redis_url_or_embedded(os.environ.get("REDIS_URL")) as url:
        for rnd in range(args.rounds):
            order = ("stream", "notify") if rnd % 2 == 0 else ("notify", "stream")
            for mode in order:
                result = await run_design(url, mode, args, rnd)
                results[mode].append(result)
                shown = json.dumps({k: round(v, 2) for k, v in result.items()})
                print(f"round {rnd + 1} {mode}: {shown}", flush=True)
    print()
    print(
        f"{args.bridges} bridges, {args.jobs} jobs ({args.jobs // args.bridges} per bridge), "
        f"{args.rate} events/s for {args.seconds:g} s; {machine()}"
    )
    print(f"{'':28} {'(a) stream':>14} {'(b) notify':>14} {'b/a':>8}")
    for key, label in (
        ("egress_Bps", "Redis egress to bridges B/s"),
        ("egress_per_event", "  bytes per event written"),
        ("cpu_us_per_event", "bridge CPU µs per event"),
        ("delivered", "events delivered (median)"),
        ("duplicates", "duplicates"),
    ):
        a = statistics.median(r[key] for r in results["stream"])
        b = statistics.median(r[key] for r in results["notify"])
        ratio = f"{b / a:.2f}" if a else "-"
        print(f"{label:28} {a:14,.1f} {b:14,.1f} {ratio:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bridges", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=2000, help="events/s written")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per design")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
