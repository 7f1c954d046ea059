"""How long the oldest byte a transport still buffers has waited: the clock of the slow-reader
rule.

The rule itself is the session's (:meth:`~progress_bridge.bridge.core.Session.tick`: unread
bytes and their age against ``outbox_max_bytes`` and ``outbox_max_age_s``, then the close
4008). A direct connection writes frames at once, so they leave the outbox before the peer reads
them; its sweeper check (:meth:`~progress_bridge.bridge.connection.Connection.tick`) asks the
socket how much is unread and estimates its age here.

Why apart from :mod:`.connection`: plain arithmetic on plain numbers (no socket, no clock of its
own), so it reads, and can be checked, on its own.
"""

from __future__ import annotations

from collections import deque

__all__ = ["MAX_MARKS", "backlog_age"]

#: Transport backlog samples kept per lagging connection (two per second of backlog).
MAX_MARKS = 128


def backlog_age(marks: deque[tuple[float, int]], now: float, written: int, delivered: int) -> float:
    """How long the oldest byte the transport still buffers has waited, at least.

    ``marks`` are the connection's samples, (time, bytes written by then), one per sweep while
    the transport buffers something; this call drops those the peer has read past and adds
    one for ``now``. The first sample past what the peer has taken (``delivered``) shows a time
    when the oldest unread byte was already written. Under-estimates by at most one sweep.
    """
    while marks and marks[0][1] <= delivered:
        marks.popleft()
    if (not marks or marks[-1][1] < written) and len(marks) < MAX_MARKS:
        marks.append((now, written))
    return now - marks[0][0]
