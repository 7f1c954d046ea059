"""The hub's feed reader loop: one per process, reading every event (or every notified one) and
handing it to routing.

It keeps the hub's promises about the feed: the reader is primed (has its starting positions)
before any subscribe reads history (:attr:`~progress_bridge.bridge.hub.Hub.primed`), a Redis
hiccup is survived by resuming with a growing delay, and the snapshot cache is dropped whenever
entries may have been appended that nothing routes for a while. :attr:`Hub.ready
<progress_bridge.bridge.hub.Hub.ready>` reads the marks it leaves (``reader_ok_at``,
``backlogged``).

Why apart from :mod:`.hub`: how the feed is read and recovered is one concern, who gets an
entry is another; the loop only calls :meth:`~progress_bridge.bridge.hub.Hub.route`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from ..exceptions import StreamUnavailable
from ..store.feed import FeedReader
from ..store.feed_cluster import ClusterFeedReader
from ..store.notify import JobNotifications
from .caches import SnapshotCache
from .core import FeedEntry
from .metrics import BridgeMetrics

__all__ = ["FeedRouter", "run_reader"]

log = logging.getLogger("progress_bridge.bridge")


class FeedRouter(Protocol):
    """What the loop needs of :class:`~progress_bridge.bridge.hub.Hub`."""

    reader: FeedReader | ClusterFeedReader | JobNotifications
    primed: asyncio.Event
    reader_ok_at: float
    backlogged: bool
    metrics: BridgeMetrics
    snapshots: SnapshotCache

    async def learn_meta(self, entries: list[FeedEntry]) -> None: ...

    def route(self, entries: list[FeedEntry], now: float | None = None) -> None: ...


async def run_reader(hub: FeedRouter) -> None:
    """Read the feed and route it until cancelled; survive Redis hiccups by resuming."""
    reader = hub.reader
    delay = 0.05
    while True:
        try:
            if not hub.primed.is_set():
                await reader.prime()
                hub.primed.set()
            stored = await reader.read()
            hub.reader_ok_at = time.monotonic()
            hub.backlogged = reader.backlogged
            delay = 0.05
            batch: list[FeedEntry] = []
            for entry in stored:
                try:
                    batch.append(FeedEntry.from_stored(entry))
                except ValueError as exc:
                    log.warning("skipping malformed feed entry %s: %r", entry.id, exc)
            if reader.rows:
                hub.metrics.feed_entries.inc(reader.rows)
            if batch:
                await hub.learn_meta(batch)
                hub.route(batch)
        except asyncio.CancelledError:
            raise
        except StreamUnavailable as exc:
            hub.snapshots.clear()  # entries may be appended that no one routes for a while
            hub.metrics.reader_errors.inc()
            log.warning("feed reader: %s; retrying in %.2fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        except Exception:
            hub.snapshots.clear()
            hub.metrics.reader_errors.inc()
            log.exception("feed reader failed; retrying")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
