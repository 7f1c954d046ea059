"""The producer: one :class:`Capture` per Celery app and process — settings, store, outage
buffer, counters — and :func:`record_event`, the public way to write an event by hand.

One :class:`Capture` per Celery app and process (created lazily, so a prefork child never
inherits its parent's connection, lock or thread; ``os.register_at_fork`` drops them too).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from ..config import Settings
from ..events.schema import ProgressEvent
from ..exceptions import ConfigError, StoreRejected, StreamUnavailable
from ..store.sync import EventStore
from .outage import CaptureStats, Increments, OutageBuffer
from .trailing import TrailingFlush

__all__ = ["Capture", "capture_for", "forget_capture", "record_event"]

log = logging.getLogger("progress_bridge.capture")

#: Seconds to wait for a Redis connection or answer from a task; a task never hangs on progress.
CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 2.0


class Capture:
    """The per-process producer state of one Celery app: settings, store, outage buffer,
    counters."""

    def __init__(self, settings: Settings, fallback_url: str | None = None) -> None:
        self.settings = settings
        self.stats = CaptureStats()
        self._url = settings.redis_url or fallback_url
        self._buffer: OutageBuffer | None = None
        self._lock = threading.Lock()
        self.trailing = TrailingFlush()

    @property
    def buffer(self) -> OutageBuffer:
        """Appends events in order, buffering them while Redis is away (created on first use)."""
        buffer = self._buffer
        if buffer is None:
            with self._lock:
                buffer = self._buffer
                if buffer is None:
                    buffer = self._buffer = OutageBuffer(
                        self._store(), self.settings.outage_buffer_events, self.stats
                    )
        return buffer

    @property
    def store(self) -> EventStore:
        """The event store (the buffer's): for reads such as the cancel check."""
        return self.buffer.store

    def _store(self) -> EventStore:
        if not self._url:
            raise ConfigError(
                "PROGRESS_REDIS_URL (or REDIS_URL) is missing and the Celery app has no redis:// "
                "broker or result backend to fall back on"
            )
        return EventStore.for_producer(
            self._url,
            self.settings,
            connect_timeout_s=CONNECT_TIMEOUT_S,
            socket_timeout_s=SOCKET_TIMEOUT_S,
        )

    def send(self, event: ProgressEvent, increments: Increments | None = None) -> None:
        """Append ``event`` now, or buffer it while Redis is away. Never raises for Redis."""
        self.buffer.send(event, increments)

    def stored_attempt(self, job_id: str) -> int:
        """The attempt number recorded in the job's snapshot (0 if none or unreachable)."""
        try:
            return self.store.attempt_of(job_id)
        except (StreamUnavailable, StoreRejected):
            self.stats.redis_errors += 1
            return 0

    def close(self) -> None:
        if self._buffer is not None:
            self._buffer.close()


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


def forget_capture(app: Any) -> None:
    """Drop the app's :class:`Capture` (its next use builds one from the app's settings then):
    for tests and tools that change ``app.conf.progress_settings``."""
    with _captures_lock:
        entry = _captures.pop(id(app), None)
    if entry is not None:
        entry[1].close()


def _forget_after_fork() -> None:
    # A forked child must not reuse the parent's lock, flusher thread or connections.
    global _captures_lock
    _captures.clear()
    _captures_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def record_event(app: Any, event: ProgressEvent) -> None:
    """Write one event to its job's stream from any code of a Celery app's process.

    For applications that write lifecycle events themselves (a chord body completing its job, a
    cancel endpoint): the same path as ``ProgressTask``'s own events — the atomic append, the
    outage buffer while Redis is away, and never an exception for a Redis problem. A second
    terminal event for a job is refused by the store and counted (``stats.duplicate_terminals``).
    """
    capture_for(app).send(event)
