"""How a run's progress reaches the stream and Celery: coalesced, paced, mirrored.

:class:`ProgressWriter` holds the state of one task run (its zone book, percent, operation, ETA,
the canvas child's share of its parent) and writes it: ``processing_progress`` at most
``settings.progress_max_rate_hz`` per job whatever the zone events do, a pending update written
when it is due (by the next call or the process's trailing-flush thread, :mod:`.trailing`),
before a lifecycle event and when the task returns; a long job slower still
(:func:`~.trailing.progress_interval`) so that its history never outgrows ``stream_maxlen``.
Each write is mirrored to Celery's ``PROGRESS`` state (:mod:`.celery_state`) until the run has
ended (:meth:`ProgressWriter.close`). It also writes the run's state again when Redis lost it
(:meth:`ProgressWriter.restate`).

What a run may report, and the checks on it, are :class:`~.reporter.ProgressReporter`'s (its
subclass); this base is not used alone.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..events.schema import ProcessingProgress, ProgressEvent, ZonesDeclared
from .envelope import PROGRESS_BP, parent_envelope, valid_weight
from .eta import EtaEstimator
from .producer import Capture
from .trailing import progress_interval
from .zones import ZoneBook

__all__ = ["ProgressWriter"]

#: Zones per zones_declared event in a re-statement (the schema's bound).
_RESTATE_ZONES = 10_000


class ProgressWriter:
    """The coalesced progress of one task run, written to the stream and to Celery's state.

    An internal lock serialises the run's thread with the process's trailing-flush thread,
    which writes a coalesced update once it is due (:meth:`flush_due`).
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
