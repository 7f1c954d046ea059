"""What one live delivery costs, split in two (not a test): the bridge's own code and the
kernel's write, side by side.

Run: ``.venv/bin/python bench/bench_fanout_floor.py [--sockets 1000] [--rounds 50]``.

1. **route**: ``Hub.route`` of one event to ``--sockets`` subscribed connections in process,
   with a transport whose ``write`` does nothing: the bridge's Python per delivery (routing,
   the session's duplicate check, the direct writer's checks, the shared frame).
2. **write floor**: the same number of loopback TCP sockets, drained by 3 receiver processes on
   the other cores, and one ``socket.send`` of a 300-byte frame to each, 10 rounds a second
   as in the latency phase of ``bench_bridge.py``: the kernel's share, which no server code
   avoids. This process is pinned to core 0 and the receivers to the others (as there).

At 10 events/s every delivery is one write, so (1) + (2) times the subscriber count is the
span of one event's fan-out, and the p99 latency of ``bench_bridge.py`` follows it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import resource
import selectors
import socket
import sys
import time
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.protocol import State

from progress_bridge.access import Principal
from progress_bridge.bridge.connection import Connection
from progress_bridge.bridge.core import FeedEntry, Session, SubscribeJob
from progress_bridge.bridge.direct import DirectWriter
from progress_bridge.bridge.hub import Hub
from progress_bridge.bridge.metrics import BridgeMetrics
from progress_bridge.config import Settings

JOB = "job-floor"
RECEIVERS = 3


class _NoopTransport:
    def write(self, data: bytes) -> None:
        return None

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str) -> None:
        return None


class _Proto:
    """Just what :class:`DirectWriter` reads of uvicorn's protocol object."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.transport = _NoopTransport()
        self.conn = type("Conn", (), {"state": State.OPEN})()


def _entry(n: int) -> FeedEntry:
    payload = {
        "type": "zone_completed",
        "job_id": JOB,
        "ts": time.time(),
        "zone_id": f"z{n}",
        "zone_index": n,
        "processing_tool": "bench",
        "summary": "x" * 200,
    }
    return FeedEntry(JOB, f"{1000 + n}-0", "e1", json.dumps(payload))


async def route_cost(sockets: int, rounds: int) -> float:
    hub = Hub(Settings(), cast(Any, None), cast(Any, None), BridgeMetrics())  # no Redis used

    for _ in range(sockets):
        session = Session(Principal("bench"), now=time.monotonic())
        conn = Connection(session, direct=DirectWriter(_Proto()))
        hub.add(conn)
        session.hold()
        hub.watch_job(conn, JOB)
        session.finish_job(SubscribeJob(JOB), 0.0)
    hub.flush(list(hub.conns.values()))  # hello and subscribed frames out
    started = time.process_time()
    for n in range(rounds):
        hub.route([_entry(n)])
    took = time.process_time() - started
    return took / (rounds * sockets)


def _receiver(port: int, count: int, seconds: float) -> None:
    os.sched_setaffinity(0, set(range(1, os.cpu_count() or 2)) or {0})
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _ in selector.select(0.5):
            with contextlib.suppress(BlockingIOError):
                key.fileobj.recv(65_536)  # type: ignore[union-attr]


def write_floor(sockets: int, rounds: int) -> float:
    sockets -= sockets % RECEIVERS
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    ctx = mp.get_context("fork")
    seconds = rounds / 10 + 30
    procs = [
        ctx.Process(target=_receiver, args=(port, sockets // RECEIVERS, seconds), daemon=True)
        for _ in range(RECEIVERS)
    ]
    for proc in procs:
        proc.start()
    conns: list[socket.socket] = []
    while len(conns) < sockets:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns.append(conn)
    frame = b"\x81\x7e\x01\x2c" + b"x" * 300
    started = time.process_time()
    next_at = time.perf_counter()
    for _ in range(rounds):
        for conn in conns:
            conn.send(frame)
        next_at += 0.1
        time.sleep(max(0.0, next_at - time.perf_counter()))
    took = time.process_time() - started
    for proc in procs:
        proc.terminate()
    for conn in conns:
        conn.close()
    return took / (rounds * sockets)


def main() -> None:
    parser = argparse.ArgumentParser(description="a live delivery: bridge code vs kernel write")
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.sockets)), hard))
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {0})
    route = asyncio.run(route_cost(args.sockets, args.rounds))
    floor = write_floor(args.sockets, args.rounds)
    print(
        f"load average {os.getloadavg()[0]:.1f}; {args.sockets} subscribers, {args.rounds} events"
    )
    print(f"route (bridge code, no-op transport): {route * 1e6:6.2f} µs per delivery")
    print(f"write floor (socket.send, loopback):  {floor * 1e6:6.2f} µs per delivery")
    print(
        f"route / write floor: {route / floor:.2f}; fan-out span of one event at this floor: "
        f"{(route + floor) * args.sockets * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
