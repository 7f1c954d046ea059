"""One connection's inbound rate limit: a token bucket charged by frames and by their answers.

Each client frame takes a token (``rate_per_s`` refill, ``rate_burst`` deep); a subscribe's
answer takes one more per :data:`ANSWER_BYTES_PER_TOKEN` it queued, so a client re-subscribing
to a job with a large snapshot is limited by the work it causes, not only by its frames. A
dropped frame is a strike; strikes are forgiven once the bucket is nearly full again (the client
calmed down). The bucket only counts: the :class:`~.session.Session` decides what a strike
means (an ``error`` on the first, close 4029 at ``rate_strikes``). Pure; no I/O.
"""

from __future__ import annotations

from .limits import Limits

__all__ = ["ANSWER_BYTES_PER_TOKEN", "InboundRate"]

#: Bytes of a subscribe's answer (snapshot, replayed history) that cost one more inbound token.
ANSWER_BYTES_PER_TOKEN = 16 * 1024


class InboundRate:
    """The token bucket of one connection, on the clock the session is driven with."""

    __slots__ = ("_at", "_limits", "_tokens", "strikes")

    def __init__(self, limits: Limits, now: float) -> None:
        self._limits = limits
        self._tokens = float(limits.rate_burst)
        self._at = now
        #: Frames dropped since the client last calmed down.
        self.strikes = 0

    def take(self, now: float) -> bool:
        """Take a token for one frame; False: none left, the frame is dropped (a strike)."""
        lim = self._limits
        self._tokens = min(float(lim.rate_burst), self._tokens + (now - self._at) * lim.rate_per_s)
        self._at = now
        if self._tokens >= 1.0:
            if self._tokens >= lim.rate_burst - 1:
                self.strikes = 0  # the client calmed down: forgive earlier flooding
            self._tokens -= 1.0
            return True
        self.strikes += 1
        return False

    def charge_answer(self, size: int) -> None:
        """Charge the ``size`` bytes a subscribe's answer queued (the bucket may go negative)."""
        self._tokens -= size / ANSWER_BYTES_PER_TOKEN
