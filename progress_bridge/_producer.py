"""Producer side of capture: one outbox per process, its outage buffer, counters and the ETA.

Progress is advisory to the task (DESIGN invariant 9): :meth:`Outbox.send` never raises for a
Redis problem. When an append fails, the event waits in a bounded in-memory buffer and a daemon
thread retries with backoff; events are flushed in the order they were sent. When the buffer is
full, progress updates coalesce (latest per job wins) and the oldest progress update is evicted
to make room; zone, lifecycle and export-lifecycle events are never evicted (past the bound the
buffer grows by those only, and ``overflow`` counts them).

One :class:`Capture` per Celery app and process (created lazily, so a prefork child never
inherits its parent's connection, lock or thread; ``os.register_at_fork`` drops them too).
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .config import Settings
from .events import NEVER_DROPPED, ProgressEvent
from .exceptions import ConfigError, DuplicateTerminal
from .streams import EventStore

__all__ = ["Capture", "CaptureStats", "EtaEstimator", "Outbox", "TrailingFlush", "capture_for"]

log = logging.getLogger("progress_bridge.capture")

#: Seconds to wait for a Redis connection or answer from a task; a task never hangs on progress.
CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 2.0
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


def _coalesce_key(event: ProgressEvent) -> tuple[str, str, str] | None:
    """Events with the same key replace each other in a full buffer; None = never dropped."""
    if event.type in NEVER_DROPPED:
        return None
    return (event.job_id, event.type, getattr(event, "export_id", ""))


class Outbox:
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
            except redis.ResponseError as exc:
                self.stats.rejected += 1
                log.error("progress event %s of job %s refused: %s", event.type, event.job_id, exc)
            except redis.RedisError as exc:
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
                    elif isinstance(result, (redis.ConnectionError, redis.TimeoutError)):
                        raise result
                    elif isinstance(result, Exception):
                        self.stats.rejected += 1
                        log.error("buffered progress event refused: %s", result)
                    else:
                        self.stats.appended += 1
                    buf.popleft()
                    self.stats.flushed += 1
        except redis.RedisError as exc:
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


class EtaEstimator:
    """Seconds remaining from a time-weighted exponential moving average of the progress rate.

    ``elapsed / progress`` jumps whenever the pace changes (a slow table zone after many quick
    text zones). Here each observation moves the rate estimate by ``1 - exp(-dt / tau)``, so a
    burst of calls counts as much as one call over the same time, and the rate follows a change
    of pace within about ``tau`` seconds without jumping.
    """

    __slots__ = ("_last_p", "_last_t", "_rate", "tau_s")

    def __init__(self, tau_s: float = 10.0) -> None:
        self.tau_s = tau_s
        self._last_t: float | None = None
        self._last_p = 0.0
        self._rate = 0.0  # percent per second

    def observe(self, now: float, percent: float) -> None:
        last_t = self._last_t
        if last_t is None:
            self._last_t, self._last_p = now, percent
            return
        dt = now - last_t
        if dt <= 0:
            return
        inst = max(0.0, percent - self._last_p) / dt
        if self._rate == 0.0:
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


class Capture:
    """The per-process producer state of one Celery app: settings, store, outbox, counters."""

    def __init__(self, settings: Settings, fallback_url: str | None = None) -> None:
        self.settings = settings
        self.stats = CaptureStats()
        self._url = settings.redis_url or fallback_url
        self._outbox: Outbox | None = None
        self._lock = threading.Lock()
        self.trailing = TrailingFlush()

    @property
    def outbox(self) -> Outbox:
        box = self._outbox
        if box is None:
            with self._lock:
                box = self._outbox
                if box is None:
                    box = self._outbox = Outbox(
                        self._store(), self.settings.outage_buffer_events, self.stats
                    )
        return box

    def _store(self) -> EventStore:
        if not self._url:
            raise ConfigError(
                "PROGRESS_REDIS_URL (or REDIS_URL) is missing and the Celery app has no redis:// "
                "broker or result backend to fall back on"
            )
        client = redis.Redis.from_url(
            self._url,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=SOCKET_TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),  # the outbox retries, with backoff, off the task's path
        )
        return EventStore(client, self.settings)

    def send(self, event: ProgressEvent, increments: Increments | None = None) -> None:
        self.outbox.send(event, increments)

    def stored_attempt(self, job_id: str) -> int:
        """The attempt number recorded in the job's snapshot (0 if none or unreachable)."""
        store = self.outbox.store
        try:
            raw = store.client.hget(store.keys.snapshot(job_id), "attempt")
        except redis.RedisError:
            self.stats.redis_errors += 1
            return 0
        try:
            return int(raw) if raw else 0
        except (TypeError, ValueError):
            return 0

    def close(self) -> None:
        if self._outbox is not None:
            self._outbox.close()


_captures: dict[int, tuple[Any, Capture]] = {}
_captures_lock = threading.Lock()


def _redis_url_of(conf: Any) -> str | None:
    for name in ("result_backend", "broker_url"):
        value = conf.get(name)
        if isinstance(value, str) and value.startswith(("redis://", "rediss://", "unix://")):
            return value
    return None


def capture_for(app: Any, settings_factory: Callable[[], Settings] = Settings.from_env) -> Capture:
    """The :class:`Capture` of ``app`` in this process.

    Settings come from ``app.conf.progress_settings`` (a :class:`Settings`, set in
    ``celeryconfig.py``), else from the environment once per process. With no Redis URL in the
    settings, the app's redis:// result backend or broker is used.
    """
    key = id(app)
    entry = _captures.get(key)
    if entry is not None and entry[0] is app:
        return entry[1]
    with _captures_lock:
        entry = _captures.get(key)
        if entry is not None and entry[0] is app:
            return entry[1]
        configured = app.conf.get("progress_settings")
        settings = configured if isinstance(configured, Settings) else settings_factory()
        capture = Capture(settings, _redis_url_of(app.conf))
        _captures[key] = (app, capture)
        return capture


def _forget_after_fork() -> None:
    # A forked child must not reuse the parent's lock, flusher thread or connections.
    global _captures_lock
    _captures.clear()
    _captures_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
