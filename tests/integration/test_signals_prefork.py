"""Lifecycle with a real ``celery -A tasks worker -P prefork`` subprocess: lost workers, revoke.

What Celery 5.7 does when a pool child dies mid-task (``celery/worker/request.py``,
``Request.on_failure``): the main process sees ``WorkerLostError``. With ``acks_late`` and
``reject_on_worker_lost`` the message is rejected with requeue, so the broker redelivers it and
the job starts again (our ``processing_started`` with the next attempt); without
``reject_on_worker_lost`` it marks the task failed and sends ``task_failure`` from the main
process, which we record as ``processing_failed`` with ``lost=True``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from progress_bridge.config import Settings
from progress_bridge.events import (
    TERMINAL_TYPES,
    ProcessingCancelled,
    ProcessingFailed,
    ProcessingStarted,
    ProgressEvent,
)
from progress_bridge.store import EventStore
from tests.celery_apps import configured
from tests.conftest import TIMEOUT
from tests.flower import FlowerProcess
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tasks_app(redis_url: str) -> Iterator[Celery]:
    """The project's own app, pointed at the test server for publishing from this process."""
    import tasks.demo  # noqa: F401  (registers the demo tasks in this process)
    from tasks import app

    with configured(
        app,
        broker_url=redis_url,
        result_backend=redis_url,
        progress_settings=Settings(redis_url=redis_url),
    ):
        yield app


@pytest.fixture(scope="module")
def worker(redis_url: str, tasks_app: Celery) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "REDIS_URL": redis_url}
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "tasks", "worker", "-P", "prefork", "-c", "2"),
            *("-E", "--without-mingle", "--without-gossip", "-l", "warning", "-n", "prefork@%h"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: tasks_app.control.ping(timeout=0.5, destination=None),
            "the prefork worker to answer a ping",
            timeout=3 * TIMEOUT,  # a process start (imports, forks) is the slowest step under load
        )
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def history_when(store: EventStore, job_id: str, test: Any, what: str) -> list[ProgressEvent]:
    def check() -> list[ProgressEvent] | None:
        events = store.history(job_id)
        return events if test(events) else None

    result: list[ProgressEvent] = wait_for(check, what)
    return result


def ended(events: list[ProgressEvent]) -> bool:
    return any(e.type in TERMINAL_TYPES for e in events)


def zone_done(events: list[ProgressEvent]) -> bool:
    return any(e.type == "zone_completed" for e in events)


def child_pid(events: list[ProgressEvent]) -> int:
    """The pool child running the job, from ``worker`` (``hostname/pid``) of its start event."""
    started = [e for e in events if isinstance(e, ProcessingStarted)]
    assert started and started[-1].worker
    return int(started[-1].worker.rsplit("/", 1)[1])


SLOW = {"pages": 2, "zones_per_page": 6, "speed": 4.0}  # ~1.5 s of work


def test_killed_worker_with_redelivery_starts_a_new_attempt_and_completes(
    worker: subprocess.Popen[bytes], tasks_app: Celery, store: EventStore
) -> None:
    # Start a job, wait until a zone is done, SIGKILL the pool child running it.
    result = tasks_app.tasks["tasks.demo.walk_document"].submit(owner="kill", kwargs=SLOW)
    events = history_when(store, result.id, zone_done, "a completed zone")
    os.kill(child_pid(events), signal.SIGKILL)

    # The message is redelivered: attempt 2 starts and the job completes, with one terminal.
    events = history_when(store, result.id, ended, "the job's end")
    started = [e for e in events if isinstance(e, ProcessingStarted)]
    assert [s.attempt for s in started] == [1, 2]
    assert events[-1].type == "processing_completed"
    assert sum(e.type in TERMINAL_TYPES for e in events) == 1
    snap = store.snapshot(result.id)
    assert snap is not None and (snap.status, snap.attempt) == ("completed", 2)


def test_killed_worker_without_redelivery_ends_failed_lost(
    worker: subprocess.Popen[bytes], tasks_app: Celery, store: EventStore
) -> None:
    result = tasks_app.tasks["tasks.demo.walk_document_once"].submit(owner="kill", kwargs=SLOW)
    events = history_when(store, result.id, zone_done, "a completed zone")
    os.kill(child_pid(events), signal.SIGKILL)

    events = history_when(store, result.id, ended, "the job's end")
    failed = events[-1]
    assert isinstance(failed, ProcessingFailed)
    assert (failed.lost, failed.error_type) == (True, "WorkerLostError")
    assert failed.owner == "kill"  # the envelope comes from the request, in the main process
    assert sum(e.type == "processing_started" for e in events) == 1


def test_revoke_with_terminate_ends_the_running_job_cancelled(
    worker: subprocess.Popen[bytes],
    tasks_app: Celery,
    store: EventStore,
    redis_url: str,
    tmp_path: Path,
) -> None:
    with FlowerProcess(redis_url, tmp_path / "flower.log") as flower:
        result = tasks_app.tasks["tasks.demo.walk_document"].submit(kwargs=SLOW)
        history_when(store, result.id, zone_done, "a completed zone")
        flower.wait_task(result.id, lambda t: t["state"] == "PROGRESS", "PROGRESS")
        result.revoke(terminate=True)

        events = history_when(store, result.id, ended, "the job's end")
        cancelled = events[-1]
        assert isinstance(cancelled, ProcessingCancelled) and cancelled.reason == "terminated"
        assert sum(e.type in TERMINAL_TYPES for e in events) == 1
        # Flower says REVOKED too (Celery's own task-revoked would lose to PROGRESS there).
        flower.wait_task(result.id, lambda t: t["state"] == "REVOKED", "REVOKED")


def test_a_job_killed_at_its_hard_time_limit_ends_failed_saying_so(
    worker: subprocess.Popen[bytes], tasks_app: Celery, store: EventStore
) -> None:
    slow = {**SLOW, "speed": 1.0}  # ~6 s of work against a 1 s limit
    task = tasks_app.tasks["tasks.demo.walk_document_once"]
    result = task.submit(owner="limit", kwargs=slow, time_limit=1)

    events = history_when(store, result.id, ended, "the job's end")
    failed = events[-1]
    assert isinstance(failed, ProcessingFailed)
    assert failed.error_type == "TimeLimitExceeded"
    # not Celery's bare "TimeLimitExceeded(1,)": what happened, with the limit
    assert (
        failed.error_message == "ran past its hard time limit of 1 s and was stopped by the worker"
    )
    assert sum(e.type in TERMINAL_TYPES for e in events) == 1
