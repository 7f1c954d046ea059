"""Celery's own view of a running job: the ``PROGRESS`` state and a ``task-progress`` event.

The same numbers as the stream, so ``AsyncResult.info`` and Flower agree with the page. Both are
advisory, and both are Redis too in a usual deployment (the result backend and the broker), with
Celery's own retry policies (the Redis result backend retries a failed write up to 20 times,
with a 120 s socket timeout by default): called on the task's thread, a backend or broker outage
would hold the task for seconds to minutes. So the task's thread only hands the latest numbers of
its job to :class:`CeleryStatePublisher`, one daemon thread per process, which makes the calls;
while it is busy (or stuck), newer numbers replace older ones (latest wins per job).

Ordering with the result: :meth:`CeleryStatePublisher.finish` (called when the run ends, before
Celery stores ``SUCCESS``/``FAILURE``) drops the job's pending numbers and waits, up to a
bound, for a call already under way. Celery's Redis backend never overwrites a stored
``SUCCESS``; a ``PROGRESS`` call still stuck past that bound can land after a ``FAILURE`` when the
result backend itself is failing (logged).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .outage import CaptureStats

__all__ = ["PROGRESS_STATE", "CeleryStatePublisher", "publish_progress"]

log = logging.getLogger("progress_bridge.capture")

#: The Celery state of a running job that reports progress.
PROGRESS_STATE = "PROGRESS"


def publish_progress(
    task: Any, job_id: str, meta: dict[str, Any], *, hostname: str | None, stats: CaptureStats
) -> None:
    """Store ``meta`` as the task's ``PROGRESS`` state and send it as a ``task-progress`` event.

    Blocking (Celery's calls): run it off the task's thread (:class:`CeleryStatePublisher`).
    """
    try:
        task.update_state(task_id=job_id, state=PROGRESS_STATE, meta=meta)
    except Exception as exc:  # the result backend is advisory here too
        stats.celery_errors += 1
        log.warning("update_state(PROGRESS) failed for %s: %s", job_id, exc)
    try:
        # Not task.send_event: that reads the thread-local request, and this runs on the
        # publisher's thread. No retries: progress never waits for the broker.
        with task.app.events.default_dispatcher(hostname=hostname) as dispatcher:
            dispatcher.send("task-progress", uuid=job_id, retry=False, **meta)
    except Exception as exc:
        stats.celery_errors += 1
        log.warning("task-progress event failed for %s: %s", job_id, exc)


class CeleryStatePublisher:
    """Publishes each job's latest ``PROGRESS`` numbers from one daemon thread per process."""

    def __init__(self, stats: CaptureStats) -> None:
        self._stats = stats
        self._cond = threading.Condition()
        self._pending: dict[str, tuple[Any, dict[str, Any], str | None]] = {}
        self._current: str | None = None  # the job whose call is under way
        self._started = 0.0  # since when (monotonic)
        self._thread: threading.Thread | None = None

    def submit(self, task: Any, job_id: str, meta: dict[str, Any], hostname: str | None) -> None:
        """Queue ``meta`` as the job's latest numbers; returns at once."""
        with self._cond:
            self._pending[job_id] = (task, meta, hostname)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="progress-celery-state", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def finish(self, job_id: str, wait_s: float) -> bool:
        """The run ended: drop its pending numbers and wait for a call under way until it has
        been under way ``wait_s`` (a call older than that is stuck on an unreachable backend,
        and waiting longer would only hold the task); True when none is under way any more."""
        with self._cond:
            self._pending.pop(job_id, None)
            if self._current == job_id:
                left = self._started + wait_s - time.monotonic()
                self._cond.wait_for(lambda: self._current != job_id, timeout=max(0.0, left))
            done = self._current != job_id
        if not done:
            log.warning(
                "PROGRESS state of job %s still being written after %.1f s (result backend or "
                "broker unreachable); it may land after the job's result",
                job_id,
                wait_s,
            )
        return done

    def idle(self) -> bool:
        """Nothing pending and no call under way (tests)."""
        with self._cond:
            return not self._pending and self._current is None

    def _run(self) -> None:
        while True:
            with self._cond:
                self._current = None
                self._cond.notify_all()
                self._cond.wait_for(lambda: bool(self._pending))
                job_id = next(iter(self._pending))
                task, meta, hostname = self._pending.pop(job_id)
                self._current = job_id
                self._started = time.monotonic()
            try:
                publish_progress(task, job_id, meta, hostname=hostname, stats=self._stats)
            except Exception:  # never kill the thread
                log.exception("could not publish the PROGRESS state of job %s", job_id)
