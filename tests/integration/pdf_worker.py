"""The project's Celery app with an in-process worker for PDF job tests, and shared helpers.

``pdf_worker(redis_url, settings)`` points ``tasks.app`` at the session's server with the given
:class:`Settings` (data dir, canvas threshold, ...) and runs a threads-pool worker in this
process, so tests can monkeypatch :mod:`tasks.pdf_tasks` (e.g. hold a part at a gate).
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.result import AsyncResult

import tasks.pdf_tasks as pdf_tasks
from progress_bridge.config import Settings
from progress_bridge.events import TERMINAL_TYPES, ProgressEvent
from tests.celery_apps import configured
from tests.conftest import TIMEOUT
from tests.waiting import wait_for

__all__ = [
    "GatedSink",
    "cpu_seconds",
    "gate_parts",
    "pdf_worker",
    "pool_processes",
    "resident_mib",
    "result_of",
    "terminals",
    "wait_for",
]


@contextlib.contextmanager
def pdf_worker(
    redis_url: str, settings: Settings, concurrency: int = 2, *, start: bool = True
) -> Iterator[Celery]:
    """``start=False`` only configures the app (to publish to a worker run elsewhere)."""
    # Celery's own chord machinery subscribes worker threads to result channels; results left at
    # exit unsubscribe when collected, after the session's server has stopped: fail fast then
    # instead of retrying for a minute.
    backend_options = {"retry_policy": {"max_retries": 1, "interval_max": 0.1}}
    with configured(
        pdf_tasks.app,
        broker_url=redis_url,
        result_backend=redis_url,
        progress_settings=settings,
        result_backend_transport_options=backend_options,
    ) as app:
        try:
            if not start:
                yield app
            else:
                with start_worker(
                    app, pool="threads", concurrency=concurrency, perform_ping_check=False
                ):
                    yield app
        finally:
            # Publishing subscribed this thread to each task's result channel (for a fast
            # .get()); these tests poll results instead: drop the subscriptions while the server
            # still runs.
            consumer = app.backend.result_consumer
            consumer.stop()
            consumer.subscribed_to.clear()
            gc.collect()  # results in reference cycles unsubscribe now, while the server runs


def result_of(task_id: str) -> Any:
    """A task's result, polled (``AsyncResult.get`` would leave a pub/sub subscription)."""
    result = AsyncResult(task_id)
    wait_for(result.ready, f"task {task_id} to be ready")
    return result.result


def terminals(history: list[ProgressEvent]) -> list[ProgressEvent]:
    return [e for e in history if e.type in TERMINAL_TYPES]


class GatedSink:
    """Passes calls through; after each completed zone, waits for the test to open the gate."""

    def __init__(self, inner: Any, gate: threading.Event, reached: threading.Semaphore) -> None:
        self._inner = inner
        self._gate = gate
        self._reached = reached

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def zone_completed(self, zone_id: str, **kwargs: Any) -> None:
        self._inner.zone_completed(zone_id, **kwargs)
        self._reached.release()
        assert self._gate.wait(TIMEOUT)


def gate_parts(monkeypatch: Any) -> tuple[threading.Event, threading.Semaphore]:
    """Hold every PDF task after each zone until ``gate`` is set; ``reached`` counts arrivals."""
    gate, reached = threading.Event(), threading.Semaphore(0)
    real = pdf_tasks.process_document

    def gated(source: Any, sink: Any, **kwargs: Any) -> Any:
        return real(source, GatedSink(sink, gate, reached), **kwargs)

    monkeypatch.setattr(pdf_tasks, "process_document", gated)
    return gate, reached


_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def pool_processes(main: int) -> list[int]:
    """The pids of the children of process ``main`` (a prefork worker's pool), from /proc."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == main:
                children.append(int(entry.name))
    return children


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a live process (10 ms resolution); ``None`` once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] in ("Z", "X"):  # exited, not yet reaped
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def resident_mib(pid: int) -> float | None:
    """Resident memory of a live process in MiB; ``None`` once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE / 2**20
    except OSError:
        return None
