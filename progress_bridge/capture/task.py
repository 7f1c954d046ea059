"""``ProgressTask``: one-line progress for a Celery task, and the reporter plain functions receive.

Adopt it with ``@app.task(base=ProgressTask, bind=True)`` and report from the task body::

    self.declare_zones(zones, pages)
    self.zone_processing("p1-z0", tool="pdfplumber")
    self.zone_completed("p1-z0", tool="pdfplumber", confidence=0.93, duration_ms=41)
    self.set_progress(operation="tables")          # percent follows from zones when omitted

Plain functions take ``self.progress`` (a :class:`ProgressReporter`), which has the same four
methods. The lifecycle (queued, started, retrying, completed, failed, cancelled) is written by the
signal handlers of :mod:`progress_bridge.signals`, connected when this module is imported.

Publishing: ``task.submit(*args, owner="alice", document_id="doc-1")`` (or ``apply_async`` with
``headers={"progress_owner": ..., "progress_document": ...}``) records who owns the job. A canvas
child published with ``headers={"progress_parent": job_id}`` reports its zones, and summed zone
counters, to that parent job's stream; its own lifecycle stays in its own stream. With a
``progress_weight`` header (its share of the parent job, 0 < weight <= 1; ``submit(weight=...)``)
it also adds its own rising percent, scaled by that share, to the parent's ``progress_bp``
counter (basis points of the whole job), from which the store derives the parent's percent: it
only rises, whatever the order in which children declare zones (see ``append.lua``).

The calls' contract (validation, coalescing, Redis errors never raised) is in :mod:`.reporter`.
A delivery of a job that has already ended (a reaper declared its worker lost, then the broker
delivered the message again; or the job was cancelled while queued) is not run: it is recorded
as ``REVOKED`` (result backend and a ``task-revoked`` event) and acknowledged.
The last coalesced update is written when the task returns, inside :meth:`ProgressTask.__call__`,
before Celery stores the result: a write after that would set Celery's state back to
``PROGRESS`` over ``SUCCESS``/``FAILURE``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Task
from celery._state import _task_stack
from celery.exceptions import Ignore
from celery.result import AsyncResult

from ..events.schema import JOB_ID_PATTERN, ZoneInfo
from ..exceptions import InvalidEvent
from . import signals as _signals
from .celery_state import mark_revoked
from .envelope import (
    HEADER_DOCUMENT,
    HEADER_OWNER,
    HEADER_PARENT,
    HEADER_WEIGHT,
    envelope_of,
    valid_weight,
)
from .producer import capture_for
from .reporter import ProgressReporter

__all__ = ["ProgressTask"]


class ProgressTask(Task):  # type: ignore[misc]  # celery ships no type hints
    """Celery task base that reports progress; use with ``bind=True``.

    Celery's ``PROGRESS`` state (``AsyncResult.info``) and a ``task-progress`` Celery event carry
    the same numbers as the stream, at the same (coalesced) rate.
    """

    #: Set False on a subclass (or a task) to write no lifecycle events for it.
    track_progress = True
    _progress_capture = True  # the marker the signal handlers look for

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task (as ``Task.__call__`` does), then end its reporter before returning.

        Celery's tracer stores the result (``SUCCESS``/``FAILURE``) right after this returns or
        raises, and only then sends task_success/task_failure: the pending coalesced progress
        (with its ``update_state(PROGRESS)``) must be written here, not in those handlers, or it
        would overwrite the stored result and ``AsyncResult`` would never be ready.
        """
        outer = self.request
        ended = getattr(outer, "_progress_ended", None)
        if ended and outer.id:
            # task_prerun found the job already ended: a reaper declared its worker lost (and the
            # broker delivered the message again later), or it was cancelled while queued. Running
            # it would write after its terminal event and do the work twice; Celery acks it.
            reason = f"job {outer.id} already ended ({ended}); this delivery is not run"
            mark_revoked(self, outer.id, reason, request=outer, hostname=outer.hostname)
            raise Ignore(reason)
        _task_stack.push(self)
        self.push_request(args=args, kwargs=kwargs)
        try:
            return self.run(*args, **kwargs)
        finally:
            reporter: ProgressReporter | None = getattr(self.request, "_progress_reporter", None)
            self.pop_request()
            _task_stack.pop()
            if reporter is not None:
                try:
                    reporter.close()
                except Exception:  # progress is advisory: never fail the task here
                    _signals.log.exception("could not flush progress of job %s", reporter.job_id)
            if reporter is not None and outer.id == reporter.job_id:
                # The signal handlers read the tracer's request (for the run's duration).
                outer._progress_reporter = reporter

    @property
    def progress(self) -> ProgressReporter:
        """The reporter of the current run (created on first use, one per run and thread)."""
        request = self.request
        reporter: ProgressReporter | None = getattr(request, "_progress_reporter", None)
        if reporter is None:
            if not request.id:
                raise InvalidEvent(
                    f"{self.name}: progress calls need a running task (none is running)"
                )
            capture = capture_for(self.app)
            reporter = ProgressReporter(
                capture,
                envelope_of(request),
                task=self,
                aggregate_to=getattr(request, HEADER_PARENT, None),
                weight=getattr(request, HEADER_WEIGHT, None),
                hostname=request.hostname,
            )
            request._progress_reporter = reporter
            running = capture.liveness.running(request.id)
            if running is not None and running.reporter is None:
                running.reporter = reporter  # so a re-statement writes its zones too
        return reporter

    def declare_zones(
        self, zones: Sequence[ZoneInfo | Mapping[str, Any]], pages: Sequence[Any] = ()
    ) -> None:
        """See :meth:`ProgressReporter.declare_zones`."""
        self.progress.declare_zones(zones, pages)

    def zone_processing(self, zone_id: str, *, tool: str) -> None:
        """See :meth:`ProgressReporter.zone_processing`."""
        self.progress.zone_processing(zone_id, tool=tool)

    def zone_completed(
        self,
        zone_id: str,
        *,
        tool: str,
        confidence: float | None = None,
        duration_ms: int | None = None,
        status: str = "completed",
        error: str | None = None,
        summary: str | None = None,
    ) -> None:
        """See :meth:`ProgressReporter.zone_completed`."""
        self.progress.zone_completed(
            zone_id,
            tool=tool,
            confidence=confidence,
            duration_ms=duration_ms,
            status=status,
            error=error,
            summary=summary,
        )

    def set_progress(self, percent: float | None = None, *, operation: str | None = None) -> None:
        """See :meth:`ProgressReporter.set_progress`."""
        self.progress.set_progress(percent, operation=operation)

    def submit(
        self,
        *args: Any,
        owner: str | None = None,
        document_id: str | None = None,
        parent: str | None = None,
        weight: float | None = None,
        **options: Any,
    ) -> AsyncResult:
        """Publish the task (``apply_async(args, **options)``) with the progress headers set.

        Args:
            owner: who may watch the job (recorded in the queued event and the owner index).
            document_id: the document the job works on.
            parent: report zones to this job (a canvas child of the job the user watches).
            weight: with ``parent``, this child's share of the parent job (0 < weight <= 1); its
                percent, scaled by the share, is added to the parent's.
        """
        for label, value in (("owner", owner), ("document_id", document_id)):
            if value is not None and not (isinstance(value, str) and 1 <= len(value) <= 200):
                raise InvalidEvent(f"{label} must be 1 to 200 characters of text, got {value!r}")
        if parent is not None and not (
            isinstance(parent, str) and re.fullmatch(JOB_ID_PATTERN, parent)
        ):
            raise InvalidEvent(f"parent must be a job id, got {parent!r}")
        if weight is not None and (parent is None or valid_weight(weight) is None):
            raise InvalidEvent(f"weight must be a share in (0, 1] of a parent, got {weight!r}")
        headers = dict(options.pop("headers", None) or {})
        for name, value in ((HEADER_OWNER, owner), (HEADER_DOCUMENT, document_id)):
            if value is not None:
                headers[name] = value
        if parent is not None:
            headers[HEADER_PARENT] = parent
        if weight is not None:
            headers[HEADER_WEIGHT] = float(weight)
        kwargs = options.pop("kwargs", None)
        return self.apply_async(args, kwargs, headers=headers, **options)

    def retry(
        self,
        args: Any = None,
        kwargs: Any = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: Any = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Any:
        # Remember why, for the processing_retrying event written when the retry is published.
        self.request._progress_retry = (exc, countdown)
        return super().retry(args, kwargs, exc, throw, eta, countdown, max_retries, **options)

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> AsyncResult:
        # The publish signal only gets the task's name; tell it which app (and settings) to use.
        with _signals.publishing(self):
            return super().apply_async(args, kwargs, **options)


_signals.connect_signals()
