"""The bridge process's garbage-collector policy: no full collection in the middle of a burst.

Why: CPython 3.11 runs a full (generation 2) collection whenever the objects promoted since the
last one reach a quarter of the long-lived heap. So while connections pour in, every ~25 % of
growth stops the event loop to walk every live connection's ~190 container objects — on the
2-core dev VM about 1 µs each: 100-170 ms at 1,000 connections, over a second at 10,000
(measured; ``docs/benchmarks.md``). Those walks find nothing: a bridge connection that closes
frees its objects by reference counting (measured: 0 cyclic objects left behind by 500 closed
connections), and a walk of live connections cannot free them.

So the server process (:func:`progress_bridge.server.run`) keeps CPython's young collections,
which catch short-lived cycles such as an exception and its traceback; moves what start-up
allocated (modules, the app, schemas) out of the collector's reach with :func:`gc.freeze`;
and replaces the growth-triggered full collection by one on a clock
(``bridge_gc_full_interval_s``), timed and logged, as a safety net for cycles some other path
might leave. An app that mounts the router in its own server keeps its own policy.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

from .metrics import GC_STATS

__all__ = ["FULL_NEVER", "full_collection", "install"]

log = logging.getLogger("progress_bridge.gc")

#: Generation-2 threshold meaning "never on growth": young collections needed before a full one.
FULL_NEVER = 1_000_000_000


def full_collection() -> tuple[int, float]:
    """One full collection now; the unreachable objects it found and how long it took (s).

    Also recorded in :data:`~progress_bridge.bridge.metrics.GC_STATS` (``/metrics``), with the
    tracked objects it freed: ``gc.collect()`` does not count a cycle that a finalizer broke (a
    suspended generator whose frame holds its owner), though it frees it. Counting the tracked
    objects walks the heap twice more (a few ms per 100,000 objects), once per interval.
    """
    tracked = len(gc.get_objects())
    started = time.perf_counter()
    found = gc.collect()
    took = time.perf_counter() - started
    left = len(gc.get_objects())
    GC_STATS.record(found, tracked - left, took)
    log.info(
        "full garbage collection",
        extra={
            "found": found,
            "freed": tracked - left,
            "took_ms": round(took * 1e3, 1),
            "tracked": left,
        },
    )
    return found, took


def install(full_interval_s: float, stop: threading.Event | None = None) -> threading.Thread | None:
    """Apply the policy to this process; the thread running the timed full collections.

    ``full_interval_s`` 0 means no timed full collection at all. ``stop``, when set, ends the
    thread (tests); otherwise it is a daemon that lives as long as the process.
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_NEVER)
    if full_interval_s <= 0:
        return None
    stopped = stop or threading.Event()

    def run() -> None:
        while not stopped.wait(full_interval_s):
            full_collection()

    thread = threading.Thread(target=run, name="pb-gc", daemon=True)
    thread.start()
    return thread
