"""The producer: one :class:`Capture` per Celery app and process — settings, store, outage
buffer, Celery-state publisher, liveness, counters — and :func:`record_event`, the public way to
write an event by hand.

One :class:`Capture` per Celery app and process (created lazily, so a prefork child never
inherits its parent's connection, lock or thread; ``os.register_at_fork`` drops them too).

What a task's thread may wait for: one Redis call's budget (``producer_connect_timeout_s`` +
``producer_socket_timeout_s``) once per outage, in a progress call or a lifecycle handler; after
that the outage buffer answers alone (:mod:`.outage`). Celery's own calls (the ``PROGRESS``
state, the ``task-progress`` event) never run on the task's thread (:mod:`.celery_state`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any, Literal

from ..config import Settings
from ..events.schema import ProcessingStarted, ProgressEvent
from ..exceptions import ConfigError, StoreRejected, StreamUnavailable
from ..store.sync import EventStore, Lease
from .celery_state import CeleryStatePublisher
from .liveness import Liveness, RunningJob
from .outage import CaptureStats, Increments, OutageBuffer
from .trailing import TrailingFlush

__all__ = ["Capture", "capture_for", "forget_capture", "record_event"]

log = logging.getLogger("progress_bridge.capture")


class Capture:
    """The per-process producer state of one Celery app: settings, store, outage buffer,
    Celery-state publisher, liveness, counters."""

    def __init__(self, settings: Settings, fallback_url: str | None = None) -> None:
        self.settings = settings
        self.stats = CaptureStats()
        self._url = settings.redis_url or fallback_url
        self._buffer: OutageBuffer | None = None
        self._lock = threading.Lock()
        self.trailing = TrailingFlush()
        self.celery_state = CeleryStatePublisher(self.stats, on_stuck=self._celery_stuck)
        self.liveness = Liveness(lambda: self.store, settings, self.stats, self._restate)

    @property
    def buffer(self) -> OutageBuffer:
        """Appends events in order, buffering them while Redis is away (created on first use)."""
        buffer = self._buffer
        if buffer is None:
            with self._lock:
                buffer = self._buffer
                if buffer is None:
                    buffer = self._buffer = OutageBuffer(
                        self._store(),
                        self.settings.outage_buffer_events,
                        self.stats,
                        on_written=self.liveness.written,
                    )
        return buffer

    @property
    def redis_down(self) -> bool:
        """True while the outage buffer knows Redis is away (False before any write)."""
        return self._buffer is not None and self._buffer.down

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
        return EventStore.for_producer(self._url, self.settings)

    def send(
        self, event: ProgressEvent, increments: Increments | None = None, lease: Lease | None = None
    ) -> ProgressEvent | Literal[False] | None:
        """Append ``event`` now, or buffer it while Redis is away. Never raises for Redis.

        Returns the event as stored (summed counters applied), False when refused because the
        job has ended, None when buffered (or refused for another reason).
        """
        return self.buffer.send(event, increments, lease)

    def _celery_stuck(self) -> None:
        # Celery's backend or broker (usually the same Redis) did not answer within the budget:
        # don't let the store's next call wait a second budget for the same outage. If the store
        # is fine, the buffer's flusher finds it so at once and the events follow.
        if self._buffer is not None:
            self._buffer.note_unavailable(StreamUnavailable("the result backend did not answer"))

    def job_state(self, job_id: str) -> tuple[int, str | None]:
        """The job's recorded attempt and terminal event type; ``(0, None)`` when Redis is
        away (then without waiting for it, if the buffer already knows)."""
        buffer = self.buffer
        if buffer.down:
            return 0, None
        try:
            return self.store.job_state(job_id)
        except (StreamUnavailable, StoreRejected) as exc:
            buffer.note_unavailable(exc)
            return 0, None

    def stored_attempt(self, job_id: str) -> int:
        """The attempt number recorded in the job's snapshot (0 if none or unreachable)."""
        return self.job_state(job_id)[0]

    # -- running jobs (leases) -----------------------------------------------------------------

    def start_job(self, started: ProcessingStarted, info: dict[str, Any]) -> RunningJob:
        """Write an attempt's ``processing_started`` with a lease, and renew it from now on.

        ``info`` is what a reaper needs to end the job if this process dies (task name,
        whether its message is redelivered, the broker's delivery tag, the parent job).
        """
        token = f"{started.worker or os.getpid()}/{uuid.uuid4().hex[:8]}"
        value = f"{token}\n{json.dumps(info, separators=(',', ':'))}"
        lease = (int(self.settings.lease_s * 1000), value)
        job = RunningJob(started.job_id, token, started, lease)
        self.liveness.register(job)
        self.send(started, lease=lease)
        return job

    def end_job(self, job_id: str) -> None:
        """The attempt ended in this process: stop renewing (and release) the job's lease."""
        self.liveness.unregister(job_id)

    def _restate(self, job: RunningJob) -> None:
        """Write ``job``'s state in the new epoch (Redis lost it): see :mod:`.liveness`."""

        def started() -> None:
            self.send(job.started, lease=job.lease)

        reporter = job.reporter
        if reporter is None:
            started()
        else:
            reporter.restate(started)

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
