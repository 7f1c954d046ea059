"""A connection's bounded queue of frames: what waits for the socket, in order.

Events and control frames (hello, subscribed, error, ping) queue here while a socket lags.
Progress updates of one job (and export) coalesce — the queued one is dropped and the newest
queued at the end, so ids still increase on the wire (``events.policy``); every other event is
kept. :meth:`Outbox.take` turns everything queued into frames, consecutive events into one
``batch`` frame built from their pre-encoded forms. The owner (the session) decides what an
overflow means. Pure; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...events.policy import CoalesceKey
from .wire import FeedEntry, WireFormat, events_frame

__all__ = ["Control", "Outbox", "TakeResult"]


class Control:
    """A frame for one connection only (hello, subscribed, error...), encoded at creation."""

    __slots__ = ("frame", "size")

    def __init__(self, frame: str | bytes) -> None:
        self.frame = frame
        self.size = len(frame)


# Queue items: a FeedEntry or a Control, or for coalescable entries a one-item list (a slot set
# to None when a newer update of the same key replaces it).
_Slot = list[FeedEntry | None]
_Item = FeedEntry | Control | _Slot


@dataclass(frozen=True, slots=True)
class TakeResult:
    """Frames to write now, in order, and what they carry (for metrics).

    ``single`` is the entry when the take is exactly its one ``event`` frame, whose WebSocket
    bytes it has cached (:meth:`FeedEntry.wire_frame`) for every session of the same format.
    """

    frames: list[str | bytes]
    events: int
    oldest_ts: float | None
    single: FeedEntry | None = None


class Outbox:
    """Frames queued for one socket, with their count, size and the time the queue began."""

    __slots__ = (
        "_coalesce",
        "_queue",
        "batch_max_events",
        "bytes",
        "coalesced",
        "depth",
        "format",
        "since",
    )

    def __init__(self, fmt: WireFormat, batch_max_events: int) -> None:
        self.format = fmt
        self.batch_max_events = batch_max_events
        # A list, not a deque: take() always empties it, and an empty deque costs ~600 bytes
        # per connection where an empty list costs 56.
        self._queue: list[_Item] = []
        self._coalesce: dict[CoalesceKey, _Slot] = {}
        #: Frames queued (a replaced update no longer counts).
        self.depth = 0
        #: Their size in bytes (payloads, roughly what the socket will carry).
        self.bytes = 0
        #: When the queue last went from empty to non-empty (the age of its oldest frame).
        self.since = 0.0
        #: Progress updates replaced by newer ones so far.
        self.coalesced = 0

    def age(self, now: float) -> float:
        """Seconds the oldest queued frame has waited (0 when empty)."""
        return now - self.since if self.depth else 0.0

    def push_control(self, item: Control, now: float) -> None:
        if not self.depth:
            self.since = now
        self._queue.append(item)
        self.depth += 1
        self.bytes += item.size

    def push(self, entry: FeedEntry, now: float) -> None:
        """Queue one event; a coalescable one replaces the queued update of the same key."""
        if not self.depth:
            self.since = now
        key = entry.coalesce_key
        if key is None:
            self._queue.append(entry)
        else:
            old = self._coalesce.get(key)
            if old is not None:
                replaced = old[0]
                if replaced is not None:
                    # Latest wins: drop the queued update and queue the new one at the end, so
                    # ids still increase on the wire.
                    self.bytes -= replaced.size
                    self.depth -= 1
                    old[0] = None
                    self.coalesced += 1
            slot: _Slot = [entry]
            self._coalesce[key] = slot
            self._queue.append(slot)
        self.depth += 1
        self.bytes += entry.size

    def clear(self) -> None:
        self._queue.clear()
        self._coalesce.clear()
        self.depth = self.bytes = 0

    def take(self) -> TakeResult:
        """Everything queued, as frames: consecutive events become one ``batch`` frame."""
        queue = self._queue
        entry = queue[0] if len(queue) == 1 else None
        if isinstance(entry, FeedEntry):
            # The common live case (one event since the last take): no run, no loop.
            queue.clear()
            self.depth = self.bytes = 0
            frame = entry.mp_frame() if self.format is WireFormat.MSGPACK else entry.json_frame()
            return TakeResult([frame], 1, entry.ts, entry)
        frames: list[str | bytes] = []
        run: list[FeedEntry] = []
        events = 0
        oldest: float | None = None
        limit = self.batch_max_events
        coalesce = self._coalesce
        fmt = self.format
        for item in queue:
            if isinstance(item, list):
                slot = item
                entry = slot[0]
                if entry is None:
                    continue  # replaced by a newer update further back
                key = entry.coalesce_key
                if key is not None and coalesce.get(key) is slot:
                    del coalesce[key]
                item = entry
            if isinstance(item, FeedEntry):
                if oldest is None or item.ts < oldest:
                    oldest = item.ts
                run.append(item)
                events += 1
                if len(run) >= limit:
                    frames.append(events_frame(run, fmt))
                    run = []
            else:
                if run:
                    frames.append(events_frame(run, fmt))
                    run = []
                frames.append(item.frame)
        if run:
            frames.append(events_frame(run, fmt))
        queue.clear()
        self.depth = self.bytes = 0
        return TakeResult(frames, events, oldest)
