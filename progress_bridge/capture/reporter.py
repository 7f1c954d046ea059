"""The reporter of one task run: the four progress calls plain functions receive (a
:class:`~progress_bridge.capture.sink.ProgressSink`), and the export calls.

Contract: every call validates its arguments and raises :class:`InvalidEvent` at the call site
(nothing is written then). Redis errors never raise (the outage buffer takes them). Zone events
are written as they happen, every one of them. Progress writes (``processing_progress``, with
Celery's ``PROGRESS`` state) are coalesced to at most ``settings.progress_max_rate_hz`` per job,
whatever the zone events do, and written before a lifecycle event (retrying, the end) and when
the task returns. Once the run has ended (:meth:`ProgressReporter.close`), later writes go to
the stream only and never touch Celery.

The calls and their checks live here; the run's state, its coalescing and pacing, and its
writing to the stream and to Celery live in the base class
(:class:`~.progress_writer.ProgressWriter`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
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
from .progress_writer import ProgressWriter
from .validation import build_event, page_info, zone_info

__all__ = ["ProgressReporter"]


class ProgressReporter(ProgressWriter):
    """Progress of one task run. Plain functions receive it as their progress callback.

    A run reports from one thread; an internal lock serialises its calls with the process's
    trailing-flush thread, which writes a coalesced update once it is due.
    """

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

    def _build(self, cls: type[Any], env: Mapping[str, Any], **fields: Any) -> ProgressEvent:
        return build_event(self.job_id, cls, env, **fields)
