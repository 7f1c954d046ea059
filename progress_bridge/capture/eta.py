"""ETA from progress: a time-weighted moving average of the progress rate. Pure; no I/O."""

from __future__ import annotations

import math

__all__ = ["EtaEstimator"]


class EtaEstimator:
    """Seconds remaining from a time-weighted exponential moving average of the progress rate.

    ``elapsed / progress`` jumps whenever the pace changes (a slow table zone after many quick
    text zones). Here each observation moves the rate estimate by ``1 - exp(-dt / tau)``, so a
    burst of calls counts as much as one call over the same time, and the rate follows a change
    of pace within about ``tau`` seconds without jumping. For the first ``tau`` seconds the rate
    is the average since the first observation instead: the first instantaneous rate is often a
    burst (a zone done in milliseconds, then a wait) that would take ``tau`` to forget.
    """

    __slots__ = ("_first_p", "_first_t", "_last_p", "_last_t", "_rate", "tau_s")

    def __init__(self, tau_s: float = 10.0) -> None:
        self.tau_s = tau_s
        self._first_t: float | None = None
        self._first_p = 0.0
        self._last_t: float | None = None
        self._last_p = 0.0
        self._rate = 0.0  # percent per second

    def observe(self, now: float, percent: float) -> None:
        last_t = self._last_t
        if last_t is None or self._first_t is None:
            self._first_t, self._first_p = now, percent
            self._last_t, self._last_p = now, percent
            return
        dt = now - last_t
        if dt <= 0:
            return
        inst = max(0.0, percent - self._last_p) / dt
        since = now - self._first_t
        if since < self.tau_s:
            self._rate = max(0.0, percent - self._first_p) / since
        elif self._rate == 0.0:
            self._rate = inst
        else:
            alpha = 1.0 - math.exp(-dt / self.tau_s)
            self._rate += alpha * (inst - self._rate)
        self._last_t, self._last_p = now, percent

    def eta_s(self, percent: float) -> float | None:
        """Estimated seconds to 100 %, or None before the pace is known."""
        if percent >= 100:
            return 0.0
        if self._rate <= 0:
            return None
        return round((100.0 - percent) / self._rate, 1)
