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

What Flower shows: Flower builds its task list from Celery events only, and displays a task's
``result`` field, which a custom event sets like any other field. So ``task-progress`` carries
``result`` = :func:`progress_text` (``42% · 27/64 zones · Extracting text p5-z2``: the page's
numbers, percent rounded as the page rounds it). Flower ranks a custom state such as
``PROGRESS`` above ``REVOKED`` (``celery.states.precedence``), so a plain ``task-revoked`` after
progress is merged as an *earlier* event and the task stays PROGRESS; :func:`mark_revoked` sends
it with an explicit ``state`` field, which Celery's event state copies like any other field.
Runs that end outside Celery's tracer (a cooperative stop, a canvas job finished by its chord
body) record their end with :func:`mark_revoked`, :func:`mark_succeeded` or :func:`mark_failed`:
the result backend and the matching task event, so ``AsyncResult`` and Flower both see it.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

from celery import states
from celery.utils.saferepr import saferepr

from .outage import CaptureStats

__all__ = [
    "PROGRESS_STATE",
    "CeleryStatePublisher",
    "mark_failed",
    "mark_revoked",
    "mark_succeeded",
    "progress_text",
    "publish_progress",
    "send_task_event",
]

log = logging.getLogger("progress_bridge.capture")

#: The Celery state of a running job that reports progress.
PROGRESS_STATE = "PROGRESS"


def progress_text(meta: Mapping[str, Any]) -> str:
    """A running job's numbers as one line, as Flower shows them in its ``Result`` column:
    ``42% · 27/64 zones · Extracting text p5-z2``.

    The percent is rounded half up, as the page rounds it (JavaScript's ``Math.round``), so the
    page, Flower and ``tail`` print the same number.
    """
    percent = float(meta.get("percent") or 0.0)
    text = (
        f"{math.floor(percent + 0.5)}% · "
        f"{int(meta.get('zones_completed') or 0)}/{int(meta.get('zones_total') or 0)} zones"
    )
    operation = meta.get("current_operation") or meta.get("current_zone")
    if operation:
        text += f" · {operation}"
    return text


def send_task_event(
    app: Any, event_type: str, task_id: str, *, hostname: str | None = None, **fields: Any
) -> bool:
    """Send one Celery task event (for Flower) about ``task_id``, from any thread; no retries.

    Returns False (logged) when the broker did not take it: monitoring is advisory.
    """
    try:
        with app.events.default_dispatcher(hostname=hostname) as dispatcher:
            dispatcher.send(event_type, uuid=task_id, retry=False, **fields)
    except Exception as exc:
        log.warning("%s event for %s not sent: %s", event_type, task_id, exc)
        return False
    return True


def mark_revoked(
    task: Any,
    task_id: str,
    reason: str,
    *,
    request: Any = None,
    hostname: str | None = None,
    result: str | None = None,
) -> None:
    """``task_id`` ended revoked outside Celery's own revoke path (a cooperative stop, a canvas
    job whose parts were cancelled): ``REVOKED`` in the result backend and a ``task-revoked``
    event Flower applies even over a ``PROGRESS`` state.

    Args:
        request: the run's request, when ``task_id`` is the running task (a chord part counts
            itself as returned through it); None for another task (a canvas job).
        result: what Flower shows as the task's result from now on, e.g. where the job stopped
            (:func:`progress_text` of its snapshot); None leaves the last one.
    """
    try:
        task.backend.mark_as_revoked(task_id, reason, request=request)
    except Exception as exc:  # the job's end is in its stream already
        log.warning("REVOKED state of %s not stored: %s", task_id, exc)
    send_task_event(
        task.app,
        "task-revoked",
        task_id,
        hostname=hostname,
        terminated=False,
        signum=None,
        expired=False,
        # Flower ranks the custom PROGRESS above REVOKED: say the state outright (module doc).
        state=states.REVOKED,
        **({"result": result} if result is not None else {}),
    )


def mark_succeeded(
    task: Any,
    task_id: str,
    result: Any,
    *,
    runtime: float | None = None,
    hostname: str | None = None,
) -> None:
    """``task_id`` (another task than the running one, e.g. a canvas job completed by its chord
    body) succeeded with ``result``: ``SUCCESS`` in the result backend and ``task-succeeded``."""
    try:
        task.backend.mark_as_done(task_id, result)
    except Exception as exc:
        log.warning("SUCCESS state of %s not stored: %s", task_id, exc)
    send_task_event(
        task.app,
        "task-succeeded",
        task_id,
        hostname=hostname,
        result=saferepr(result, getattr(task, "resultrepr_maxsize", 1024)),
        runtime=runtime,
    )


def mark_failed(
    task: Any, task_id: str, exc: BaseException, *, hostname: str | None = None
) -> None:
    """``task_id`` (another task than the running one) failed with ``exc``: ``FAILURE`` in the
    result backend and ``task-failed``."""
    try:
        task.backend.mark_as_failure(task_id, exc)
    except Exception as error:
        log.warning("FAILURE state of %s not stored: %s", task_id, error)
    send_task_event(
        task.app, "task-failed", task_id, hostname=hostname, exception=saferepr(exc), traceback=""
    )


def publish_progress(
    task: Any, job_id: str, meta: dict[str, Any], *, hostname: str | None, stats: CaptureStats
) -> None:
    """Store ``meta`` as the task's ``PROGRESS`` state and send it as a ``task-progress`` event
    (with ``result`` = :func:`progress_text`, what Flower shows).

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
            dispatcher.send(
                "task-progress", uuid=job_id, retry=False, result=progress_text(meta), **meta
            )
    except Exception as exc:
        stats.celery_errors += 1
        log.warning("task-progress event failed for %s: %s", job_id, exc)


class CeleryStatePublisher:
    """Publishes each job's latest ``PROGRESS`` numbers from one daemon thread per process.

    Submissions are kept per *key* (latest wins per key): a job's own run uses the job id; a
    canvas part that publishes its parent job's numbers uses a key of its own, so two parts in
    one process never drop or wait for each other's submissions.
    """

    def __init__(self, stats: CaptureStats, on_stuck: Callable[[], None] | None = None) -> None:
        """``on_stuck`` is called (on the task's thread) when a call outlasts its wait."""
        self._stats = stats
        self._on_stuck = on_stuck
        self._cond = threading.Condition()
        self._open: set[str] = set()  # keys whose run has not finished
        self._pending: dict[str, tuple[Any, str, dict[str, Any], str | None, int]] = {}
        self._published: dict[str, int] = {}  # per key, the last submission published
        self._seq = 0
        self._current: str | None = None  # the key whose call is under way
        self._stuck = False  # a call outlasted its submitter's wait and has not returned
        self._thread: threading.Thread | None = None

    def submit(
        self,
        task: Any,
        job_id: str,
        meta: dict[str, Any],
        hostname: str | None,
        wait_s: float,
        *,
        key: str | None = None,
    ) -> bool:
        """Publish ``meta`` as the job's latest numbers, waiting up to ``wait_s`` for it unless
        the publisher is stuck; True when published before returning.

        Args:
            key: what latest-wins and :meth:`finish` apply to (default: ``job_id``).
        """
        key = key or job_id
        with self._cond:
            self._seq += 1
            seq = self._seq
            self._pending[key] = (task, job_id, meta, hostname, seq)
            self._open.add(key)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="progress-celery-state", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()
            if self._stuck or wait_s <= 0:
                return False
            done = self._cond.wait_for(
                lambda: self._published.get(key, 0) >= seq or self._stuck, timeout=wait_s
            )
            if self._published.get(key, 0) >= seq:
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

    def finish(self, key: str) -> None:
        """The run ended: drop the key's pending numbers (its result comes next)."""
        with self._cond:
            self._pending.pop(key, None)
            self._published.pop(key, None)
            self._open.discard(key)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending))
                key = next(iter(self._pending))
                task, job_id, meta, hostname, seq = self._pending.pop(key)
                self._current = key
            try:
                publish_progress(task, job_id, meta, hostname=hostname, stats=self._stats)
            except Exception:  # never kill the thread
                log.exception("could not publish the PROGRESS state of job %s", job_id)
            with self._cond:
                self._current = None
                if key in self._open:
                    self._published[key] = max(self._published.get(key, 0), seq)
                if self._stuck:
                    self._stuck = False
                    log.warning("PROGRESS states are written again")
                self._cond.notify_all()
