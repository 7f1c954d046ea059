"""Dead workers are noticed: a job whose worker's main process is SIGKILLed ends or comes back.

Real ``celery -A tasks worker`` subprocesses on a private valkey-server, with short leases
(``PROGRESS_LEASE_S=3``, heartbeats every 0.5 s, reapers every 0.5 s). Worker A (prefork, one
child) runs the job; its *main* process is SIGKILLed mid-job, so Celery itself notices nothing
(the broker's visibility timeout is an hour). Worker B (solo) stays alive, and the reaper thread
in its main process finds A's expired lease:

- a task that must not run twice (``reject_on_worker_lost=False``) ends ``processing_failed``
  with ``lost: true`` (and Celery's FAILURE);
- a task that is redelivered on a lost worker gets ``processing_retrying`` and its message back
  in the queue at once; B runs attempt 2 to the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from progress_bridge.capture.envelope import HEADER_OWNER
from progress_bridge.config import Settings
from progress_bridge.events import (
    TERMINAL_TYPES,
    ProcessingFailed,
    ProcessingRetrying,
    ProcessingStarted,
    ProgressEvent,
)
from progress_bridge.store import EventStore
from progress_bridge.store.embedded import EmbeddedValkey
from tests.conftest import TIMEOUT
from tests.integration.test_signals_prefork import child_pid, history_when, wait_for, zone_done

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

LIVENESS = {
    "PROGRESS_LEASE_S": "3",
    "PROGRESS_HEARTBEAT_INTERVAL_S": "0.5",
    "PROGRESS_REAPER_INTERVAL_S": "0.5",
}
#: Lease, then a reaper pass, with room for a loaded machine: "within about a minute" at the
#: defaults (30 s lease, 10 s passes) is the same rule.
NOTICED_WITHIN_S = 3 + 0.5 + TIMEOUT
JOB = {"pages": 2, "zones_per_page": 12, "speed": 4.0}  # ~2 s of work


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedValkey]:
    with EmbeddedValkey() as server:
        yield server


@pytest.fixture(scope="module")
def tasks_app(server: EmbeddedValkey) -> Iterator[Celery]:
    """A client app of our own on this module's server (``tasks.app``, which other modules
    reconfigure, keeps its connection pools and result backend for the first broker it used)."""
    app = Celery("reaper-client", set_as_current=False)
    app.conf.update(broker_url=server.url, result_backend=server.url)
    yield app
    app.close()


@pytest.fixture
def store(server: EmbeddedValkey) -> Iterator[EventStore]:
    store = EventStore.from_url(server.url, Settings(redis_url=server.url))
    yield store
    store.close()


def start_worker(server: EmbeddedValkey, name: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "tasks", "worker", "-n", name),
            *("--without-mingle", "--without-gossip", "-l", "warning", *args),
        ],
        cwd=ROOT,
        env={**os.environ, "REDIS_URL": server.url, **LIVENESS},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_ready(app: Celery, name: str) -> None:
    wait_for(
        lambda: app.control.ping(timeout=0.5, destination=[name]),
        f"worker {name} to answer a ping",
        timeout=3 * TIMEOUT,  # a process start (imports, forks) is the slowest step under load
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)  # cold shutdown: don't wait for a running job
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def gone(pid: int) -> bool:
    """The process has exited (a zombie no one reaped counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


@pytest.fixture(scope="module")
def worker_b(server: EmbeddedValkey, tasks_app: Celery) -> Iterator[str]:
    """The surviving worker: solo pool, its reaper running; it consumes only ``standby`` until a
    test adds a queue."""
    name = f"b-{uuid.uuid4().hex[:6]}@{os.uname().nodename}"
    proc = start_worker(server, name, "-P", "solo", "-Q", "standby")
    try:
        wait_ready(tasks_app, name)
        yield name
    finally:
        stop(proc)


@pytest.fixture
def worker_a(server: EmbeddedValkey, tasks_app: Celery) -> Iterator[tuple[str, str]]:
    """The worker that dies: prefork, one child, on a queue of its own."""
    queue = f"a-{uuid.uuid4().hex[:6]}"
    name = f"{queue}@{os.uname().nodename}"
    proc = start_worker(server, name, "-P", "prefork", "-c", "1", "-Q", queue)
    try:
        wait_ready(tasks_app, name)
        yield queue, str(proc.pid)
    finally:
        stop(proc)


def kill_main_mid_job(
    tasks_app: Celery, store: EventStore, worker_a: tuple[str, str], task: str
) -> tuple[Any, list[ProgressEvent], float]:
    # 1. A's pool child runs the job; wait for its first zone.
    queue, main_pid = worker_a
    result = tasks_app.send_task(task, kwargs=JOB, queue=queue, headers={HEADER_OWNER: "kim"})
    events = history_when(store, result.id, zone_done, "a completed zone")
    child = child_pid(events)
    # 2. SIGKILL A's main process: nothing in Celery sees the job end.
    os.kill(int(main_pid), signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(lambda: gone(child), "the pool child to die with its main process")
    return result, events, killed_at


def test_a_job_whose_worker_main_process_is_killed_ends_failed_lost(
    worker_b: str, worker_a: tuple[str, str], tasks_app: Celery, store: EventStore
) -> None:
    result, _, killed_at = kill_main_mid_job(
        tasks_app, store, worker_a, "tasks.demo.walk_document_once"
    )

    # 3. B's reaper ends the job within lease + a pass: failed, lost, exactly one terminal.
    events = history_when(
        store,
        result.id,
        lambda es: any(e.type in TERMINAL_TYPES for e in es),
        "the reaper to end the job",
    )
    noticed = time.monotonic() - killed_at
    assert noticed < NOTICED_WITHIN_S
    failed = events[-1]
    assert isinstance(failed, ProcessingFailed)
    assert (failed.lost, failed.error_type, failed.owner) == (True, "WorkerLost", "kim")
    assert "sent no heartbeat for 3 s" in failed.error_message
    assert sum(e.type in TERMINAL_TYPES for e in events) == 1
    snap = store.snapshot(result.id)
    assert snap is not None and snap.status == "failed"
    # Celery agrees, so AsyncResult.get() does not wait forever either.
    assert wait_for(lambda: result.state == "FAILURE", "Celery's FAILURE state")


def test_a_redelivered_job_whose_worker_main_process_is_killed_runs_again_at_once(
    worker_b: str, worker_a: tuple[str, str], tasks_app: Celery, store: EventStore
) -> None:
    queue = worker_a[0]
    result, events, killed_at = kill_main_mid_job(
        tasks_app, store, worker_a, "tasks.demo.walk_document"
    )
    # B now also consumes A's queue (the message is still unacknowledged: nobody can take it
    # until a reaper hands it back, not before the hour-long visibility timeout otherwise).
    tasks_app.control.add_consumer(queue, destination=[worker_b], reply=True, timeout=TIMEOUT)

    # 3. B's reaper: retrying (attempt 2), the message back in the queue; B runs attempt 2.
    events = history_when(
        store,
        result.id,
        lambda es: any(e.type in TERMINAL_TYPES for e in es),
        "attempt 2 to end the job",
    )
    retrying = [e for e in events if isinstance(e, ProcessingRetrying)]
    assert len(retrying) == 1 and retrying[0].attempt == 2
    assert "attempt 1 lost" in retrying[0].reason
    started = [e for e in events if isinstance(e, ProcessingStarted)]
    assert [s.attempt for s in started] == [1, 2]
    assert started[1].worker is not None and started[1].worker.startswith(worker_b)
    retried_at = events.index(retrying[0])
    assert retried_at < events.index(started[1])
    assert events[-1].type == "processing_completed"
    assert sum(e.type in TERMINAL_TYPES for e in events) == 1
    assert time.monotonic() - killed_at < NOTICED_WITHIN_S + TIMEOUT
    assert result.get(timeout=TIMEOUT)["zones"] == 24
