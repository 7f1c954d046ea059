"""Prometheus metrics of one bridge, in a registry of its own (several bridges may share a
process in tests). Counters are bumped once per feed reader pass (sums over every connection
written to), or per writer pass for a lagging connection; never per delivery in the fan-out
loop, so metrics stay off the fast path."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["GC_STATS", "BridgeMetrics", "GcStats"]

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
        self.connections = Gauge(p + "connections", "Open WebSocket connections.", registry=r)
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
            p + "subscriptions", "Live subscriptions, by kind.", ["kind"], registry=r
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
            p + "outbox_depth", "Frames queued in all outboxes (sampled at scrape).", registry=r
        )
        self.outbox_max_depth = Gauge(
            p + "outbox_max_depth", "Largest single outbox (sampled at scrape).", registry=r
        )
        self.buffered_bytes = Gauge(
            p + "buffered_bytes",
            "Bytes held for slow sockets in this process: outboxes and transport write buffers "
            "(sampled at scrape).",
            registry=r,
        )

        gc_stat = GC_STATS
        for name, doc, read in (
            ("collections", "Timed full garbage collections run.", "collections"),
            ("found", "Objects they found unreachable, in all.", "found"),
            ("freed", "Tracked objects they freed, in all.", "freed"),
            ("pause_seconds", "Time they stopped the process, in all.", "pause_s"),
            ("last_pause_seconds", "Time the last one stopped the process.", "last_pause_s"),
        ):
            Gauge(p + "gc_full_" + name, doc, registry=r).set_function(
                lambda attr=read: float(getattr(gc_stat, attr))  # type: ignore[misc]
            )

    def sample_outboxes(
        self, depths: Callable[[], list[int]], buffered: Callable[[], int] | None = None
    ) -> None:
        """Read outbox depths (and buffered bytes) at scrape time (no cost on the delivery
        path)."""
        self.outbox_depth.set_function(lambda: float(sum(depths())))
        self.outbox_max_depth.set_function(lambda: float(max(depths(), default=0)))
        if buffered is not None:
            self.buffered_bytes.set_function(lambda: float(buffered()))

    def render(self) -> bytes:
        data: bytes = generate_latest(self.registry)
        return data
