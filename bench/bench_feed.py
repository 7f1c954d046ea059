"""How many events per second one bridge's feed reader can ingest: the ceiling of design (a).

Design (a) — every bridge tails every feed shard — costs each bridge one parse per event
whatever its subscribers. This script fills the feed shards with N events (pipelined appends
through the real store), then times, side by side on the same data:

- baseline: a bare ``XREAD`` loop over all shards (redis-py, no parsing), and
- the bridge: :class:`progress_bridge.bridge.hub.Hub`'s reader loop
  (:func:`progress_bridge.bridge.feed_loop.run_reader`: ``XREAD`` + one ``FeedEntry`` per event +
  routing) with no subscriber, until it has consumed all N.

Run: ``.venv/bin/python bench/bench_feed.py [--events 100000]``. Starts its own valkey-server.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time

import redis
import redis.asyncio as aioredis

from progress_bridge.bridge.feed_loop import run_reader
from progress_bridge.bridge.hub import Hub
from progress_bridge.bridge.metrics import BridgeMetrics
from progress_bridge.config import Settings
from progress_bridge.events import ProcessingProgress, ZoneCompleted
from progress_bridge.store import EventStore
from progress_bridge.store.connect import bridge_store, feed_reader
from progress_bridge.store.embedded import EmbeddedValkey
from progress_bridge.store.feed import FeedReader
from progress_bridge.store.keys import KeySpace


def fill(url: str, settings: Settings, n: int) -> float:
    """Append n events over 200 jobs; return appends/s."""
    store = EventStore(redis.Redis.from_url(url, decode_responses=True), settings)
    events = [
        ZoneCompleted(
            job_id=f"job-{i % 200}",
            zone_id=f"z{i}",
            zone_index=i,
            processing_tool="pdfplumber.text",
            confidence=0.9,
            duration_ms=12,
        )
        if i % 2
        else ProcessingProgress(job_id=f"job-{i % 200}", percent=50, current_operation="reading")
        for i in range(n)
    ]
    start = time.perf_counter()
    for chunk in range(0, n, 1000):
        store.append_many(events[chunk : chunk + 1000])
    return n / (time.perf_counter() - start)


async def bare_xread(url: str, settings: Settings, n: int) -> float:
    client = aioredis.Redis.from_url(url, decode_responses=True)
    keys = KeySpace(settings.key_prefix, settings.feed_shards)
    positions: dict[str, str] = {feed: "0-0" for feed in keys.all_feeds()}
    seen = 0
    start = time.perf_counter()
    while seen < n:
        reply = await client.xread(positions, count=settings.bridge_read_count)  # type: ignore[arg-type]
        for feed, rows in reply:
            positions[feed] = rows[-1][0]
            seen += len(rows)
    elapsed = time.perf_counter() - start
    await client.aclose()
    return seen / elapsed


async def hub_reader(url: str, settings: Settings, n: int) -> float:
    reader = feed_reader(url, settings)
    assert isinstance(reader, FeedReader), "design (a) on one server"
    reader.positions = {feed: "0-0" for feed in reader.keys.all_feeds()}  # read from the start
    store = bridge_store(url, settings)
    metrics = BridgeMetrics()
    hub = Hub(settings, reader, store, metrics)
    start = time.perf_counter()
    task = asyncio.create_task(run_reader(hub))
    # Polling the counter keeps the reader untouched (no hook on its hot path).
    while metrics.feed_entries._value.get() < n:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - start
    task.cancel()
    await asyncio.wait([task], timeout=2)
    await reader.client.aclose()
    await store.client.aclose()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with EmbeddedValkey() as server:
        # A short block: cancelling the reader waits for its XREAD to return.
        settings = Settings(
            redis_url=server.url, feed_maxlen=max(100_000, args.events), bridge_read_block_ms=100
        )
        appends = fill(server.url, settings, args.events)
        bare = asyncio.run(bare_xread(server.url, settings, args.events))
        hub = asyncio.run(hub_reader(server.url, settings, args.events))
    print(
        f"machine: {platform.machine()}, {__import__('os').cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(f"events: {args.events:,} over {settings.feed_shards} feed shards")
    print(f"store appends (pipelined, 1,000 per round trip): {appends:,.0f} events/s")
    print(f"baseline bare XREAD:                 {bare:,.0f} events/s")
    print(
        f"bridge feed reader (parse + route):  {hub:,.0f} events/s "
        f"({hub / bare:.2f}x the bare read)"
    )


if __name__ == "__main__":
    main()
