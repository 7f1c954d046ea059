"""Celery signal handlers that write each ProgressTask job's lifecycle into its stream.

Connected once per process by :func:`connect_signals`, which :mod:`progress_bridge.task` calls
on import, so any process that imports a ProgressTask (publisher, worker main process, pool
child) has them. They act only for tasks with ``track_progress`` (ProgressTask) and take
``sender=None, **kwargs`` so new Celery arguments don't break them.

=====================  ==========================  =================================================
signal                 where it runs               event
=====================  ==========================  =================================================
before_task_publish    publisher                   processing_queued (owner/document from headers;
                                                   not for the republish of ``self.retry()``)
task_prerun            pool child / thread         processing_started (attempt, see below)
before_task_publish    pool child / thread, when   processing_retrying (attempt that comes next),
  (retries > 0)        self.retry() republishes    written before the next attempt can start
task_success           pool child / thread         processing_completed (short result summary)
task_failure           pool child / thread, or     processing_failed (exception type and message,
                       worker main process for a   never a traceback; ``lost=True`` for
                       lost worker                 WorkerLostError)
task_revoked           worker main process         processing_cancelled (and, for a terminated run,
                                                   a task-revoked that Flower applies over PROGRESS)
task_postrun           pool child / thread         (none: releases the attempt's lease)
worker_ready           worker main process         (none: starts the reaper, :mod:`.reaper`)
=====================  ==========================  =================================================

Leases: ``processing_started`` registers the job as running with a lease that the process
running it renews (:mod:`.liveness`); a job whose lease expires because its process is gone
(its worker's main process killed with it, a lost host) is ended or redelivered by a reaper.
An attempt of a job that has already ended (a reaper declared it lost and the broker delivered
its message again, or it was cancelled while queued) writes nothing and is not run.

Attempts: attempt = max(retries + 1, attempt recorded in the job's snapshot + 1), so a retry and a
redelivered message (a worker killed with ``acks_late`` + ``task_reject_on_worker_lost``) both
start a new attempt. A killed worker without redelivery reaches Celery's WorkerLostError path
(``Request.on_failure`` in the worker main process sends ``task_failure``), which ends the job
failed with ``lost=True``. The store refuses a second terminal event (DuplicateTerminal), which
is counted and otherwise ignored.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from celery import signals, states
from celery._state import get_current_app

from ..events.schema import (
    ProcessingCancelled,
    ProcessingCompleted,
    ProcessingFailed,
    ProcessingQueued,
    ProcessingRetrying,
    ProcessingStarted,
    ProgressEvent,
)
from .celery_state import send_task_event
from .envelope import HEADER_DOCUMENT, HEADER_OWNER, HEADER_PARENT, envelope_of
from .producer import Capture, capture_for
from .reaper import start_reaper, stop_reaper

__all__ = ["connect_signals", "publishing", "summarize_result"]

log = logging.getLogger("progress_bridge.capture")

#: Seconds after a terminated run's ``task-revoked`` (for Flower) that it is sent again.
REVOKED_RESEND_S = 1.0
#: Longest result summary and error message written to an event (characters).
SUMMARY_CHARS = 200
ERROR_CHARS = 500

_local = threading.local()


@contextlib.contextmanager
def publishing(task: Any) -> Iterator[None]:
    """Tell the publish handler which task (hence app and settings) is being published."""
    previous = getattr(_local, "task", None)
    _local.task = task
    try:
        yield
    finally:
        _local.task = previous


def _tracked(task: Any) -> bool:
    # A class attribute set by ProgressTask (``progress`` itself is a property: don't touch it).
    return getattr(type(task), "_progress_capture", False) is True and task.track_progress is True


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summarize_result(result: Any) -> str | None:
    """A one-line summary of a task's return value, for ``processing_completed``."""
    if result is None:
        return None
    if isinstance(result, dict) and isinstance(result.get("summary"), str):
        return _short(result["summary"], SUMMARY_CHARS)
    if isinstance(result, dict | list | tuple | set):
        return f"{type(result).__name__} of {len(result)} items"
    return _short(repr(result), SUMMARY_CHARS)


def _emit(capture: Capture, event: ProgressEvent) -> None:
    try:
        capture.send(event)
    except Exception:  # a bug here must not fail the task or the worker
        log.exception("could not record %s for job %s", event.type, event.job_id)


def _flush_reporter(request: Any) -> tuple[float | None, Any]:
    reporter = getattr(request, "_progress_reporter", None)
    if reporter is None:
        return None, None
    try:
        reporter.flush()
    except Exception:
        log.exception("could not flush progress of job %s", getattr(request, "id", "?"))
    return reporter.started_at, reporter


def _on_publish(sender: Any = None, headers: Any = None, **_: Any) -> None:
    if not isinstance(headers, dict) or not headers.get("id"):
        return
    task = getattr(_local, "task", None)
    if task is None or task.name != sender:
        app = get_current_app()
        task = app.tasks.get(sender) if isinstance(sender, str) else None
    if task is None or not _tracked(task):
        return
    if headers.get("retries"):
        # The republish of self.retry(), in the worker, before the next attempt can start: the
        # only point where "retrying" is sure to precede the next "started".
        _retrying(task, task.request)
        return
    parent = headers.get(HEADER_PARENT) or headers.get("parent_id")
    event = ProcessingQueued(
        job_id=headers["id"],
        parent_id=parent,
        root_id=headers.get("root_id"),
        owner=headers.get(HEADER_OWNER),
        document_id=headers.get(HEADER_DOCUMENT),
        task_name=sender if isinstance(sender, str) else task.name,
    )
    _emit(capture_for(task.app), event)


def _retrying(task: Any, request: Any) -> None:
    if not getattr(request, "id", None):
        return
    _flush_reporter(request)
    attempt = int(getattr(request, "progress_attempt", None) or (request.retries or 0) + 1)
    cause, countdown = getattr(request, "_progress_retry", (None, None))
    if cause is None:
        cause = sys.exc_info()[1]
    if cause is None:
        text = "retry requested"
    elif isinstance(cause, BaseException):
        text = f"{type(cause).__name__}: {cause}"
    else:
        text = str(cause)
    event = ProcessingRetrying(
        **envelope_of(request),
        attempt=attempt + 1,
        reason=_short(text, ERROR_CHARS),
        countdown_s=countdown,
    )
    _emit(capture_for(task.app), event)


def _on_prerun(sender: Any = None, task_id: str | None = None, **_: Any) -> None:
    if not _tracked(sender) or not task_id:
        return
    request = sender.request
    capture = capture_for(sender.app)
    stored_attempt, ended = capture.job_state(task_id)
    if ended:
        # The job ended while this message waited (a reaper declared its worker lost, or it
        # was cancelled): ProgressTask.__call__ skips the run (see its docstring).
        request._progress_ended = ended
        log.warning("job %s already ended (%s): not starting another attempt", task_id, ended)
        return
    attempt = max(int(request.retries or 0) + 1, stored_attempt + 1)
    request.progress_attempt = attempt
    # "hostname/pid": which pool child runs the attempt (operators, and the lost-worker test).
    worker = f"{request.hostname}/{os.getpid()}"
    env = envelope_of(request)
    event = ProcessingStarted(**env, attempt=attempt, worker=worker)
    try:
        capture.start_job(event, _lease_info(sender, request, env, attempt, worker))
    except Exception:  # a bug here must not fail the task or the worker
        log.exception("could not record processing_started for job %s", task_id)


def _lease_info(
    task: Any, request: Any, env: dict[str, Any], attempt: int, worker: str
) -> dict[str, Any]:
    """What a reaper needs to end this attempt's job when its process is gone."""
    properties = getattr(request, "properties", None) or {}
    return {
        "task": task.name,
        "attempt": attempt,
        "worker": worker,
        # A killed worker's message comes back (acks_late + reject_on_worker_lost): the reaper
        # hands it back to the broker at once instead of ending the job.
        "redeliver": bool(task.acks_late and task.reject_on_worker_lost),
        "tag": properties.get("delivery_tag"),
        "parent": getattr(request, HEADER_PARENT, None),
        "owner": env.get("owner"),
        "document_id": env.get("document_id"),
    }


def _on_postrun(sender: Any = None, task_id: str | None = None, **_: Any) -> None:
    if not _tracked(sender) or not task_id:
        return
    # The attempt is over in this process (its terminal or retrying event, if any, is written or
    # queued): stop renewing the lease, and give it up if nothing else removed it (a canvas that
    # fanned out, an Ignore), so no reaper ends a job that is not running here any more.
    capture_for(sender.app).end_job(task_id)


def _on_success(sender: Any = None, result: Any = None, **_: Any) -> None:
    if not _tracked(sender):
        return
    request = sender.request
    started, _reporter = _flush_reporter(request)
    duration = int((time.monotonic() - started) * 1000) if started is not None else None
    try:
        summary = summarize_result(result)
    except Exception:
        summary = None
    event = ProcessingCompleted(
        **envelope_of(request), result_summary=summary, duration_ms=duration
    )
    _emit(capture_for(sender.app), event)


def _on_failure(
    sender: Any = None, task_id: str | None = None, exception: Any = None, **_: Any
) -> None:
    if not _tracked(sender) or not task_id:
        return
    from billiard.exceptions import WorkerLostError

    request = sender.request
    if request.id != task_id:  # no context pushed: build the envelope from the id alone
        env: dict[str, Any] = {"job_id": task_id}
    else:
        _flush_reporter(request)
        env = envelope_of(request)
    lost = isinstance(exception, WorkerLostError)
    message = failure_message(exception)
    event = ProcessingFailed(
        **env,
        error_type=type(exception).__name__ if exception is not None else "Exception",
        error_message=_short(message or "(no message)", ERROR_CHARS),
        lost=lost,
    )
    _emit(capture_for(sender.app), event)


def failure_message(exception: BaseException | None) -> str:
    """What a person reads about a failure: the exception's message, or for Celery's time limits
    (whose message is a bare number of seconds) what happened."""
    from billiard.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded

    if exception is None:
        return ""
    if isinstance(exception, TimeLimitExceeded):
        limit = exception.args[0] if exception.args else None
        after = f" of {limit:g} s" if isinstance(limit, int | float) else ""
        return f"ran past its hard time limit{after} and was stopped by the worker"
    if isinstance(exception, SoftTimeLimitExceeded) and not str(exception):
        return "ran past its soft time limit"
    return str(exception)


def _on_revoked(
    sender: Any = None,
    request: Any = None,
    terminated: bool = False,
    expired: bool = False,
    **_: Any,
) -> None:
    if not _tracked(sender) or request is None:
        return
    context = getattr(request, "_context", None) or request
    if not getattr(context, "id", None):
        return
    reason = "expired" if expired else "terminated" if terminated else "revoked"
    event = ProcessingCancelled(**envelope_of(context), reason=reason)
    _emit(capture_for(sender.app), event)
    if terminated:
        # It was running, so Flower may show it in the custom PROGRESS state, which outranks
        # Celery's own task-revoked there: say REVOKED outright (see .celery_state). The pool
        # process is being terminated meanwhile, and a progress event it published just before
        # the cancel above may still arrive after this one (its later ones are refused with the
        # job ended, and not sent): say it once more when any such straggler is in.
        def revoked() -> None:
            send_task_event(
                sender.app,
                "task-revoked",
                context.id,
                hostname=getattr(context, "hostname", None),
                terminated=True,
                state=states.REVOKED,
            )

        revoked()
        again = threading.Timer(REVOKED_RESEND_S, revoked)
        again.daemon = True
        again.start()


def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    # The worker's main process (any pool): run a reaper there (see progress_bridge.capture.reaper).
    app = getattr(sender, "app", None)
    if app is not None:
        start_reaper(app)


def _on_worker_shutdown(sender: Any = None, **_: Any) -> None:
    app = getattr(sender, "app", None)
    if app is not None:
        stop_reaper(app)


_HANDLERS = (
    (signals.before_task_publish, _on_publish),
    (signals.task_prerun, _on_prerun),
    (signals.task_postrun, _on_postrun),
    (signals.worker_ready, _on_worker_ready),
    (signals.worker_shutdown, _on_worker_shutdown),
    (signals.task_success, _on_success),
    (signals.task_failure, _on_failure),
    (signals.task_revoked, _on_revoked),
)


def connect_signals() -> None:
    """Connect the handlers (idempotent: each has a ``dispatch_uid``)."""
    for signal, handler in _HANDLERS:
        signal.connect(handler, weak=False, dispatch_uid=f"progress_bridge.{handler.__name__}")
