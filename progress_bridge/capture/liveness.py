"""Leases of the jobs running in this process: renewed by a heartbeat, re-stated after data loss.

A running attempt's ``processing_started`` registers its job in its shard's running set with a
lease (``append.lua``); this process's :class:`Liveness` thread renews the leases of its running
jobs every ``heartbeat_interval_s`` (one pipelined round trip), and a reaper
(:mod:`.reaper`) ends a job whose lease expired: its process is gone (killed, host lost). A
terminal event or ``processing_retrying`` removes the lease; an attempt that ends without one
(a canvas that fanned out, an ``Ignore``) releases it.

The same thread notices when Redis lost a running job's data (a restart without persistence):
the heartbeat finds no snapshot, or an append of the job comes back with another epoch than the
job's last one. It then *re-states* the job in the new epoch at once — ``processing_started``
(attempt, worker, owner, document) with a new lease, then the reporter's declared zones, their
states and the percent — so a page that resumes gets the truth, not ``queued``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import Settings
from ..events.ids import parse_stream_id
from ..events.schema import ProcessingStarted, ProgressEvent
from ..exceptions import StoreRejected, StreamUnavailable
from ..store.sync import EventStore, Lease, LeaseStatus
from .outage import CaptureStats

__all__ = ["Liveness", "RunningJob"]

log = logging.getLogger("progress_bridge.capture")

#: Delay before the next heartbeat after a failed one (doubling while they keep failing).
_RETRY_S = 0.2


@dataclass(eq=False)
class RunningJob:
    """A job running in this process, as its heartbeat sees it."""

    job_id: str
    token: str  # who holds the lease: this attempt, in this process
    started: ProcessingStarted  # the attempt's start, written again by a re-statement
    lease: Lease  # sent with it
    #: The run's reporter once it has one (declared zones, their states, the percent).
    reporter: Any = None
    epoch: str | None = None  # the epoch the job's events last came back with
    last_id: str | None = None  # the greatest id written in that epoch
    restate_due: bool = False
    renewing: bool = True  # False once the lease is gone (ended, taken): nothing to renew
    lock: threading.Lock = field(default_factory=threading.Lock)


class Liveness:
    """One daemon thread per process: renews leases, releases them, re-states lost jobs."""

    def __init__(
        self,
        store: Callable[[], EventStore],
        settings: Settings,
        stats: CaptureStats,
        restate: Callable[[RunningJob], None],
    ) -> None:
        """``restate(job)`` writes the job's state again (called on this thread)."""
        self._store = store
        self._restate_job = restate
        self._interval = settings.heartbeat_interval_s
        self._lease_ms = int(settings.lease_s * 1000)
        self._stats = stats
        self._cond = threading.Condition()
        self._jobs: dict[str, RunningJob] = {}
        self._releases: list[tuple[str, str]] = []
        self._thread: threading.Thread | None = None
        self._next_beat = 0.0
        self._retry_s = _RETRY_S

    def register(self, job: RunningJob) -> None:
        """Renew ``job``'s lease from now on (its ``processing_started`` carries the lease)."""
        with self._cond:
            self._jobs[job.job_id] = job
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="progress-liveness", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def running(self, job_id: str) -> RunningJob | None:
        return self._jobs.get(job_id)

    def unregister(self, job_id: str) -> None:
        """The attempt ended here: stop renewing and release the lease if it still holds it."""
        with self._cond:
            job = self._jobs.pop(job_id, None)
            if job is not None:
                self._releases.append((job_id, job.token))
                self._cond.notify_all()

    def written(self, event: ProgressEvent) -> None:
        """An event was appended (epoch set): a running job whose epoch changed was lost."""
        job = self._jobs.get(event.job_id)
        if job is None or event.epoch is None:
            return
        with job.lock:
            previous, job.epoch = job.epoch, event.epoch
            if previous != event.epoch:
                job.last_id = None
            if event.id is not None and (
                job.last_id is None or parse_stream_id(event.id) > parse_stream_id(job.last_id)
            ):
                job.last_id = event.id
            if previous is None or previous == event.epoch or job.restate_due:
                return
            job.restate_due = True
        log.warning(
            "job %s: its stream was recreated (epoch %s -> %s): Redis lost its data; re-stating",
            event.job_id,
            previous,
            event.epoch,
        )
        with self._cond:
            self._cond.notify_all()

    def idle(self) -> bool:
        """No release or re-statement waiting (tests)."""
        with self._cond:
            return not self._releases and not any(j.restate_due for j in self._jobs.values())

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                wait = min(self._interval, max(0.0, self._next_beat - time.monotonic()))
                self._cond.wait_for(self._work_due, timeout=wait)
                releases, self._releases = self._releases, []
                jobs = list(self._jobs.values())
            try:
                self._release(releases)
                self._restate([j for j in jobs if j.restate_due])
                if time.monotonic() >= self._next_beat:
                    self._next_beat = time.monotonic() + self._interval
                    # A job whose processing_started is not written yet (or still queued in
                    # the outage buffer) has no lease to renew, nor a snapshot to miss.
                    self._beat([j for j in jobs if j.renewing and not j.restate_due and j.epoch])
            except Exception:  # never kill the thread
                log.exception("liveness heartbeat failed")

    def _work_due(self) -> bool:
        return bool(self._releases) or any(j.restate_due for j in self._jobs.values())

    def _release(self, releases: list[tuple[str, str]]) -> None:
        for job_id, token in releases:
            try:
                self._store().release_lease(job_id, token)
            except (StreamUnavailable, StoreRejected) as exc:
                # The lease expires on its own; a reaper may then end the job failed (lost).
                self._stats.redis_errors += 1
                log.warning("could not release the lease of job %s: %s", job_id, exc)

    def _restate(self, jobs: list[RunningJob]) -> None:
        for job in jobs:
            with job.lock:
                job.restate_due = False
                job.renewing = True
                # The epoch is unknown until the re-statement comes back: buffered events that
                # reach the new epoch first must not count as another loss.
                job.epoch = None
            self._stats.restated += 1
            self._restate_job(job)

    def _beat(self, jobs: list[RunningJob]) -> None:
        if not jobs:
            return
        try:
            statuses = self._store().renew_leases(
                [(j.job_id, j.token, j.epoch, j.last_id) for j in jobs], self._lease_ms
            )
        except (StreamUnavailable, StoreRejected) as exc:
            self._stats.redis_errors += 1
            log.debug("heartbeat failed: %s", exc)
            # Soon again (0.2 s, doubling up to the interval while it keeps failing): after a
            # Redis restart the first call fails on the pool's dead connection, and a lost job
            # should be re-stated within about a second.
            self._next_beat = min(self._next_beat, time.monotonic() + self._retry_s)
            self._retry_s = min(self._retry_s * 2, self._interval)
            return
        self._retry_s = _RETRY_S
        for job, status in zip(jobs, statuses, strict=True):
            self._after_beat(job, status)

    def _after_beat(self, job: RunningJob, status: LeaseStatus) -> None:
        if status == "ok":
            return
        if status in ("lost", "moved", "behind"):
            with job.lock:
                if job.restate_due:
                    return
                job.restate_due = True
            log.warning("job %s: Redis lost its writes (%s); re-stating", job.job_id, status)
            with self._cond:
                self._cond.notify_all()
            return
        job.renewing = False
        if status == "taken":
            log.warning(
                "job %s: its lease was taken (a reaper declared this attempt lost, or another "
                "attempt runs); no longer renewing it",
                job.job_id,
            )
