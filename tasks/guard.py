"""Stop a running PDF task within a second, whatever it is doing (prefork pool processes).

A PDF task checks for cancellation between pages and zones (:class:`tasks.pdf_tasks.StopCheck`),
but one page can keep pdfminer busy for many seconds. :class:`JobGuard` runs beside the task in
its pool process:

* A thread asks whether the job has ended and reads the process's resident memory every
  :data:`POLL_S`. When the job has ended elsewhere (cancelled, or failed by a
  sibling part) or the memory is above its limit, it *interrupts* the task's thread: SIGUSR2,
  whose handler raises :class:`JobInterrupted` in the task between two Python bytecodes, i.e.
  within milliseconds while pdfminer runs.
* Celery's soft time limit (SIGUSR1, sent by the pool's main process) raises
  :class:`JobInterrupted` too while a guard is armed, instead of ``SoftTimeLimitExceeded``; the
  guard, told the soft limit, treats its expiry as a cause of its own as well.
* :class:`JobInterrupted` derives from ``BaseException``, like ``KeyboardInterrupt``: the PDF
  code's ``except Exception`` clauses, which keep one broken page or zone from failing a
  document, do not swallow it.
* When the task has not left the guarded block ``grace_s`` after an interrupt (it is inside a
  long C call: PDFium, qpdf, zlib), the guard calls ``on_stuck(cause)`` and revokes its own task
  with ``terminate=True``: the worker's main process kills this pool process, records the task
  as REVOKED (acknowledged, not redelivered) and starts a new process. So a task stuck in C code
  past its soft limit is reported as such (``on_stuck``) and stopped ``grace_s`` later, long
  before the hard limit; Celery's hard limit stays the last resort for C code that holds the
  GIL (the guard's thread cannot run then), and the job's failure then reads
  ``TimeLimitExceeded`` (Celery's prefork pool sends ``task_failure`` before it calls the
  task's ``on_failure``, so the task cannot say more).

Only in a prefork pool process, on its main thread (where tasks run and where signal handlers
can be installed; ``worker_process_init`` marks such processes). With the threads or solo pool,
or eagerly, the guard does nothing: cancellation stays cooperative, the memory of a process
shared by several tasks is not one job's, and Celery enforces no time limits there.
"""

from __future__ import annotations

import enum
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

from celery import signals

__all__ = ["POLL_S", "Cause", "JobGuard", "JobInterrupted", "resident_bytes"]

log = logging.getLogger("tasks.guard")

#: How often the guard reads the process's resident memory (a read of /proc/self/statm) and
#: calls its ``ended`` check (which limits its own Redis reads).
POLL_S = 0.05
_INTERRUPT = signal.SIGUSR2
#: Billiard's soft time limit signal (billiard.pool.SIG_SOFT_TIMEOUT).
_SOFT_LIMIT = signal.SIGUSR1
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


class Cause(enum.Enum):
    """Why a guarded task was interrupted."""

    #: The job has a terminal event already (cancelled, or failed by another part).
    ENDED = "ended"
    #: The pool process's resident memory went above the limit.
    MEMORY = "memory"
    #: Celery's soft time limit of the task was reached.
    TIME = "time"


class JobInterrupted(BaseException):
    """Raised in a guarded task by its :class:`JobGuard`; ``cause`` says why.

    A ``BaseException``, so ``except Exception`` in the PDF code lets it through. The task
    catches it around its ``with guard:`` block and turns it into its outcome (REVOKED for
    :attr:`Cause.ENDED`, a :class:`~tasks.pdf.LimitExceeded` failure otherwise).
    """

    def __init__(self, cause: Cause) -> None:
        super().__init__(cause.value)
        self.cause = cause


class _Process:
    """Per-process state: whether this is a prefork pool process, and the armed guard."""

    pool_process = False
    active: JobGuard | None = None
    soft_limit_handler: Any = None  # billiard's SIGUSR1 handler, called when no guard is armed


@signals.worker_process_init.connect(weak=False)  # type: ignore[untyped-decorator]
def _mark_pool_process(sender: Any = None, **_: Any) -> None:
    # (Runs in each prefork pool process, on its main thread, before billiard installs its own
    # SIGUSR1 handler: that one is wrapped on first use, in JobGuard.__enter__.)
    _Process.pool_process = True
    signal.signal(_INTERRUPT, _on_signal)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    guard = _Process.active
    if guard is None or not guard.armed or _leaving(frame):
        if signum == _SOFT_LIMIT and callable(_Process.soft_limit_handler):
            _Process.soft_limit_handler(signum, frame)  # billiard's: SoftTimeLimitExceeded
        return
    cause = Cause.TIME if signum == _SOFT_LIMIT else guard.cause
    if cause is None:
        return
    guard.armed = False  # once: the task's own handling of the interrupt is not interrupted
    raise JobInterrupted(cause)


def _leaving(frame: FrameType | None) -> bool:
    """True when the signal landed in the guard's own exit: the task is done, let it go."""
    return frame is not None and frame.f_code in _EXIT_CODES


def resident_bytes() -> int:
    """This process's resident memory (Linux: /proc/self/statm), in bytes."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * _PAGE_BYTES


class JobGuard:
    """Use as ``with guard:`` around a task's work; catch :class:`JobInterrupted` outside it.

    Args:
        app: the Celery app (to revoke the task when it is stuck).
        task_id: the running task's id.
        ended: true once the job has ended elsewhere; called every :data:`POLL_S`, so it must
            limit its own cost (a :class:`~tasks.pdf_tasks.StopCheck` reads Redis at most once
            per ``cancel_poll_s``, shared with the task's own checks).
        max_memory_bytes: resident memory above which the task is stopped (``None``: no limit).
        soft_limit_s: the task's soft time limit (``None``: none), counted from ``__enter__``.
        grace_s: how long an interrupted task may take to leave the block before it is
            terminated.
        on_stuck: called from the guard's thread before a stuck task is terminated, with the
            cause: the task will not get to report anything itself. (Celery's request is
            thread-local: read what it needs from the request before, on the task's thread.)
    """

    def __init__(
        self,
        app: Any,
        task_id: str,
        *,
        ended: Callable[[], bool],
        max_memory_bytes: int | None,
        grace_s: float,
        soft_limit_s: float | None = None,
        on_stuck: Callable[[Cause], None] | None = None,
    ) -> None:
        self._app = app
        self.task_id = task_id
        self._ended = ended
        self.max_memory_bytes = max_memory_bytes
        self._grace_s = grace_s
        self._soft_limit_s = soft_limit_s
        self._deadline: float | None = None
        self._on_stuck = on_stuck
        #: Whether the guard is in force (a prefork pool process's main thread).
        self.active = False
        self.armed = False
        #: Why the guard interrupted the task (or was about to), once it has.
        self.cause: Cause | None = None
        #: The highest resident memory the guard saw, in bytes.
        self.peak_bytes = 0
        self._left = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> JobGuard:
        self.active = (
            _Process.pool_process and threading.current_thread() is threading.main_thread()
        )
        if not self.active:
            return self
        if signal.getsignal(_SOFT_LIMIT) is not _on_signal:
            _Process.soft_limit_handler = signal.signal(_SOFT_LIMIT, _on_signal)
        _Process.active = self
        if self._soft_limit_s is not None:
            self._deadline = time.monotonic() + self._soft_limit_s
        self.armed = True
        self._thread = threading.Thread(
            target=self._watch, name=f"guard-{self.task_id}", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Disarm and stop the thread; idempotent."""
        self.armed = False
        self._left.set()
        if _Process.active is self:
            _Process.active = None
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)

    def _watch(self) -> None:
        while not self._left.wait(POLL_S):
            cause = None
            if self.max_memory_bytes is not None:
                rss = resident_bytes()
                self.peak_bytes = max(self.peak_bytes, rss)
                if rss > self.max_memory_bytes:
                    cause = Cause.MEMORY
            if cause is None and self._ended():
                cause = Cause.ENDED
            if cause is None and self._deadline is not None and time.monotonic() >= self._deadline:
                cause = Cause.TIME
            if cause is not None:
                self._interrupt(cause)
                return

    def _interrupt(self, cause: Cause) -> None:
        if not self.armed:  # interrupted already (Celery's soft limit): a hard limit follows
            return
        self.cause = cause
        signal.pthread_kill(threading.main_thread().ident or 0, _INTERRUPT)
        if self._left.wait(self._grace_s):
            return
        # Still inside the block: a C call that does not return to Python. Terminate.
        log.warning(
            "task %s did not stop within %.1f s of its interrupt (%s): terminating its process",
            self.task_id,
            self._grace_s,
            cause.value,
        )
        if self._on_stuck is not None:
            try:
                self._on_stuck(cause)
            except Exception:  # the termination matters more than the report
                log.exception("could not report why task %s is terminated", self.task_id)
        self._app.control.revoke(self.task_id, terminate=True, signal="SIGKILL")


_EXIT_CODES = frozenset({JobGuard.__exit__.__code__, JobGuard.close.__code__})
