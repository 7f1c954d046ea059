"""Prometheus metrics of one bridge, in a registry of its own (several bridges may share a
process in tests). Counters are bumped once per feed reader pass (sums over every connection
written to), or per writer pass for a lagging connection; never per delivery in the fan-out
loop, so metrics stay off the fast path.

Under ``serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set) every worker writes its values to
the shared directory and ``/metrics`` from any worker aggregates them: counters and histograms
summed, the gauges summed (or maxed) over live workers; the outbox gauges are sampled by each
worker's sweeper instead of at scrape time.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["BridgeMetrics"]

#: Values go to a directory shared by worker processes (``serve --workers N``).
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

_AGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


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
        self._depths: Callable[[], list[int]] | None = None

    def sample_outboxes(self, depths: Callable[[], list[int]]) -> None:
        """Read outbox depths at scrape time (no cost on the delivery path); under several
        workers, when :meth:`refresh_samples` is called (each sweep)."""
        if MULTIPROCESS:
            self._depths = depths
            return
        self.outbox_depth.set_function(lambda: float(sum(depths())))
        self.outbox_max_depth.set_function(lambda: float(max(depths(), default=0)))

    def refresh_samples(self) -> None:
        """Store the sampled gauges' current values (several workers only)."""
        if self._depths is not None:
            depths = self._depths()
            self.outbox_depth.set(sum(depths))
            self.outbox_max_depth.set(max(depths, default=0))

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
