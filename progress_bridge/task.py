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

Contract: every call validates its arguments and raises :class:`InvalidEvent` at the call site
(nothing is written then). Redis errors never raise: see :mod:`progress_bridge._producer`.
Progress writes are coalesced to ``settings.progress_max_rate_hz`` per job; a pending update is
written before the next zone or lifecycle event, when the task returns, and otherwise by a
per-process timer thread as soon as it is due (so the last update before a long silent stretch of
work is not held back). "When the task returns" is inside :meth:`ProgressTask.__call__`, before
Celery stores the result: a write after that would set Celery's state back to ``PROGRESS`` over
``SUCCESS``/``FAILURE``. Once the run has ended (:meth:`ProgressReporter.close`), later writes go
to the stream only and never call ``update_state``.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Task
from celery._state import _task_stack
from celery.result import AsyncResult
from pydantic import ValidationError

from . import signals as _signals
from ._producer import Capture, EtaEstimator, capture_for
from .events import (
    JOB_ID_PATTERN,
    ExportCompleted,
    ExportFailed,
    ExportFormat,
    ExportProgress,
    ExportStarted,
    PageInfo,
    ProcessingProgress,
    ProgressEvent,
    ZoneCompleted,
    ZoneInfo,
    ZoneProcessing,
    ZonesDeclared,
    ZoneStatus,
)
from .exceptions import InvalidEvent

__all__ = [
    "HEADER_DOCUMENT",
    "HEADER_OWNER",
    "HEADER_PARENT",
    "HEADER_WEIGHT",
    "ProgressReporter",
    "ProgressTask",
]

#: Message headers read by the worker and the publish signal.
HEADER_OWNER = "progress_owner"
HEADER_DOCUMENT = "progress_document"
HEADER_PARENT = "progress_parent"
#: A canvas child's share of its parent job (0 < weight <= 1), for the parent's percent.
HEADER_WEIGHT = "progress_weight"
#: Snapshot counter of a canvas job's progress in basis points, summed from its children.
PROGRESS_BP = "progress_bp"

_PENDING, _PROCESSING, _DONE = 0, 1, 2


def _validation_message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def envelope_of(request: Any) -> dict[str, Any]:
    """Envelope fields of events about the job running under ``request`` (a Celery Context)."""
    parent = getattr(request, HEADER_PARENT, None) or getattr(request, "parent_id", None)
    return {
        "job_id": request.id,
        "parent_id": parent,
        "root_id": getattr(request, "root_id", None),
        "owner": getattr(request, HEADER_OWNER, None) or None,
        "document_id": getattr(request, HEADER_DOCUMENT, None) or None,
    }


def _valid_weight(value: Any) -> float | None:
    """A child's share of its parent (a header, so untrusted): 0 < weight <= 1, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    weight = float(value)
    return weight if 0.0 < weight <= 1.0 else None


def parent_envelope(child: Mapping[str, Any], parent_id: str) -> dict[str, Any]:
    """Envelope of the events a canvas child writes to its parent job's stream.

    They are the parent's events: ``job_id`` is the parent, which has no parent of its own here,
    and its root is the canvas root (the child's ``root_id``, unless the child is itself the root
    because it was published on its own). Owner and document are left out: the child carries
    none (a canvas child never enters its user's job list), the parent's snapshot keeps its own,
    and readers take them from there (an owner here would also index the parent under it).
    """
    root = child.get("root_id")
    return {
        "job_id": parent_id,
        "parent_id": None,
        "root_id": root if root not in (None, child["job_id"]) else None,
        "owner": None,
        "document_id": None,
    }


class ProgressReporter:
    """Progress of one task run. Plain functions receive it as their progress callback.

    A run reports from one thread; an internal lock serialises its calls with the process's
    trailing-flush thread, which writes a coalesced update once it is due.
    """

    def __init__(
        self,
        capture: Capture,
        envelope: Mapping[str, Any],
        *,
        task: Any = None,
        aggregate_to: str | None = None,
        weight: float | None = None,
        hostname: str | None = None,
    ) -> None:
        self._capture = capture
        self._send = capture.send
        self._env = dict(envelope)
        self.job_id: str = self._env["job_id"]
        # Zone events of a canvas child go to the parent job the user watches, and events in a
        # job's stream describe that job: the parent's envelope, not the child's (the snapshot
        # copies parent_id/root_id/owner/document_id from them).
        self._zone_env = parent_envelope(self._env, aggregate_to) if aggregate_to else self._env
        self._aggregate = aggregate_to is not None
        # This child's share of the parent job, and the basis points of it already sent.
        self._weight = _valid_weight(weight) if self._aggregate else None
        self._bp_sent = 0
        self._explicit = False  # set_progress gave a percent: zones no longer derive it
        self._task = task
        self._hostname = hostname
        # The task thread and the trailing-flush thread both write; calls nest (flush inside
        # zone_completed), hence reentrant. Uncontended, it costs well under a microsecond.
        self._lock = threading.RLock()
        self._scheduled = False
        self._interval = 1.0 / capture.settings.progress_max_rate_hz
        self._next_write = 0.0
        self._zones: dict[str, ZoneInfo] = {}
        self._state: dict[str, int] = {}
        self._indexes: set[int] = set()
        self._done = 0
        self._percent = 0.0
        self._operation: str | None = None
        self._zone: str | None = None
        self._dirty = False
        self._closed = False
        self._pending_counts: dict[str, int] = {}
        self._pending_export: ProgressEvent | None = None
        self._eta = EtaEstimator()
        self.started_at = time.monotonic()

    # -- the four calls the PDF functions use --------------------------------------------------

    def declare_zones(
        self, zones: Sequence[ZoneInfo | Mapping[str, Any]], pages: Sequence[Any] = ()
    ) -> None:
        """Declare zones (all at once, or page by page); ids and indexes must be new.

        Raises:
            InvalidEvent: a zone or page is malformed, or an id or index was declared before.
        """
        with self._lock:
            self._declare_zones(zones, pages)

    def _declare_zones(
        self, zones: Sequence[ZoneInfo | Mapping[str, Any]], pages: Sequence[Any]
    ) -> None:
        infos = [self._zone_info(z) for z in zones]
        page_infos = [self._page_info(p) for p in pages]
        ids = set()
        for info in infos:
            if info.zone_id in self._zones or info.zone_id in ids:
                raise InvalidEvent(f"zone {info.zone_id!r} is declared twice", job_id=self.job_id)
            if info.index in self._indexes:
                raise InvalidEvent(
                    f"zone index {info.index} of zone {info.zone_id!r} is already used",
                    job_id=self.job_id,
                )
            ids.add(info.zone_id)
            self._indexes.add(info.index)
        for info in infos:
            self._zones[info.zone_id] = info
            self._state[info.zone_id] = _PENDING
        self.flush()
        total = None if self._aggregate else len(self._zones)
        self._send(
            ZonesDeclared(**self._zone_env, zones=infos, pages=page_infos, zones_total=total)
        )
        if self._aggregate:
            self._send(
                ProcessingProgress(**self._zone_env, percent=0, current_operation=self._operation),
                {"zones_total": len(infos)},
            )

    def zone_processing(self, zone_id: str, *, tool: str) -> None:
        """Mark a declared zone as being processed by ``tool``.

        Raises:
            InvalidEvent: the zone was not declared, or it already completed.
        """
        with self._lock:
            self._zone_processing(zone_id, tool)

    def _zone_processing(self, zone_id: str, tool: str) -> None:
        info = self._declared(zone_id)
        if self._state[zone_id] == _DONE:
            raise InvalidEvent(f"zone {zone_id!r} already completed", job_id=self.job_id)
        self.flush()
        event = self._build(
            ZoneProcessing,
            self._zone_env,
            zone_id=zone_id,
            zone_index=info.index,
            page=info.page,
            kind=info.kind,
            processing_tool=tool,
        )
        self._send(event)
        self._state[zone_id] = _PROCESSING
        self._zone = zone_id

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
        """Record a zone's end: ``status`` is ``"completed"`` or ``"failed"`` (with ``error``).

        Raises:
            InvalidEvent: unknown zone, zone completed twice, or a value off-schema (confidence
                outside 0..1 or NaN, negative duration, unknown status).
        """
        with self._lock:
            self._zone_completed(zone_id, tool, confidence, duration_ms, status, error, summary)

    def _zone_completed(
        self,
        zone_id: str,
        tool: str,
        confidence: float | None,
        duration_ms: int | None,
        status: str,
        error: str | None,
        summary: str | None,
    ) -> None:
        info = self._declared(zone_id)
        if self._state[zone_id] == _DONE:
            raise InvalidEvent(f"zone {zone_id!r} completed twice", job_id=self.job_id)
        if status not in (ZoneStatus.COMPLETED, ZoneStatus.FAILED):
            raise InvalidEvent(
                f"zone status must be 'completed' or 'failed', got {status!r}", job_id=self.job_id
            )
        self.flush()
        event = self._build(
            ZoneCompleted,
            self._zone_env,
            zone_id=zone_id,
            zone_index=info.index,
            page=info.page,
            processing_tool=tool,
            status=status,
            confidence=confidence,
            duration_ms=duration_ms,
            error=error,
            summary=summary,
        )
        self._send(event)
        self._state[zone_id] = _DONE
        self._done += 1
        if self._zone == zone_id:
            self._zone = None
        if self._aggregate:
            self._pending_counts["zones_completed"] = (
                self._pending_counts.get("zones_completed", 0) + 1
            )
        self._update(None, None, time.monotonic())

    def set_progress(self, percent: float | None = None, *, operation: str | None = None) -> None:
        """Set overall progress (0..100) and/or the current operation; writes are coalesced.

        ``percent=None`` derives it from zones completed / declared (or keeps the last value
        when no zones are declared), until the run gives a percent: from then on zone events
        keep the last given percent (zones declared page by page would otherwise pull it back
        and forth). ``operation=None`` keeps the last operation.

        Raises:
            InvalidEvent: percent is not a number, NaN, negative or above 100.
        """
        if percent is not None:
            if type(percent) is not float and (
                isinstance(percent, bool) or not isinstance(percent, int | float)
            ):
                raise InvalidEvent(f"percent must be a number, got {percent!r}", job_id=self.job_id)
            if not 0.0 <= percent <= 100.0:  # NaN fails both comparisons
                raise InvalidEvent(
                    f"percent must be between 0 and 100, got {percent!r}", job_id=self.job_id
                )
        if operation is not None and not isinstance(operation, str):
            raise InvalidEvent(f"operation must be text, got {operation!r}", job_id=self.job_id)
        with self._lock:
            if percent is not None:
                self._explicit = True
            self._update(percent, operation, time.monotonic())

    # -- exports -------------------------------------------------------------------------------

    def export_started(self, export_id: str, fmt: ExportFormat | str) -> None:
        """Announce an export of this job's result (``fmt``: json, markdown or csv)."""
        event = self._build(ExportStarted, self._env, export_id=export_id, format=fmt)
        with self._lock:
            self.flush()
            self._send(event)

    def export_progress(self, export_id: str, fmt: ExportFormat | str, percent: float) -> None:
        """Export progress; coalesced like :meth:`set_progress`."""
        event = self._build(
            ExportProgress, self._env, export_id=export_id, format=fmt, percent=percent
        )
        with self._lock:
            now = time.monotonic()
            if now >= self._next_write:
                self._next_write = now + self._interval
                self._pending_export = None
                self._send(event)
            else:
                self._pending_export = event
                self._capture.stats.coalesced += 1
                self._schedule()

    def export_completed(
        self, export_id: str, fmt: ExportFormat | str, *, size_bytes: int, filename: str
    ) -> None:
        event = self._build(
            ExportCompleted,
            self._env,
            export_id=export_id,
            format=fmt,
            size_bytes=size_bytes,
            filename=filename,
        )
        with self._lock:
            self.flush()
            self._send(event)

    def export_failed(self, export_id: str, fmt: ExportFormat | str, *, error: str) -> None:
        event = self._build(
            ExportFailed, self._env, export_id=export_id, format=fmt, error_message=error
        )
        with self._lock:
            self.flush()
            self._send(event)

    # -- state ---------------------------------------------------------------------------------

    @property
    def percent(self) -> float:
        return self._percent

    @property
    def zones_completed(self) -> int:
        return self._done

    @property
    def zones_total(self) -> int:
        return len(self._zones)

    def flush(self) -> None:
        """Write the pending (coalesced) progress update now, if there is one."""
        with self._lock:
            if self._pending_export is not None:
                event, self._pending_export = self._pending_export, None
                self._send(event)
            if self._dirty:
                self._write(time.monotonic())

    def close(self) -> None:
        """End of the run: write the pending update, then never touch Celery's state again.

        Called by :meth:`ProgressTask.__call__` before Celery stores the task's result, so the
        last ``PROGRESS`` state is written before ``SUCCESS``/``FAILURE`` and never over it. A
        later flush (signal handlers, the trailing-flush thread) still writes to the stream.
        """
        with self._lock:
            self.flush()
            self._closed = True

    def flush_due(self) -> None:
        """Called by the trailing-flush thread: write the pending update if it is due."""
        with self._lock:
            self._scheduled = False
            if self._dirty or self._pending_export is not None:
                now = time.monotonic()
                if now >= self._next_write:
                    self.flush()
                else:
                    self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            self._capture.trailing.schedule(self._next_write, self.flush_due)

    # -- internals -----------------------------------------------------------------------------

    def _update(self, percent: float | None, operation: str | None, now: float) -> None:
        if percent is None:
            derive = self._zones and not self._explicit
            percent = 100.0 * self._done / len(self._zones) if derive else self._percent
        self._percent = float(percent)
        if operation is not None:
            self._operation = operation
        if self._weight is not None:
            # The parent's progress in basis points: this child's share of its rising percent.
            # Only increases are sent, so the parent's sum never goes down.
            bp = math.floor(100.0 * self._weight * self._percent + 1e-6)
            if bp > self._bp_sent:
                self._pending_counts[PROGRESS_BP] = (
                    self._pending_counts.get(PROGRESS_BP, 0) + bp - self._bp_sent
                )
                self._bp_sent = bp
        self._eta.observe(now, self._percent)
        if now >= self._next_write:
            self._write(now)
        else:
            if self._dirty:
                self._capture.stats.coalesced += 1
            self._dirty = True
            self._schedule()

    def _write(self, now: float) -> None:
        self._dirty = False
        self._next_write = now + self._interval
        eta = self._eta.eta_s(self._percent)
        total = len(self._zones)
        if self._pending_counts:
            counts, self._pending_counts = self._pending_counts, {}
            # The store sets percent (and the counters) from the summed counters.
            aggregated = ProcessingProgress(
                **self._zone_env,
                percent=0,
                current_operation=self._operation,
                current_zone=self._zone,
            )
            self._send(aggregated, counts)
        self._send(
            ProcessingProgress(
                **self._env,
                percent=round(self._percent, 2),
                current_operation=self._operation,
                current_zone=self._zone,
                zones_completed=self._done if total else None,
                zones_total=total or None,
                eta_s=eta,
            )
        )
        if self._task is not None and not self._closed:
            self._celery_progress(eta)

    def _celery_progress(self, eta: float | None) -> None:
        meta = {
            "percent": round(self._percent, 2),
            "current_operation": self._operation,
            "current_zone": self._zone,
            "zones_completed": self._done,
            "zones_total": len(self._zones),
            "eta_s": eta,
        }
        task = self._task
        try:
            task.update_state(task_id=self.job_id, state="PROGRESS", meta=meta)
        except Exception as exc:  # the result backend is advisory here too
            self._capture.stats.redis_errors += 1
            _signals.log.warning("update_state(PROGRESS) failed for %s: %s", self.job_id, exc)
        try:
            # Not task.send_event: that reads the thread-local request, and this may run on the
            # trailing-flush thread. No retries: progress never waits for the broker.
            with task.app.events.default_dispatcher(hostname=self._hostname) as dispatcher:
                dispatcher.send("task-progress", uuid=self.job_id, retry=False, **meta)
        except Exception as exc:
            self._capture.stats.redis_errors += 1
            _signals.log.warning("task-progress event failed for %s: %s", self.job_id, exc)

    def _declared(self, zone_id: str) -> ZoneInfo:
        info = self._zones.get(zone_id)
        if info is None:
            raise InvalidEvent(
                f"zone {zone_id!r} was not declared (declare_zones first)", job_id=self.job_id
            )
        return info

    def _build(self, cls: type[Any], env: Mapping[str, Any], **fields: Any) -> ProgressEvent:
        try:
            event: ProgressEvent = cls(**env, **fields)
        except ValidationError as exc:
            name = cls.model_fields["type"].default
            raise InvalidEvent(
                f"invalid {name}: {_validation_message(exc)}", job_id=self.job_id
            ) from None
        return event

    def _zone_info(self, zone: ZoneInfo | Mapping[str, Any]) -> ZoneInfo:
        if isinstance(zone, ZoneInfo):
            return zone
        try:
            return ZoneInfo.model_validate(zone)
        except ValidationError as exc:
            raise InvalidEvent(
                f"invalid zone {zone!r}: {_validation_message(exc)}", job_id=self.job_id
            ) from None

    def _page_info(self, page: Any) -> PageInfo:
        if isinstance(page, PageInfo):
            return page
        try:
            return PageInfo.model_validate(page)
        except ValidationError as exc:
            raise InvalidEvent(
                f"invalid page {page!r}: {_validation_message(exc)}", job_id=self.job_id
            ) from None


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
        if weight is not None and (parent is None or _valid_weight(weight) is None):
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
