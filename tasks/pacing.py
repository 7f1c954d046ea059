"""Pacing for the demo: a real document processed slowly enough for a person to watch it.

:class:`PacedSink` wraps a job's progress sink and spends at least ``page_s`` seconds on each
page: after each completed zone it waits until that zone's share of its page's time has passed
(a page without zones waits its whole time once declared). The work itself is unchanged — every
zone is really extracted — only the pauses between zones are added, so the page, Flower and
``progress-bridge tail`` have something to show for about ``pages × page_s`` seconds.

The waits poll ``should_stop`` (every :data:`POLL_S` at most; :class:`tasks.pdf_tasks.StopCheck`
reads Redis less often than that), so a cancelled demo job stops within a poll interval instead
of sleeping on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from progress_bridge.capture.sink import ProgressSink
from progress_bridge.events import PageInfo, ZoneInfo

__all__ = ["POLL_S", "PacedSink"]

#: Longest single pause before ``should_stop`` is asked again (seconds).
POLL_S = 0.1


class PacedSink:
    """A :class:`ProgressSink` that passes every call to ``inner`` and paces the pages."""

    def __init__(
        self,
        inner: ProgressSink,
        page_s: float,
        should_stop: Callable[[], bool] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._inner = inner
        self.page_s = max(0.0, float(page_s))
        self._should_stop = should_stop
        self._clock = clock
        self._sleep = sleep
        self._page_start = clock()
        self._page_zones = 0
        self._page_done = 0

    def declare_zones(self, zones: Sequence[ZoneInfo], pages: Sequence[PageInfo] = ()) -> None:
        self._inner.declare_zones(zones, pages)
        # process_document declares one page at a time, right before processing it.
        self._page_start = self._clock()
        self._page_zones = len(zones)
        self._page_done = 0
        if not zones:
            self._wait_until(self._page_start + self.page_s)

    def zone_processing(self, zone_id: str, *, tool: str) -> None:
        self._inner.zone_processing(zone_id, tool=tool)

    def zone_completed(
        self,
        zone_id: str,
        *,
        tool: str,
        confidence: float | None = None,
        duration_ms: int | None = None,
        status: str = "completed",
        error: str | None = None,
        summary: str | None = None,
    ) -> None:
        self._inner.zone_completed(
            zone_id,
            tool=tool,
            confidence=confidence,
            duration_ms=duration_ms,
            status=status,
            error=error,
            summary=summary,
        )
        self._page_done += 1
        share = self._page_done / max(1, self._page_zones)
        self._wait_until(self._page_start + self.page_s * min(1.0, share))

    def set_progress(self, percent: float | None = None, *, operation: str | None = None) -> None:
        self._inner.set_progress(percent, operation=operation)

    def _wait_until(self, deadline: float) -> None:
        while True:
            left = deadline - self._clock()
            if left <= 0 or (self._should_stop is not None and self._should_stop()):
                return
            self._sleep(min(POLL_S, left))
