"""The outage buffer: events wait here in order while Redis is unreachable.

Progress is advisory to the task (DESIGN invariant 9): :meth:`OutageBuffer.send` never raises for
a Redis problem. When an append fails, the event waits in a bounded in-memory buffer and a daemon
thread retries with backoff; events are flushed in the order they were sent. When the buffer is
full, progress updates coalesce (latest per job wins, :func:`~progress_bridge.events.coalesce_key`)
and the oldest progress update is evicted to make room; zone, lifecycle and export-lifecycle
events are never evicted (past the bound the buffer grows by those only, and ``overflow`` counts
them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass

from ..events.policy import CoalesceKey, coalesce_key
from ..events.schema import ProgressEvent
from ..exceptions import DuplicateTerminal, StoreRejected, StreamUnavailable
from ..store.sync import EventStore

__all__ = ["CaptureStats", "OutageBuffer"]

log = logging.getLogger("progress_bridge.capture")

#: Backoff between flush attempts while Redis is unreachable.
RETRY_MIN_S = 0.1
RETRY_MAX_S = 2.0
#: Events written per pipelined round trip when the buffer is flushed.
FLUSH_CHUNK = 500

Increments = dict[str, int]


@dataclass
class CaptureStats:
    """Counters of one process's capture; read them in tests, export them to metrics."""

    appended: int = 0  # events written to Redis
    coalesced: int = 0  # progress calls folded into a later write (never written on their own)
    redis_errors: int = 0  # failed Redis calls (appends, update_state, send_event)
    buffered: int = 0  # events that went through the outage buffer
    flushed: int = 0  # buffered events written after Redis came back
    evicted: int = 0  # buffered progress updates dropped because the buffer was full
    overflow: int = 0  # never-dropped events kept past the buffer bound
    duplicate_terminals: int = 0  # terminal events refused by the store (handled quietly)
    rejected: int = 0  # events the server refused for another reason (logged)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _coalesce_key(event: ProgressEvent) -> CoalesceKey | None:
    """Events with the same key replace each other in a full buffer; None = never dropped."""
    return coalesce_key(event.job_id, event.type, getattr(event, "export_id", None))


class OutageBuffer:
    """Appends events in order; buffers them while Redis is unreachable. Thread-safe."""

    def __init__(self, store: EventStore, capacity: int, stats: CaptureStats | None = None) -> None:
        self.store = store
        self.capacity = capacity
        self.stats = stats or CaptureStats()
        self._buffer: deque[tuple[ProgressEvent, Increments | None]] = deque()
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._backoff = RETRY_MIN_S
        self._flusher: threading.Thread | None = None
        self._wake = threading.Event()
        self._closed = False

    @property
    def pending(self) -> int:
        """Events waiting in the outage buffer."""
        return len(self._buffer)

    def pending_events(self) -> list[ProgressEvent]:
        """A copy of the buffered events, oldest first (diagnostics and tests)."""
        with self._lock:
            return [event for event, _ in self._buffer]

    def send(self, event: ProgressEvent, increments: Increments | None = None) -> None:
        """Append ``event`` now, or buffer it if Redis is away. Never raises for Redis errors."""
        with self._lock:
            if self._buffer:
                self._flush_locked(force=False)
            if self._buffer:
                self._enqueue(event, increments)
                return
            try:
                self.store.append(event, increments=increments)
                self.stats.appended += 1
            except DuplicateTerminal as exc:
                self.stats.duplicate_terminals += 1
                log.debug("%s", exc)
            except StoreRejected as exc:
                self.stats.rejected += 1
                log.error("progress event %s of job %s refused: %s", event.type, event.job_id, exc)
            except StreamUnavailable as exc:
                self._outage(exc)
                self._enqueue(event, increments)

    def flush(self, timeout: float = 0.0) -> bool:
        """Try to write the buffer now (waiting up to ``timeout`` s for Redis); True when empty."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                self._flush_locked(force=True)
                if not self._buffer:
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(RETRY_MIN_S)

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    # -- internals (call with the lock held) ---------------------------------------------------

    def _outage(self, exc: BaseException) -> None:
        self.stats.redis_errors += 1
        first = self._retry_at == 0.0
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, RETRY_MAX_S)
        if first:
            log.warning("progress store unreachable, buffering events: %s", exc)
        self._start_flusher()

    def _enqueue(self, event: ProgressEvent, increments: Increments | None) -> None:
        self.stats.buffered += 1
        buf = self._buffer
        if len(buf) >= self.capacity:
            key = _coalesce_key(event)
            victim = None
            if key is not None:  # latest of the same job wins
                for i in range(len(buf) - 1, -1, -1):
                    if _coalesce_key(buf[i][0]) == key:
                        victim = i
                        break
            if victim is None:  # else evict the oldest droppable event
                victim = next((i for i, (e, _) in enumerate(buf) if _coalesce_key(e)), None)
            if victim is not None:
                old_inc = buf[victim][1]
                del buf[victim]
                self.stats.evicted += 1
                if old_inc:  # summed counters must survive coalescing
                    merged = dict(old_inc)
                    for k, v in (increments or {}).items():
                        merged[k] = merged.get(k, 0) + v
                    increments = merged
            else:
                self.stats.overflow += 1
        buf.append((event, increments))

    def _flush_locked(self, *, force: bool) -> None:
        if not force and time.monotonic() < self._retry_at:
            return
        buf = self._buffer
        try:
            while buf:
                if buf[0][1]:  # increments need the single-event call
                    event, inc = buf[0]
                    try:
                        self.store.append(event, increments=inc)
                        self.stats.appended += 1
                    except DuplicateTerminal:
                        self.stats.duplicate_terminals += 1
                    except StoreRejected as exc:  # retrying would fail again: drop it
                        self.stats.rejected += 1
                        log.error("buffered progress event refused: %s", exc)
                    buf.popleft()
                    self.stats.flushed += 1
                    continue
                chunk: list[ProgressEvent] = []
                for event, inc in buf:
                    if inc or len(chunk) >= FLUSH_CHUNK:
                        break
                    chunk.append(event)
                results = self.store.append_many(chunk)
                for result in results:
                    if isinstance(result, DuplicateTerminal):
                        self.stats.duplicate_terminals += 1
                    elif isinstance(result, StreamUnavailable):
                        raise result
                    elif isinstance(result, Exception):
                        self.stats.rejected += 1
                        log.error("buffered progress event refused: %s", result)
                    else:
                        self.stats.appended += 1
                    buf.popleft()
                    self.stats.flushed += 1
        except StreamUnavailable as exc:
            self._outage(exc)
            return
        if self._retry_at:
            log.warning("progress store reachable again; buffered events flushed")
        self._retry_at = 0.0
        self._backoff = RETRY_MIN_S

    def _start_flusher(self) -> None:
        if self._flusher is not None and self._flusher.is_alive():
            return
        self._flusher = threading.Thread(
            target=self._flush_loop, name="progress-outbox-flusher", daemon=True
        )
        self._flusher.start()

    def _flush_loop(self) -> None:
        while not self._closed:
            self._wake.wait(max(0.0, self._retry_at - time.monotonic()))
            with self._lock:
                self._flush_locked(force=False)
                if not self._buffer:
                    self._flusher = None
                    return
