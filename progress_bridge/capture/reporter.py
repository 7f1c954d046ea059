"""The reporter of one task run: the four progress calls plain functions receive (a
:class:`~progress_bridge.capture.sink.ProgressSink`), validated, coalesced and written.

Contract: every call validates its arguments and raises :class:`InvalidEvent` at the call site
(nothing is written then). Redis errors never raise (the outage buffer takes them). Zone events
are written as they happen, every one of them. Progress writes (``processing_progress``, with
Celery's ``PROGRESS`` state) are coalesced to at most ``settings.progress_max_rate_hz`` per job,
whatever the zone events do: a pending update is written when it is due (by the next call or a
per-process timer thread), before a lifecycle event (retrying, the end) and when the task
returns. A long job slows its progress writes further (:func:`progress_interval`) so that its
history never outgrows ``stream_maxlen``. Once the run has ended
(:meth:`ProgressReporter.close`), later writes go to the stream only and never touch Celery.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..events.schema import (
    ExportCompleted,
    ExportFailed,
    ExportFormat,
    ExportProgress,
    ExportStarted,
    ProcessingProgress,
    ProgressEvent,
    ZoneCompleted,
    ZoneInfo,
    ZoneProcessing,
    ZonesDeclared,
)
from ..exceptions import InvalidEvent
from .envelope import PROGRESS_BP, parent_envelope, valid_weight
from .eta import EtaEstimator
from .producer import Capture
from .trailing import progress_interval
from .validation import build_event, page_info, zone_info
from .zones import ZoneBook

__all__ = ["ProgressReporter"]

log = logging.getLogger("progress_bridge.capture")


#: Zones per zones_declared event in a re-statement (the schema's bound).
_RESTATE_ZONES = 10_000


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
        self._weight = valid_weight(weight) if self._aggregate else None
        self._bp_sent = 0
        self._explicit = False  # set_progress gave a percent: zones no longer derive it
        self._task = task
        self._hostname = hostname
        # The task thread and the trailing-flush thread both write; calls nest (flush inside
        # zone_completed), hence reentrant. Uncontended, it costs well under a microsecond.
        self._lock = threading.RLock()
        self._scheduled = False
        self._interval = 1.0 / capture.settings.progress_max_rate_hz
        self._budget = capture.settings.stream_maxlen
        self._next_write = 0.0
        self._book = ZoneBook(self.job_id)
        self._percent = 0.0
        self._operation: str | None = None
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
        infos = [zone_info(self.job_id, z) for z in zones]
        page_infos = [page_info(self.job_id, p) for p in pages]
        self._book.declare(infos, page_infos)
        total = None if self._aggregate else self._book.total
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
        info = self._book.check_start(zone_id)
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
        self._book.started(zone_id, event)

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
        info = self._book.check_complete(zone_id, status)
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
        self._book.completed(zone_id, event)
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
        return self._book.done

    @property
    def zones_total(self) -> int:
        return self._book.total

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
        last ``PROGRESS`` state is written before ``SUCCESS``/``FAILURE`` and never over it (see
        :mod:`.celery_state` for a stuck backend). A later flush (signal handlers, the
        trailing-flush thread) still writes to the stream.
        """
        with self._lock:
            self.flush()
            self._closed = True
        if self._task is not None:
            self._capture.celery_state.finish(self.job_id)
            if self._aggregate:
                self._capture.celery_state.finish(self._parent_key)

    def restate(self, first: Callable[[], None]) -> None:
        """Write this run's state again, after ``first()`` (the attempt's start): its declared
        zones and pages, each started zone's last event, then the progress.

        For a job whose stream Redis lost; the events carry their original times. A canvas
        child's zones live in its parent's summed counters, which it cannot re-state: it writes
        ``first()`` only.
        """
        with self._lock:
            first()
            if self._aggregate:
                return
            book = self._book
            zones, pages = book.zones(), book.pages()
            for start in range(0, max(len(zones), len(pages)), _RESTATE_ZONES):
                part = zones[start : start + _RESTATE_ZONES]
                self._send(
                    ZonesDeclared(
                        **self._env,
                        zones=part,
                        pages=pages[start : start + _RESTATE_ZONES],
                        zones_total=min(start + len(part), len(zones)) if zones else None,
                    )
                )
            for event in book.last_events():
                self._send(event)
            self._dirty = False
            self._send(self._progress_event(self._eta.eta_s(self._percent)))

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
            book = self._book
            derive = book.total and not self._explicit
            percent = 100.0 * book.done / book.total if derive else self._percent
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
        self._next_write = now + progress_interval(
            self._interval, now - self.started_at, self._budget
        )
        eta = self._eta.eta_s(self._percent)
        book = self._book
        if self._pending_counts:
            counts, self._pending_counts = self._pending_counts, {}
            # The store sets percent (and the counters) from the summed counters.
            aggregated = ProcessingProgress(
                **self._zone_env,
                percent=0,
                current_operation=self._operation,
                current_zone=book.current,
            )
            stored = self._send(aggregated, counts)
            if (
                isinstance(stored, ProcessingProgress)
                and self._task is not None
                and not self._closed
            ):
                # The parent job's numbers, as the store summed them: what its page shows.
                self._celery_parent_progress(stored)
        own = self._send(self._progress_event(eta))
        # (A progress the store refused because the job has ended — a run that has not noticed
        # a cancel yet — must not reach Flower either, where it would undo the REVOKED.)
        if self._task is not None and not self._closed and own is not False:
            self._celery_progress(eta)

    def _progress_event(self, eta: float | None) -> ProcessingProgress:
        book = self._book
        total = book.total
        return ProcessingProgress(
            **self._env,
            percent=round(self._percent, 2),
            current_operation=self._operation,
            current_zone=book.current,
            zones_completed=book.done if total else None,
            zones_total=total or None,
            eta_s=eta,
        )

    def _celery_progress(self, eta: float | None) -> None:
        book = self._book
        meta = {
            "percent": round(self._percent, 2),
            "current_operation": self._operation,
            "current_zone": book.current,
            "zones_completed": book.done,
            "zones_total": book.total,
            "eta_s": eta,
        }
        self._submit_celery(self.job_id, meta)

    def _celery_parent_progress(self, stored: ProcessingProgress) -> None:
        meta = {
            "percent": stored.percent,
            "current_operation": stored.current_operation,
            "current_zone": stored.current_zone,
            "zones_completed": stored.zones_completed or 0,
            "zones_total": stored.zones_total or 0,
            "eta_s": stored.eta_s,
        }
        self._submit_celery(stored.job_id, meta, key=self._parent_key)

    @property
    def _parent_key(self) -> str:
        # This run's own latest-wins slot for its parent's numbers (see CeleryStatePublisher).
        return f"{self.job_id}>parent"

    def _submit_celery(self, job_id: str, meta: dict[str, Any], key: str | None = None) -> None:
        # One Redis budget per outage for the task's thread: when the store was just found
        # unreachable (it is usually the backend too), that budget is spent already.
        capture = self._capture
        settings = capture.settings
        budget = settings.producer_connect_timeout_s + settings.producer_socket_timeout_s
        wait = 0.0 if capture.redis_down else budget
        capture.celery_state.submit(self._task, job_id, meta, self._hostname, wait, key=key)

    def _build(self, cls: type[Any], env: Mapping[str, Any], **fields: Any) -> ProgressEvent:
        return build_event(self.job_id, cls, env, **fields)
