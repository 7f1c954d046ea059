"""The reaper: ends (or redelivers) running jobs whose worker process is gone.

Every running attempt holds a lease in its shard's running set, renewed by its process's
heartbeat (:mod:`.liveness`). When a process dies without ending its attempts — its worker's main
process SIGKILLed (the pool children die with it), the host lost — nothing in Celery notices
before the broker's visibility timeout (an hour by default). A reaper looks for leases that expired
(server time, so hosts' clocks don't matter) and, for each:

- when the job's task is redelivered on a lost worker (``acks_late`` + ``reject_on_worker_lost``)
  and the reaper has the Celery app: writes ``processing_retrying`` (the next attempt) and hands
  the message back to the broker now (kombu's Redis transport: ``restore_by_tag``; brokers that
  requeue on a lost connection, like RabbitMQ, already did);
- else: writes ``processing_failed`` with ``lost: true`` (and stores Celery's ``FAILURE``), and
  a canvas child also fails the job it reports to (that job can no longer complete).

Where reapers run: one thread in every worker's main process (started on ``worker_ready``,
every ``reaper_interval_s``), and ``progress-bridge reap`` for deployments that want jobs ended
even when no worker is left. Any number may run at once: each write is conditional on the very
lease it saw having expired (``append.lua``'s claim), so exactly one reaper ends each job, and the
store refuses a second terminal event anyway. After losing Redis itself, a reaper waits a grace
period before reaping, so workers' heartbeats have resumed first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..events.schema import JOB_ID_PATTERN, ProcessingFailed, ProcessingRetrying, ProgressEvent
from ..exceptions import DuplicateTerminal, StoreRejected, StreamUnavailable
from ..store.sync import EventStore
from .producer import capture_for

__all__ = ["Reaped", "Reaper", "celery_redeliver", "start_reaper", "stop_reaper"]

log = logging.getLogger("progress_bridge.capture")

#: Redelivers a lost attempt's message (its lease info); True when the broker will deliver it.
Redeliver = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Reaped:
    """What a reaper did with one expired lease."""

    job_id: str
    action: str  # "failed", "redelivered", or "ended" (it had ended already)


class Reaper:
    """Ends the jobs whose lease expired. Thread-safe; safe to run in many processes at once.

    Args:
        redeliver: hands a lost attempt's message back to the broker (None: never redeliver).
        mark_failed: stores Celery's ``FAILURE`` for a job ended lost (None: don't).
    """

    def __init__(
        self,
        store: EventStore,
        settings: Settings,
        *,
        redeliver: Redeliver | None = None,
        mark_failed: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._redeliver = redeliver
        self._mark_failed = mark_failed
        #: Seconds of reaching Redis without a failure before reaping (see the module doc).
        self.grace_s = 3 * settings.heartbeat_interval_s + (
            settings.producer_connect_timeout_s + settings.producer_socket_timeout_s
        )
        self._reachable_since: float | None = None

    def reap_once(self) -> list[Reaped]:
        """One pass over every shard now, without the grace period.

        Raises:
            StreamUnavailable: Redis is unreachable.
        """
        done: list[Reaped] = []
        for shard in range(self.store.keys.shards):
            for job_id, value in self.store.expired_leases(shard):
                outcome = self._reap(job_id, value)
                if outcome is not None:
                    done.append(outcome)
        return done

    def tick(self) -> list[Reaped]:
        """One pass of a reaper loop: reaps only after ``grace_s`` of reaching Redis."""
        now = time.monotonic()
        try:
            self.store.ping()
        except (StreamUnavailable, StoreRejected):
            self._reachable_since = None
            return []
        if self._reachable_since is None:
            self._reachable_since = now
        if now - self._reachable_since < self.grace_s:
            return []
        try:
            return self.reap_once()
        except (StreamUnavailable, StoreRejected) as exc:
            self._reachable_since = None
            log.warning("reaper: %s", exc)
            return []

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """Reap every ``interval_s`` until ``stop`` is set."""
        while not stop.is_set():
            try:
                for reaped in self.tick():
                    log.warning(
                        "reaper: job %s %s (its worker is gone)", reaped.job_id, reaped.action
                    )
            except Exception:  # never kill the loop
                log.exception("reaper pass failed")
            stop.wait(interval_s)

    def _reap(self, job_id: str, value: str) -> Reaped | None:
        info = _lease_info(value)
        attempt = info["attempt"]
        silent = f"its worker ({info['worker']}) sent no heartbeat for {self.settings.lease_s:g} s"
        env = {"owner": info["owner"], "document_id": info["document_id"]}
        redelivering = bool(info.get("redeliver")) and self._redeliver is not None
        event: ProgressEvent
        if redelivering:
            event = ProcessingRetrying(
                job_id=job_id,
                **env,
                attempt=attempt + 1,
                reason=f"attempt {attempt} lost: {silent}; its message is delivered again",
            )
        else:
            event = self._failed(job_id, env, f"attempt {attempt} lost: {silent}")
        try:
            written = self.store.append_claimed(event, value)
        except DuplicateTerminal:
            return Reaped(job_id, "ended")
        if written is None:
            return None  # another reaper, or the worker renewed it meanwhile
        if redelivering:
            assert self._redeliver is not None
            try:
                redelivered = self._redeliver(info)
            except Exception as exc:
                log.warning("reaper: could not redeliver job %s: %s", job_id, exc)
                redelivered = False
            if redelivered:
                return Reaped(job_id, "redelivered")
            self._append(self._failed(job_id, env, f"attempt {attempt} lost: {silent}"))
        self._after_failure(job_id, info, silent)
        return Reaped(job_id, "failed")

    @staticmethod
    def _failed(job_id: str, env: dict[str, Any], message: str) -> ProcessingFailed:
        return ProcessingFailed(
            job_id=job_id, **env, error_type="WorkerLost", error_message=message, lost=True
        )

    def _append(self, event: ProgressEvent) -> None:
        with contextlib.suppress(DuplicateTerminal):
            self.store.append(event)

    def _after_failure(self, job_id: str, info: dict[str, Any], silent: str) -> None:
        parent = info.get("parent")
        if isinstance(parent, str) and parent:
            # A canvas child that will not run again: the job it is part of cannot complete.
            self._append(
                self._failed(parent, {}, f"part {job_id} lost: {silent}"),
            )
        if self._mark_failed is not None:
            try:
                self._mark_failed(job_id, silent)
            except Exception as exc:
                log.warning("reaper: could not store FAILURE for job %s: %s", job_id, exc)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and 1 <= len(value) <= 200 else None


def _lease_info(value: str) -> dict[str, Any]:
    """The info a lease holder wrote (``<token>\\n<JSON>``), checked: a malformed one must not
    stop a reaper from ending its job (fields it cannot read are left out of the event)."""
    try:
        raw = json.loads(value.partition("\n")[2] or "{}")
    except ValueError:
        raw = {}
    info: dict[str, Any] = raw if isinstance(raw, dict) else {}
    attempt, parent = info.get("attempt"), info.get("parent")
    valid = isinstance(attempt, int) and not isinstance(attempt, bool) and attempt >= 1
    return {
        **info,
        "attempt": attempt if valid else 1,
        "worker": _text(info.get("worker")) or "unknown worker",
        "owner": _text(info.get("owner")),
        "document_id": _text(info.get("document_id")),
        "parent": parent
        if isinstance(parent, str) and re.fullmatch(JOB_ID_PATTERN, parent)
        else None,
    }


# -- Celery: redelivery, FAILURE, the reaper thread of a worker's main process ----------------


def celery_redeliver(app: Any) -> Redeliver:
    """Hand a lost attempt's unacknowledged message back to ``app``'s broker queue.

    kombu's Redis transport keeps it in its ``unacked`` hash until its visibility timeout;
    ``restore_by_tag`` moves it back to the head of its queue now (atomically: a message
    restored by the visibility timeout or acknowledged meanwhile is not restored twice). AMQP
    brokers requeue the messages of a lost connection themselves. Other transports: False.
    """

    def redeliver(info: dict[str, Any]) -> bool:
        with app.connection_for_write() as conn:
            if conn.transport.driver_type == "amqp":
                return True
            tag = info.get("tag")
            restore = getattr(getattr(conn.default_channel, "qos", None), "restore_by_tag", None)
            if not tag or restore is None:
                return False
            restore(tag, leftmost=True)
            return True

    return redeliver


def _celery_mark_failed(app: Any) -> Callable[[str, str], None]:
    def mark_failed(job_id: str, message: str) -> None:
        from billiard.exceptions import WorkerLostError

        app.backend.mark_as_failure(job_id, WorkerLostError(message))

    return mark_failed


def reaper_for(app: Any, store: EventStore, settings: Settings) -> Reaper:
    """A reaper that redelivers and stores Celery states through ``app``."""
    return Reaper(
        store, settings, redeliver=celery_redeliver(app), mark_failed=_celery_mark_failed(app)
    )


_threads: dict[int, tuple[threading.Thread, threading.Event]] = {}
_threads_lock = threading.Lock()


def start_reaper(app: Any) -> bool:
    """Start ``app``'s reaper thread in this process (once); False when disabled."""
    capture = capture_for(app)
    interval = capture.settings.reaper_interval_s
    if interval <= 0:
        return False
    with _threads_lock:
        if id(app) in _threads:
            return True
        reaper = reaper_for(app, capture.store, capture.settings)
        stop = threading.Event()
        thread = threading.Thread(
            target=reaper.run, args=(stop, interval), name="progress-reaper", daemon=True
        )
        _threads[id(app)] = (thread, stop)
        thread.start()
    return True


def stop_reaper(app: Any) -> None:
    with _threads_lock:
        entry = _threads.pop(id(app), None)
    if entry is not None:
        entry[1].set()
