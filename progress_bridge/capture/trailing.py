"""When a coalesced progress update is due, and the per-process timer that writes it then."""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["TrailingFlush", "progress_interval"]

log = logging.getLogger("progress_bridge.capture")


def progress_interval(base_s: float, elapsed_s: float, budget: int) -> float:
    """Seconds between two progress writes of a job that has run ``elapsed_s``.

    ``base_s`` (1 / ``progress_max_rate_hz``) until the job has had time for ``budget / 10``
    writes, then ``elapsed / (budget / 10)``: the writes of a job that runs for ``T`` seconds
    grow like ``budget / 10 * (1 + ln(T / T0))`` — about 4,600 in an hour and 7,800 in a day
    at the defaults (10 Hz, 10,000) — so a long job's progress never pushes its zone and
    lifecycle events out of a ``budget``-sized history, while a job of a few minutes keeps the
    full rate.
    """
    return max(base_s, elapsed_s / max(1, budget // 10))


class TrailingFlush:
    """One daemon thread per process that writes coalesced progress once it is due.

    Without it, the last update before a long silent stretch of work would wait for the next
    call. Reporters register with :meth:`schedule`; at the due time the thread calls their
    ``flush_due()`` (which takes the reporter's own lock).
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cond = threading.Condition()
        self._seq = 0
        self._thread: threading.Thread | None = None

    def schedule(self, due: float, callback: Callable[[], None]) -> None:
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (due, self._seq, callback))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="progress-trailing-flush", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                _, _, callback = heapq.heappop(self._heap)
            try:
                callback()
            except Exception:  # never kill the thread; the next call or the task end retries
                log.exception("trailing progress flush failed")
