"""Celery's own view of a running job: the ``PROGRESS`` state and a ``task-progress`` event.

The same numbers as the stream, so ``AsyncResult.info`` and Flower agree with the page. Both are
advisory, and both are Redis too in a usual deployment (the result backend and the broker), with
Celery's own retry policies (the Redis result backend retries a failed write up to 20 times,
with a 120 s socket timeout by default): made on the task's thread, a backend or broker outage
would hold the task for seconds to minutes.

So the calls run on :class:`CeleryStatePublisher`'s thread (one per process), and the task's
thread waits for them only while they are quick: :meth:`~CeleryStatePublisher.submit` waits up
to the producer's Redis budget for its numbers to be published — so, as long as the backend
answers, every ``PROGRESS`` write is done before the task's next line runs and never lands after
a state the task body stores itself (``mark_as_revoked``, a custom ``update_state``) or after
its result. A call that outlasts the budget marks the publisher *stuck*: until it returns, the
task's thread does not wait at all and newer numbers replace older ones (latest wins per job);
the same when the progress store has just been found unreachable (the budget for that outage is
spent). :meth:`~CeleryStatePublisher.finish` (when the run ends, before Celery stores the
result) drops the job's pending numbers. Celery's Redis backend never overwrites a stored
``SUCCESS``; a ``PROGRESS`` write stuck on a failing backend can still land after another state
(logged).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
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

    def __init__(self, stats: CaptureStats, on_stuck: Callable[[], None] | None = None) -> None:
        """``on_stuck`` is called (on the task's thread) when a call outlasts its wait."""
        self._stats = stats
        self._on_stuck = on_stuck
        self._cond = threading.Condition()
        self._open: set[str] = set()  # jobs whose run has not finished
        self._pending: dict[str, tuple[Any, dict[str, Any], str | None, int]] = {}
        self._published: dict[str, int] = {}  # per job, the last submission published
        self._seq = 0
        self._current: str | None = None  # the job whose call is under way
        self._stuck = False  # a call outlasted its submitter's wait and has not returned
        self._thread: threading.Thread | None = None

    def submit(
        self, task: Any, job_id: str, meta: dict[str, Any], hostname: str | None, wait_s: float
    ) -> bool:
        """Publish ``meta`` as the job's latest numbers, waiting up to ``wait_s`` for it unless
        the publisher is stuck; True when published before returning."""
        with self._cond:
            self._seq += 1
            seq = self._seq
            self._pending[job_id] = (task, meta, hostname, seq)
            self._open.add(job_id)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="progress-celery-state", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()
            if self._stuck or wait_s <= 0:
                return False
            done = self._cond.wait_for(
                lambda: self._published.get(job_id, 0) >= seq or self._stuck, timeout=wait_s
            )
            if self._published.get(job_id, 0) >= seq:
                return True
            if done:  # another submitter found it stuck
                return False
            self._stuck = True
        log.warning(
            "PROGRESS state of job %s not written within %.1f s (result backend or broker "
            "unreachable); no longer waiting for it until it answers",
            job_id,
            wait_s,
        )
        if self._on_stuck is not None:
            self._on_stuck()
        return False

    def finish(self, job_id: str) -> None:
        """The run ended: drop the job's pending numbers (its result comes next)."""
        with self._cond:
            self._pending.pop(job_id, None)
            self._published.pop(job_id, None)
            self._open.discard(job_id)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending))
                job_id = next(iter(self._pending))
                task, meta, hostname, seq = self._pending.pop(job_id)
                self._current = job_id
            try:
                publish_progress(task, job_id, meta, hostname=hostname, stats=self._stats)
            except Exception:  # never kill the thread
                log.exception("could not publish the PROGRESS state of job %s", job_id)
            with self._cond:
                self._current = None
                if job_id in self._open:
                    self._published[job_id] = max(self._published.get(job_id, 0), seq)
                if self._stuck:
                    self._stuck = False
                    log.warning("PROGRESS states are written again")
                self._cond.notify_all()
