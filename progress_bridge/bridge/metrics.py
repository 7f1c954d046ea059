"""Prometheus metrics of one bridge, in a registry of its own (several bridges may share a
process in tests). Counters are bumped once per feed reader pass (sums over every connection
written to), or per writer pass for a lagging connection; never per delivery in the fan-out
loop, so metrics stay off the fast path.

Under ``serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set) every worker writes its values to
the shared directory and ``/metrics`` from any worker aggregates them: counters and histograms
summed, the gauges summed (or maxed) over live workers; the gauges read at scrape time in one
process (connections, outboxes, buffered bytes, full collections) are stored by each worker's
sweeper instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["GC_STATS", "BridgeMetrics", "GcStats"]

#: Values go to a directory shared by worker processes (``serve --workers N``).
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

_AGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class GcStats:
    """What the process's timed full garbage collections found (``gcpolicy`` records them;
    every bridge's metrics show them)."""

    __slots__ = ("collections", "found", "freed", "last_pause_s", "pause_s")

    def __init__(self) -> None:
        self.collections = 0
        #: Objects the collections reported unreachable (``gc.collect()``'s count).
        self.found = 0
        #: Tracked objects the collections freed: also counts cycles that a finalizer broke
        #: (a suspended generator's), which ``gc.collect()`` does not report.
        self.freed = 0
        self.pause_s = 0.0
        self.last_pause_s = 0.0

    def record(self, found: int, freed: int, pause_s: float) -> None:
        self.collections += 1
        self.found += found
        self.freed += max(0, freed)
        self.pause_s += pause_s
        self.last_pause_s = pause_s


#: The process's full-collection statistics.
GC_STATS = GcStats()


class BridgeMetrics:
    """Every metric the bridge exports (names start with ``progress_bridge_``)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        p = "progress_bridge_"
        self.connections = Gauge(
            p + "connections",
            "Open WebSocket connections.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.connections_opened = Counter(
            p + "connections_opened", "Accepted WebSocket connections.", registry=r
        )
        self.closed = Counter(
            p + "connections_closed",
            "Connections closed by the server, by code.",
            ["code"],
            registry=r,
        )
        self.closed_slow = Counter(
            p + "closed_slow", "Connections closed as slow consumers (4008).", registry=r
        )
        self.subscriptions = Gauge(
            p + "subscriptions",
            "Live subscriptions, by kind.",
            ["kind"],
            registry=r,
            multiprocess_mode="livesum",
        )
        # Bound once: ``labels()`` costs a lookup and a lock on every (un)subscribe.
        self.job_subscriptions = self.subscriptions.labels("job")
        self.room_subscriptions = self.subscriptions.labels("room")
        self.events_relayed = Counter(
            p + "events_relayed", "Events written to sockets (deliveries).", registry=r
        )
        self.frames_sent = Counter(p + "frames_sent", "Frames written to sockets.", registry=r)
        self.feed_entries = Counter(
            p + "feed_entries", "Entries read from the live feed.", registry=r
        )
        self.replayed = Counter(p + "replayed_events", "History events replayed.", registry=r)
        self.snapshot_reads = Counter(
            p + "snapshot_reads",
            "Snapshots given to first subscribes, by source (redis, or the hub's cache).",
            ["source"],
            registry=r,
        )
        self.coalesced = Counter(
            p + "coalesced", "Progress updates replaced in a lagging outbox.", registry=r
        )
        self.errors = Counter(
            p + "client_errors", "Error frames sent, by code.", ["code"], registry=r
        )
        self.reader_errors = Counter(
            p + "reader_errors", "Feed reader failures (Redis unreachable...).", registry=r
        )
        self.event_age = Histogram(
            p + "event_age_seconds",
            "Event age when written (now - event ts): the oldest event written by each feed "
            "reader pass (all connections), or by each writer pass of a lagging connection.",
            buckets=_AGE_BUCKETS,
            registry=r,
        )
        self.ack_lag = Histogram(
            p + "ack_lag_seconds",
            "Acknowledged position lag: last sent id time minus acked id time, per ack.",
            buckets=_AGE_BUCKETS,
            registry=r,
        )
        self.outbox_depth = Gauge(
            p + "outbox_depth",
            "Frames queued in all outboxes (sampled at scrape).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.outbox_max_depth = Gauge(
            p + "outbox_max_depth",
            "Largest single outbox (sampled at scrape).",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.buffered_bytes = Gauge(
            p + "buffered_bytes",
            "Bytes held for slow sockets in this process: outboxes and transport write buffers "
            "(sampled at scrape).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._gc_full: list[tuple[Gauge, str]] = []
        modes: tuple[tuple[str, str, str, Literal["livesum", "livemax"]], ...] = (
            ("collections", "Timed full garbage collections run.", "collections", "livesum"),
            ("found", "Objects they found unreachable, in all.", "found", "livesum"),
            ("freed", "Tracked objects they freed, in all.", "freed", "livesum"),
            ("pause_seconds", "Time they stopped the process, in all.", "pause_s", "livesum"),
            (
                "last_pause_seconds",
                "Time the last one stopped the process.",
                "last_pause_s",
                "livemax",
            ),
        )
        for name, doc, read, mode in modes:
            gauge = Gauge(p + "gc_full_" + name, doc, registry=r, multiprocess_mode=mode)
            if MULTIPROCESS:
                self._gc_full.append((gauge, read))
            else:
                gauge.set_function(
                    lambda attr=read: float(getattr(GC_STATS, attr))  # type: ignore[misc]
                )
        self._count: Callable[[], int] | None = None
        self._depths: Callable[[], list[int]] | None = None
        self._buffered: Callable[[], int] | None = None

    def sample_connections(self, count: Callable[[], int]) -> None:
        """Read the connections gauge at scrape time (no lock taken per connect and
        disconnect); under several workers, :meth:`connections_changed` stores it."""
        if MULTIPROCESS:
            self._count = count
            return
        self.connections.set_function(lambda: float(count()))

    def connections_changed(self) -> None:
        """A connection came or left. Under several workers the count is stored now, so a
        scrape answered by another worker sees it; in one process it is read at scrape."""
        if self._count is not None:
            self.connections.set(self._count())

    def sample_outboxes(
        self, depths: Callable[[], list[int]], buffered: Callable[[], int] | None = None
    ) -> None:
        """Read outbox depths (and buffered bytes) at scrape time (no cost on the delivery
        path); under several workers, when :meth:`refresh_samples` is called (each sweep)."""
        if MULTIPROCESS:
            self._depths, self._buffered = depths, buffered
            return
        self.outbox_depth.set_function(lambda: float(sum(depths())))
        self.outbox_max_depth.set_function(lambda: float(max(depths(), default=0)))
        if buffered is not None:
            self.buffered_bytes.set_function(lambda: float(buffered()))

    def refresh_samples(self) -> None:
        """Store the sampled gauges' current values (several workers only)."""
        if self._count is not None:
            self.connections.set(self._count())
        if self._depths is not None:
            depths = self._depths()
            self.outbox_depth.set(sum(depths))
            self.outbox_max_depth.set(max(depths, default=0))
        if self._buffered is not None:
            self.buffered_bytes.set(self._buffered())
        for gauge, attr in self._gc_full:
            gauge.set(float(getattr(GC_STATS, attr)))

    def written(self, frames: int, events: int, oldest_ts: float | None) -> None:
        """Count one pass's writes, summed over the connections it wrote to: frames, events,
        and the age of the oldest event (``oldest_ts``, its wall-clock time; None or 0: none)."""
        if frames:
            self.frames_sent.inc(frames)
        if events:
            self.events_relayed.inc(events)
        if oldest_ts:
            self.event_age.observe(max(0.0, time.time() - oldest_ts))

    def render(self) -> bytes:
        if MULTIPROCESS:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            self.refresh_samples()
            aggregated: bytes = generate_latest(registry)
            return aggregated
        data: bytes = generate_latest(self.registry)
        return data
