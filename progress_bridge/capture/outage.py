"""The outage buffer: events wait here in order while Redis is unreachable.

Progress is advisory to the task (DESIGN invariant 9): :meth:`OutageBuffer.send` never raises for
a Redis problem, and never holds the caller longer than one Redis call's budget (the producer
store's connect and read timeouts, ``producer_connect_timeout_s`` + ``producer_socket_timeout_s``).
When a call fails the buffer goes *down*: from then on every event is queued in memory without
touching Redis (a few microseconds), and only a daemon thread talks to Redis — it retries with
backoff, writes the queue in order *outside* the lock the callers take, and goes back *up* once
the queue is empty. So a refused, unreachable or stalled Redis costs the task's thread at most one
budget per outage, however long the outage lasts.

When the queue is full, progress updates coalesce (latest per job wins,
:func:`~progress_bridge.events.coalesce_key`) and the oldest progress update is evicted to make
room; zone, lifecycle and export-lifecycle events are never evicted (past the bound the buffer
grows by those only, and ``overflow`` counts them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

from ..events.policy import CoalesceKey, coalesce_key
from ..events.schema import ProgressEvent
from ..exceptions import DuplicateTerminal, StoreRejected, StreamUnavailable
from ..store.sync import EventStore, Lease

__all__ = ["CaptureStats", "OutageBuffer"]

log = logging.getLogger("progress_bridge.capture")

#: Backoff between flush attempts while Redis is unreachable.
RETRY_MIN_S = 0.1
RETRY_MAX_S = 2.0
#: Events written per pipelined round trip when the buffer is flushed.
FLUSH_CHUNK = 500

Increments = dict[str, int]
#: One queued event, with what its append needs besides the event.
_Item = tuple[ProgressEvent, Increments | None, Lease | None]


@dataclass
class CaptureStats:
    """Counters of one process's capture; read them in tests, export them to metrics."""

    appended: int = 0  # events written to Redis
    coalesced: int = 0  # progress calls folded into a later write (never written on their own)
    redis_errors: int = 0  # failed Redis calls (appends, reads, heartbeats)
    celery_errors: int = 0  # failed update_state / task-progress calls (result backend, broker)
    buffered: int = 0  # events that went through the outage buffer
    flushed: int = 0  # buffered events written after Redis came back
    evicted: int = 0  # buffered progress updates dropped because the buffer was full
    overflow: int = 0  # never-dropped events kept past the buffer bound
    duplicate_terminals: int = 0  # terminal events refused by the store (handled quietly)
    rejected: int = 0  # events the server refused for another reason (logged)
    restated: int = 0  # running jobs written again after Redis lost their data

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _coalesce_key(event: ProgressEvent) -> CoalesceKey | None:
    """Events with the same key replace each other in a full buffer; None = never dropped."""
    return coalesce_key(event.job_id, event.type, getattr(event, "export_id", None))


class OutageBuffer:
    """Appends events in order; queues them while Redis is unreachable. Thread-safe.

    Args:
        on_written: called (outside any lock) with each event the store appended, id and epoch
            set, in order: the liveness tracker watches the epochs it comes back with.
    """

    def __init__(
        self,
        store: EventStore,
        capacity: int,
        stats: CaptureStats | None = None,
        on_written: Callable[[ProgressEvent], None] | None = None,
    ) -> None:
        self.store = store
        self.capacity = capacity
        self.stats = stats or CaptureStats()
        self._on_written = on_written
        self._buffer: deque[_Item] = deque()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._down = False
        self._inflight = 0  # queued items at the head the flusher is writing (never evicted)
        self._retry_at = 0.0
        self._backoff = RETRY_MIN_S
        self._flusher: threading.Thread | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """Events waiting in the outage buffer."""
        return len(self._buffer)

    @property
    def down(self) -> bool:
        """True from a failed Redis call until the queue is written and Redis answers again."""
        return self._down

    def pending_events(self) -> list[ProgressEvent]:
        """A copy of the buffered events, oldest first (diagnostics and tests)."""
        with self._lock:
            return [event for event, _, _ in self._buffer]

    def send(
        self,
        event: ProgressEvent,
        increments: Increments | None = None,
        lease: Lease | None = None,
    ) -> ProgressEvent | Literal[False] | None:
        """Append ``event`` now, or queue it while Redis is away. Never raises for Redis errors.

        Blocks at most one Redis call's budget, and only while the buffer is up. Returns the
        event as stored (id and epoch set, summed counters applied); False when the store refused
        it because the job has ended (``DuplicateTerminal``); None when it was queued, or
        refused for another reason.
        """
        written = None
        with self._lock:
            if self._down:
                self._enqueue((event, increments, lease))
                return None
            try:
                written = self.store.append(event, increments=increments, lease=lease)
                self.stats.appended += 1
            except DuplicateTerminal as exc:
                self.stats.duplicate_terminals += 1
                log.debug("%s", exc)
                return False
            except StoreRejected as exc:
                self.stats.rejected += 1
                log.error("progress event %s of job %s refused: %s", event.type, event.job_id, exc)
            except StreamUnavailable as exc:
                self._outage(exc)
                self._enqueue((event, increments, lease))
        if written is not None and self._on_written is not None:
            self._on_written(written)
        return written

    def note_unavailable(self, exc: BaseException) -> None:
        """A read on the task's path failed: go down, so the next calls don't wait for Redis."""
        with self._lock:
            self._outage(exc)

    def flush(self, timeout: float = 0.0) -> bool:
        """Retry now and wait up to ``timeout`` s for the queue to be written; True when up."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._down:
                self._retry_at = 0.0
                self._start_flusher()
                self._cond.notify_all()
            while self._down:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._cond.notify_all()

    # -- internals (call with the lock held) ---------------------------------------------------

    def _outage(self, exc: BaseException) -> None:
        self.stats.redis_errors += 1
        if not self._down:
            log.warning("progress store unreachable, buffering events: %s", exc)
        self._down = True
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, RETRY_MAX_S)
        self._start_flusher()

    def _enqueue(self, item: _Item) -> None:
        self.stats.buffered += 1
        buf = self._buffer
        event, increments, lease = item
        if len(buf) >= self.capacity:
            key = _coalesce_key(event)
            victim = None
            if key is not None:  # latest of the same job wins
                for i in range(len(buf) - 1, self._inflight - 1, -1):
                    if _coalesce_key(buf[i][0]) == key:
                        victim = i
                        break
            if victim is None:  # else evict the oldest droppable event
                victim = next(
                    (
                        i
                        for i in range(self._inflight, len(buf))
                        if _coalesce_key(buf[i][0]) is not None
                    ),
                    None,
                )
            if victim is not None:
                old_inc = buf[victim][1]
                del buf[victim]
                self.stats.evicted += 1
                if old_inc:  # summed counters must survive coalescing
                    merged = dict(old_inc)
                    for k, v in (increments or {}).items():
                        merged[k] = merged.get(k, 0) + v
                    item = (event, merged, lease)
            else:
                self.stats.overflow += 1
        buf.append(item)

    def _take_chunk(self) -> list[_Item]:
        """The head of the queue to write next, marked in flight: one event that needs the
        single-event call (counters or a lease), or up to FLUSH_CHUNK plain ones."""
        chunk: list[_Item] = []
        for item in self._buffer:
            if item[1] or item[2]:
                if not chunk:
                    chunk.append(item)
                break
            if len(chunk) >= FLUSH_CHUNK:
                break
            chunk.append(item)
        self._inflight = len(chunk)
        return chunk

    def _start_flusher(self) -> None:
        if self._flusher is not None and self._flusher.is_alive():
            return
        self._flusher = threading.Thread(
            target=self._flush_loop, name="progress-outbox-flusher", daemon=True
        )
        self._flusher.start()

    # -- the flusher thread ----------------------------------------------------------------------

    def _flush_loop(self) -> None:
        while True:
            with self._lock:
                while not self._closed and (delay := self._retry_at - time.monotonic()) > 0:
                    self._cond.wait(delay)
                if self._closed or not self._down:
                    self._flusher = None
                    return
                chunk = self._take_chunk()
            # Redis is called without the lock: callers keep queueing meanwhile.
            try:
                results = self._write(chunk)
            except StreamUnavailable as exc:
                with self._lock:
                    self._inflight = 0
                    self._outage(exc)
                continue
            written = self._done(chunk, results)
            if self._on_written is not None:
                for event in written:
                    self._on_written(event)

    def _write(self, chunk: list[_Item]) -> list[ProgressEvent | Exception]:
        if not chunk:  # nothing queued (a failed read): is Redis back?
            self.store.ping()
            return []
        if len(chunk) == 1 and (chunk[0][1] or chunk[0][2]):
            event, increments, lease = chunk[0]
            try:
                return [self.store.append(event, increments=increments, lease=lease)]
            except (DuplicateTerminal, StoreRejected) as exc:
                return [exc]
        results = self.store.append_many([event for event, _, _ in chunk])
        for result in results:
            if isinstance(result, StreamUnavailable):
                raise result
        return results

    def _done(
        self, chunk: list[_Item], results: list[ProgressEvent | Exception]
    ) -> list[ProgressEvent]:
        """Drop the written chunk from the queue; go up when the queue is empty."""
        written: list[ProgressEvent] = []
        with self._lock:
            for _ in chunk:
                self._buffer.popleft()
            self._inflight = 0
            for result in results:
                self.stats.flushed += 1
                if isinstance(result, DuplicateTerminal):
                    self.stats.duplicate_terminals += 1
                elif isinstance(result, Exception):  # retrying would fail again: dropped
                    self.stats.rejected += 1
                    log.error("buffered progress event refused: %s", result)
                else:
                    self.stats.appended += 1
                    written.append(result)
            self._retry_at = 0.0
            if not self._buffer:
                self._down = False
                self._backoff = RETRY_MIN_S
                log.warning("progress store reachable again; buffered events flushed")
                self._cond.notify_all()
        return written
