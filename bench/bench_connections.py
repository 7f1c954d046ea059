"""Connection cost benchmark (not a test): the bridge beside a plain ``websockets`` server.

Run: ``.venv/bin/python bench/bench_connections.py [--conns 10000] [--rounds 2]``
(``--base-root /tmp/pb-base`` adds a ``base`` column: the bridge of another checkout, e.g. the
previous commit, started from that tree with this venv).

Per server, each its own process pinned to core 0 (clients and valkey on the other cores, as in
``bench_bridge.py``), in alternating order for ``--rounds`` rounds:

1. the server starts, ``--warm`` connections are opened and closed (so start-up allocations,
   the Redis pool, and the first subscribe's snapshot read are not counted), its RSS is read;
2. ``--conns`` clients connect at full speed (``--concurrency`` handshakes in flight per
   client worker; each counts once its subscribe is answered): the rate, the server's CPU per
   connect (from ``/proc``), connect p50/p99;
3. the server's RSS with every connection held: (RSS − RSS before) / connections is the
   memory per held connection, and each connection must receive one more event.

Servers: ``bridge`` (``progress-bridge serve --bare``: uvicorn, the bridge's protocol,
FastAPI's router, token check, snapshot answer) and ``websockets`` (``bench/naive_manager.py
broadcast``: a plain ``websockets`` asyncio server that answers the subscribe; the issue's
reference). The ratios at the end are bridge ÷ websockets.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import redis

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import bench_bridge as bb  # noqa: E402

from progress_bridge.bridge.tokens import TokenAuthority  # noqa: E402
from progress_bridge.config import Settings  # noqa: E402
from progress_bridge.events import ProcessingQueued  # noqa: E402
from progress_bridge.store import EventStore  # noqa: E402


def measure(
    kind: str,
    args: argparse.Namespace,
    settings: Settings,
    redis_url: str,
    store: EventStore,
    clients: bb.Clients,
) -> dict[str, Any]:
    """One server: warm up, open ``--conns`` connections, measure; close everything."""
    server_kind = "broadcast" if kind == "websockets" else kind
    server = bb.Server(server_kind, settings, redis_url, bb.SERVER_CPUS if args.pin else None)
    job_id = f"conns-{kind}-{uuid.uuid4().hex[:8]}"
    store.append(ProcessingQueued(job_id=job_id, task_name="bench", owner="bench"))
    protocols: list[str] = []
    if server_kind in ("bridge", "base"):
        token = TokenAuthority(settings).mint("bench", admin=True)
        protocols = ["progress.v1.json", f"token.{token}"]
    out: dict[str, Any] = {}
    try:
        clients.connect(server.url, protocols, job_id, args.warm, 4)
        clients.call("close_all")
        time.sleep(0.5)
        rss0 = server.rss_mb()
        cpu0 = server.cpu_s()
        t0 = time.perf_counter()
        opened = 0
        times: list[float] = []
        while opened < args.conns:
            chunk = min(bb.RAMP_CHUNK, args.conns - opened)
            got, errors, first = clients.connect(
                server.url, protocols, job_id, chunk, args.concurrency
            )
            if first:
                print(f"  {kind}: {errors} connect errors, first: {first[0]}")
            if not got:
                break
            times += got
            opened += len(got)
        took = time.perf_counter() - t0
        cpu = server.cpu_s() - cpu0
        time.sleep(1.0)  # let the server settle (allocator, pending callbacks)
        rss1 = server.rss_mb()
        clients.call("reset", "count")
        started = time.time()
        store.append(bb.zone(job_id, 1))
        got_event, _ = bb.wait_deliveries(clients, opened, started)
        out = {
            "opened": opened,
            "rate": opened / took,
            "cpu_ms": cpu * 1e3 / max(1, opened),
            "p50": bb.pct(times, 0.5),
            "p99": bb.pct(times, 0.99),
            "rss0": rss0,
            "rss1": rss1,
            "kb_per_conn": (rss1 - rss0) * 1024 / max(1, opened),
            "received": got_event,
        }
        print(
            f"  {kind}: {opened} connections in {took:.1f} s ({out['rate']:,.0f}/s, "
            f"{out['cpu_ms']:.3f} ms server CPU each, p50 {out['p50'] * 1e3:.1f} / p99 "
            f"{out['p99'] * 1e3:.1f} ms); RSS {rss0:.0f} -> {rss1:.0f} MB = "
            f"{out['kb_per_conn']:.1f} KB each; {got_event} received the check event"
        )
    finally:
        clients.call("close_all")
        server.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="per-connection memory and connect rate")
    parser.add_argument("--conns", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--warm", type=int, default=200)
    parser.add_argument("--workers", type=int, default=3, help="client processes")
    parser.add_argument("--concurrency", type=int, default=32, help="per worker")
    parser.add_argument("--base-root", type=Path, help="also run the bridge of this checkout")
    parser.add_argument("--only", default="bridge,websockets")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    args = parser.parse_args()
    limit = bb.raise_nofile()
    if args.pin and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)) - bb.SERVER_CPUS)
    else:
        args.pin = False
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    print(f"{started}; machine: {bb.machine()}; open files {limit}; pinned: {args.pin}")
    kinds = args.only.split(",")
    if args.base_root:
        bb.BASE_ROOT = args.base_root.resolve()
        kinds.append("base")
    settings = Settings(token_secret=secrets.token_urlsafe(32))
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    with bb.redis_server() as redis_url:
        store = EventStore(redis.Redis.from_url(redis_url, decode_responses=True), settings)
        clients = bb.Clients(args.workers)
        try:
            for rnd in range(args.rounds):
                for kind in kinds if rnd % 2 == 0 else kinds[::-1]:
                    print(f"== round {rnd + 1}: {kind}")
                    results[kind].append(measure(kind, args, settings, redis_url, store, clients))
        finally:
            clients.stop()
    print()
    print(f"{'':28}" + "".join(f"{k:>16}" for k in results))

    def best(kind: str, key: str, high: bool) -> float:
        values = [r[key] for r in results[kind] if r]
        if not values:
            return float("nan")
        return max(values) if high else min(values)

    rows = [
        ("connect rate (/s, best)", "rate", True, "{:,.0f}"),
        ("server CPU per connect (ms)", "cpu_ms", False, "{:.3f}"),
        ("connect p99 (ms)", "p99", False, "{:.1f}"),
        ("KB per held connection", "kb_per_conn", False, "{:.1f}"),
    ]
    for label, key, high, form in rows:
        line = f"{label:28}"
        for kind in results:
            value = best(kind, key, high)
            line += f"{form.format(value * (1e3 if key == 'p99' else 1)):>16}"
        print(line)
    if "websockets" in results:
        for kind in results:
            if kind == "websockets":
                continue
            for rnd, (a, b) in enumerate(zip(results[kind], results["websockets"], strict=False)):
                print(
                    f"round {rnd + 1}: {kind} ÷ websockets: rate {a['rate'] / b['rate']:.2f}×, "
                    f"CPU per connect {a['cpu_ms'] / b['cpu_ms']:.2f}×, memory per connection "
                    f"{a['kb_per_conn'] / b['kb_per_conn']:.2f}×"
                )
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
