"""A job's parts and its end: the ids of a split job's tasks, revoking a job, and the stop
check a running task polls to learn that its job ended elsewhere (cancelled, or failed by a
sibling part)."""

from __future__ import annotations

import re
import time
from typing import Any, NoReturn

from celery.exceptions import Ignore
from celery.result import GroupResult

from progress_bridge.capture.celery_state import mark_revoked, progress_text
from progress_bridge.capture.envelope import envelope_of
from progress_bridge.capture.producer import Capture, capture_for, record_event
from progress_bridge.config import Settings
from progress_bridge.events import ProcessingCancelled

__all__ = [
    "StopCheck",
    "children_group_id",
    "job_of_part",
    "part_id",
    "progress_text_of",
    "revoke_job",
    "settings_of",
    "stop_run",
]

_PART_ID = re.compile(r"^(.+)-p[0-9]+$")


def part_id(job_id: str, first_page: int) -> str:
    """The task id of the job's part that starts at ``first_page``."""
    return f"{job_id}-p{first_page}"


def job_of_part(task_id: str) -> str | None:
    """The job of a part's task id (:func:`part_id`), else ``None``."""
    match = _PART_ID.match(task_id)
    return match.group(1) if match else None


def children_group_id(job_id: str) -> str:
    """Id under which the job's canvas children are saved as a ``GroupResult`` (for revoking)."""
    return f"{job_id}.children"


def revoke_job(celery_app: Any, job_id: str) -> list[str]:
    """Revoke the job's task and its canvas children; return the revoked task ids.

    Call it after the job's ``processing_cancelled`` is written: workers drop queued messages of
    revoked ids, and running parts stop at their next page or zone because the job has ended
    (:class:`StopCheck`). A job that fans out after this call finds itself ended and its children
    stop before their first page, so no work outlives the cancel by more than a poll interval.
    """
    ids = [job_id]
    children = GroupResult.restore(children_group_id(job_id), app=celery_app)
    if children is not None:
        ids += [child.id for child in children.results]
    celery_app.control.revoke(ids)
    return ids


def settings_of(celery_app: Any) -> Settings:
    """The app's :class:`Settings` (``conf.progress_settings``), else the capture's."""
    configured = celery_app.conf.get("progress_settings")
    return configured if isinstance(configured, Settings) else capture_for(celery_app).settings


class StopCheck:
    """``should_stop`` for :func:`process_document`: true once ``job_id`` has ended.

    Reads the job's terminal marker from its snapshot at most every ``interval_s`` (one HMGET),
    so cancellation is cooperative and works with every pool (threads and solo cannot terminate a
    running task) and on every host. A Redis error reads as "keep going": progress is advisory,
    and while the producer knows Redis is away the check does not wait for it at all
    (:meth:`Capture.job_state`), so a stalled Redis holds the task no longer than a progress call.
    """

    def __init__(self, capture: Capture, job_id: str, interval_s: float) -> None:
        self._capture = capture
        self.job_id = job_id
        self.interval_s = interval_s
        self._next = 0.0
        #: The terminal event type that stopped the job, once seen.
        self.ended: str | None = None

    def __call__(self) -> bool:
        if self.ended is not None:
            return True
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.interval_s
        self.ended = self._capture.job_state(self.job_id)[1]
        return self.ended is not None


def stop_run(task: Any, stop: StopCheck, *, own_event: bool) -> NoReturn:
    """End this run because its job ended elsewhere (cancelled, or failed by a sibling).

    Records the run as REVOKED in Celery, result backend and Flower (a chord part counts as
    returned, so the chord does not wait for it forever) and raises ``Ignore`` so no success or
    failure signal fires. A canvas child also writes ``processing_cancelled`` in its own stream
    (``own_event``); the job itself already has its terminal event.
    """
    request = task.request
    reporter = getattr(request, "_progress_reporter", None)
    if reporter is not None:
        reporter.close()  # its last PROGRESS goes out now, never after the REVOKED below
    reason = f"job {stop.job_id} ended ({stop.ended or 'cancelled'})"
    if own_event:
        record_event(task.app, ProcessingCancelled(**envelope_of(request), reason=reason))
    stopped_at = progress_text_of(stop._capture, request.id)
    mark_revoked(
        task, request.id, reason, request=request, hostname=request.hostname, result=stopped_at
    )
    raise Ignore(reason)


def progress_text_of(capture: Capture, job_id: str) -> str | None:
    """Where the job's snapshot says it got to, as Flower shows progress; None if unknown."""
    try:
        snap = capture.store.snapshot(job_id)
    except Exception:  # advisory: Flower keeps its last numbers then
        return None
    if snap is None:
        return None
    numbers = snap.model_dump()
    if snap.finished:  # an ended job is doing nothing (its page shows no operation either)
        numbers.update(current_operation=None, current_zone=None)
    return progress_text(numbers)
