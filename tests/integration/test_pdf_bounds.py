"""The bounds of a PDF job, against a real ``celery -A tasks worker -P prefork -c 2`` subprocess.

Each test publishes a job as the web API does (the upload under its generated name, then
``process_pdf.submit``) and reads the job's stream; CPU time and resident memory of the pool
processes come from /proc. The worker runs with a memory limit low enough for a test to reach
(:data:`MAX_MEMORY_MIB`), the default content bound (4 MiB a page), cancel poll (0.25 s) and
stop grace (0.3 s), and its log at INFO in a file the tests read.

The heavy documents are generated decompression bombs (:func:`tests.pdf_samples.inflated_pdf`):
a page of dense text drawing costs pdfminer about 1 GiB and 16 s of CPU per MiB of content.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from celery import Celery, states
from celery.result import AsyncResult

from progress_bridge.config import Settings
from progress_bridge.events import (
    ProcessingCancelled,
    ProcessingFailed,
    ProcessingStarted,
    ProgressEvent,
    ZoneCompleted,
)
from progress_bridge.store import EventStore
from tasks.limits import PdfLimits
from tasks.pdf_tasks import JobFiles, process_pdf, revoke_job
from tests.conftest import TIMEOUT
from tests.integration.guard_tasks import stuck_in_c
from tests.integration.pdf_worker import (
    cpu_seconds,
    pdf_worker,
    pool_processes,
    resident_mib,
    terminals,
    wait_for,
)
from tests.pdf_samples import inflated_pdf, many_pages_pdf

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

#: A pool process running a job above this fails the job (PROGRESS_PDF_MAX_MEMORY_MIB).
MAX_MEMORY_MIB = 320
#: A pool process that peaked above this is replaced after its task (worker_max_memory_per_child).
WORKER_MAX_MEMORY_MIB = 256
#: How soon a cancel must free the core (the brief: "within a second"), scaled like TIMEOUT.
STOP_WITHIN_S = 1.0 * TIMEOUT / 10.0
MIB = 1024 * 1024


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path
    app: Celery

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def alive(self) -> bool:
        return self.proc.poll() is None and bool(self.app.control.ping(timeout=0.5))


@pytest.fixture(scope="module")
def bounds_settings(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("bounds-data"),
        canvas_page_threshold=4,
        pages_per_subtask=5,
    )


@pytest.fixture(scope="module")
def worker(
    redis_url: str, bounds_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    env = {**os.environ, "REDIS_URL": redis_url}
    for name in ("data_dir", "canvas_page_threshold", "pages_per_subtask"):
        env[f"PROGRESS_{name.upper()}"] = str(getattr(bounds_settings, name))
    env["PROGRESS_PDF_MAX_MEMORY_MIB"] = str(MAX_MEMORY_MIB)
    env["PROGRESS_WORKER_MAX_MEMORY_MIB"] = str(WORKER_MAX_MEMORY_MIB)
    log = tmp_path_factory.mktemp("bounds-log") / "worker.log"
    cmd = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-P", "prefork", "-c", "2"]
    cmd += ["--without-mingle", "--without-gossip", "-l", "info", "-f", str(log)]
    cmd += ["-I", "tests.integration.guard_tasks", "-n", f"bounds-{uuid.uuid4().hex[:6]}@%h"]
    with pdf_worker(redis_url, bounds_settings, start=False) as app:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            running = Worker(proc, log, app)
            wait_for(running.alive, "the prefork worker to answer a ping")
            wait_for(lambda: len(pool_processes(proc.pid)) == 2, "two pool processes")
            yield running
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def submit(settings: Settings, data: bytes) -> str:
    """Store an upload under a generated name and publish its job, as ``POST /api/jobs`` does."""
    files = JobFiles(settings.data_dir)
    job_id = f"pdf-{uuid.uuid4().hex[:16]}"
    files.upload(job_id).parent.mkdir(parents=True, exist_ok=True)
    files.upload(job_id).write_bytes(data)
    process_pdf.submit(job_id, "upload.pdf", owner="alice", task_id=job_id)
    return job_id


def ended(store: EventStore, job_id: str) -> list[ProgressEvent]:
    wait_for(lambda: (s := store.snapshot(job_id)) is not None and s.finished, f"{job_id} to end")
    return store.history(job_id)


def started_pid(store: EventStore, job_id: str) -> int:
    """The pool process running ``job_id`` (its processing_started says ``host/pid``)."""
    start = wait_for(
        lambda: next((e for e in store.history(job_id) if isinstance(e, ProcessingStarted)), None),
        f"{job_id} to start",
    )
    return int(start.worker.rsplit("/", 1)[1])


def busy(pid: int, seconds: float = 0.3) -> float:
    """Wait until ``pid`` has used ``seconds`` of CPU (it is really working); return its CPU."""
    first = cpu_seconds(pid)
    assert first is not None
    wait_for(lambda: (cpu_seconds(pid) or 0.0) - first >= seconds, f"process {pid} to work")
    return cpu_seconds(pid) or 0.0


def idle_after(pid: int, since: float) -> float:
    """Seconds from ``since`` (a ``time.monotonic()``) until ``pid`` stopped using CPU: the
    first sample from which on it gains at most one clock tick (or is gone), watched for at
    least 0.5 s after that sample."""
    window = 0.5
    samples: list[tuple[float, float | None]] = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        samples.append((time.monotonic(), cpu_seconds(pid)))
        for index, (at, cpu) in enumerate(samples):
            if cpu is None:
                return at - since
            rest = samples[index + 1 :]
            watched = bool(rest) and rest[-1][0] >= at + window
            if watched and all(later is None or later - cpu <= 0.011 for _, later in rest):
                return at - since
        time.sleep(0.01)
    raise AssertionError(f"process {pid} kept using CPU for {TIMEOUT} s")


def pools_under(worker: Worker, mib: float) -> list[float]:
    """Wait until every pool process is under ``mib`` resident; return their sizes."""

    def sizes() -> list[float] | None:
        found = [resident_mib(pid) for pid in pool_processes(worker.proc.pid)]
        ok = len(found) == 2 and all(size is not None and size < mib for size in found)
        return [s for s in found if s is not None] if ok else None

    result: list[float] = wait_for(sizes, f"both pool processes under {mib} MiB")
    return result


def test_a_decompression_bomb_fails_the_job_with_the_content_bound_and_costs_nothing(
    worker: Worker, bounds_settings: Settings, store: EventStore
) -> None:
    # A 25 KB file whose one page inflates to 8 MiB of text drawing (20-29 s and 700 MB of a
    # worker before the bound).
    bomb = inflated_pdf(8 * MIB)
    assert len(bomb) < 30_000
    before = {pid: cpu_seconds(pid) or 0.0 for pid in pool_processes(worker.proc.pid)}
    rss_before = [round(resident_mib(pid) or 0) for pid in before]

    job_id = submit(bounds_settings, bomb)
    history = ended(store, job_id)

    # The job fails once, with the bound's reason, before any zone.
    [end] = terminals(history)
    assert isinstance(end, ProcessingFailed), end
    assert end.error_type == "ContentTooLarge"
    assert end.error_message.startswith(
        "Page 1 holds more than 4 MiB of drawing instructions once decompressed"
    )
    assert not any(isinstance(e, ZoneCompleted) for e in history)
    # It cost its process a fraction of a second, and the worker stays small and alive.
    pid = started_pid(store, job_id)
    spent = (cpu_seconds(pid) or 0.0) - before.get(pid, 0.0)
    rss_after = [round(size) for size in pools_under(worker, WORKER_MAX_MEMORY_MIB)]
    print(f"bomb: {spent:.2f} s of CPU; pool RSS {rss_before} MiB before, {rss_after} after")
    assert spent < 2.0
    assert worker.alive()


def test_a_page_that_outgrows_the_memory_limit_fails_the_job_and_its_process_is_replaced(
    worker: Worker, bounds_settings: Settings, store: EventStore
) -> None:
    # One page under the content bound (1 MiB) that pdfminer would need about 1 GiB for.
    job_id = submit(bounds_settings, inflated_pdf(1 * MIB))
    pid = started_pid(store, job_id)
    peak = 0.0

    def job_ended() -> bool:
        nonlocal peak
        peak = max(peak, resident_mib(pid) or 0.0)
        return bool((s := store.snapshot(job_id)) and s.finished)

    wait_for(job_ended, "the job to end")
    history = store.history(job_id)

    # The job fails with the memory limit's reason (the process reached it: it was interrupted
    # a poll after crossing it).
    [end] = terminals(history)
    assert isinstance(end, ProcessingFailed), end
    assert end.error_type == "MemoryLimitReached"
    assert end.error_message.startswith(
        f"Processing was stopped because it needed more than {MAX_MEMORY_MIB} MiB of memory"
    )
    wait_for(lambda: AsyncResult(job_id).state == states.FAILURE, "Celery to record the failure")
    # The process that held the memory is replaced after the task; the worker lives on, and
    # every pool process is back under the per-process ceiling.
    wait_for(lambda: pid not in pool_processes(worker.proc.pid), f"process {pid} to be replaced")
    sizes = pools_under(worker, WORKER_MAX_MEMORY_MIB)
    print(f"memory: peak {peak:.0f} MiB seen; replaced; pool RSS {[round(s) for s in sizes]} MiB")
    assert worker.alive()


def test_a_job_past_its_soft_time_limit_fails_with_the_time_it_was_allowed(
    worker: Worker, bounds_settings: Settings, store: EventStore
) -> None:
    # The publisher computes the job's limits from its pages: 1 s + 1 s a page, so a 1-page
    # job may run 2 s (hard limit 2 + 10 s) and this page needs far more.
    app = worker.app
    saved = app.conf.get("pdf_limits")
    app.conf.pdf_limits = PdfLimits(
        pdf_time_limit_base_s=1, pdf_time_limit_per_page_s=1, pdf_time_limit_grace_s=10
    )
    try:
        job_id = submit(bounds_settings, inflated_pdf(MIB // 2))
    finally:
        app.conf.pdf_limits = saved
    history = ended(store, job_id)

    [end] = terminals(history)
    assert isinstance(end, ProcessingFailed), end
    assert end.error_type == "TimeLimitReached"
    # (The 2 s is read from the task's request: the limit computed at publish reached it.
    # Celery's soft limit signal or the guard's own deadline, whichever comes first, stops it.)
    assert end.error_message.startswith(
        "Processing was stopped after 2 s, the time allowed for 1 page."
    )
    assert not any("Hard time limit" in line for line in worker.log_lines())


def test_a_job_stuck_in_c_code_past_its_soft_time_limit_fails_and_is_terminated(
    worker: Worker, store: EventStore
) -> None:
    # A task in one long C call: its soft limit (1 s) cannot interrupt it; the guard reports the
    # job failed with the limit's reason and has the process killed a grace (0.3 s) later, long
    # before the hard limit (30 s).
    task_id = f"stuck-{uuid.uuid4().hex[:12]}"
    stuck_in_c.apply_async((80_000_000,), task_id=task_id, soft_time_limit=1, time_limit=30)
    pid = started_pid(store, task_id)
    started = time.monotonic()
    [end] = terminals(ended(store, task_id))
    assert isinstance(end, ProcessingFailed), end
    assert end.error_type == "TimeLimitReached"
    assert end.error_message.startswith(
        "Processing was stopped after 1 s, the time allowed for this document."
    )
    wait_for(lambda: cpu_seconds(pid) is None, f"process {pid} to be gone")
    print(f"soft limit: the stuck process was gone {time.monotonic() - started:.2f} s after start")
    wait_for(lambda: AsyncResult(task_id).state == states.REVOKED, "the task to be REVOKED")
    wait_for(lambda: len(pool_processes(worker.proc.pid)) == 2, "a new pool process")
    assert not any("Hard time limit" in line for line in worker.log_lines())
    assert worker.alive()


def test_cancelling_a_busy_job_frees_its_core_within_a_second(
    worker: Worker, bounds_settings: Settings, store: EventStore
) -> None:
    # A 2-page job on pages that keep pdfminer busy for seconds each (no zone boundary to
    # check for a cancel at).
    job_id = submit(bounds_settings, inflated_pdf(MIB // 2, pages=2))
    pid = started_pid(store, job_id)
    busy(pid)

    # Cancel as DELETE /api/jobs/{id} does: the terminal event, then revoke.
    cancelled_at = time.monotonic()
    store.append(ProcessingCancelled(job_id=job_id, reason="cancelled by alice"))
    revoke_job(worker.app, job_id)

    # The core is free within a second, the process survives (interrupted, not killed), the
    # job ends cancelled once and Celery says REVOKED.
    took = idle_after(pid, cancelled_at)
    print(f"cancel: the pool process was idle {took:.2f} s after the cancel")
    assert took < STOP_WITHIN_S
    assert pid in pool_processes(worker.proc.pid)
    wait_for(lambda: AsyncResult(job_id).state == states.REVOKED, "the job to be REVOKED")
    assert [e.type for e in terminals(store.history(job_id))] == ["processing_cancelled"]
    assert not any(isinstance(e, ZoneCompleted) for e in store.history(job_id))


def test_a_task_stuck_in_c_code_is_terminated_within_a_second_of_its_cancel(
    worker: Worker, store: EventStore
) -> None:
    # A task whose one C call would run for about 20 s; no Python code runs in between.
    task_id = f"stuck-{uuid.uuid4().hex[:12]}"
    stuck_in_c.apply_async((80_000_000,), task_id=task_id)
    pid = started_pid(store, task_id)
    busy(pid)

    # Its job ends (as a cancel does); the guard's interrupt cannot land in C code, so after
    # its grace (0.3 s) the guard revokes the task with terminate: the worker kills the process.
    cancelled_at = time.monotonic()
    store.append(ProcessingCancelled(job_id=task_id, reason="cancelled by alice"))
    took = idle_after(pid, cancelled_at)
    print(f"stuck: the pool process was gone {took:.2f} s after the cancel")
    assert took < STOP_WITHIN_S
    wait_for(lambda: cpu_seconds(pid) is None, f"process {pid} to be gone")
    wait_for(lambda: AsyncResult(task_id).state == states.REVOKED, "the task to be REVOKED")
    wait_for(lambda: len(pool_processes(worker.proc.pid)) == 2, "a new pool process")
    assert worker.alive()


def test_cancelling_a_split_job_logs_one_info_line_and_no_error(
    worker: Worker, bounds_settings: Settings, store: EventStore
) -> None:
    # A 40-page job: 8 parts of 5 pages on 2 pool processes; cancel once parts report zones.
    seen = len(worker.log_lines())
    job_id = submit(bounds_settings, many_pages_pdf(40))
    wait_for(lambda: any(isinstance(e, ZoneCompleted) for e in store.history(job_id)), "zones")
    store.append(ProcessingCancelled(job_id=job_id, reason="cancelled by alice"))
    revoked = revoke_job(worker.app, job_id)

    # Every part ends (completed before the cancel, stopped, or dropped as revoked), then
    # Celery fails the chord; that is logged once, at INFO, without a traceback.
    parts = revoked[1:]
    assert len(parts) == 8
    wait_for(lambda: all(AsyncResult(p).ready() for p in parts), "every part to end")
    mine = f"job {job_id} ended before its parts were merged"
    wait_for(lambda: any(mine in line for line in worker.log_lines()), "the chord's log line")
    lines = [line for line in worker.log_lines() if job_id in line]
    [chord_line] = [line for line in lines if mine in line]
    assert "INFO/" in chord_line
    assert "revoked" in chord_line
    log = worker.log_lines()[seen:]
    assert not [line for line in log if "ERROR/" in line or "Traceback" in line]
    assert [e.type for e in terminals(store.history(job_id))] == ["processing_cancelled"]


def test_a_bomb_page_in_a_split_job_fails_the_job_with_its_page_range(
    worker: Worker, bounds_settings: Settings, store: EventStore
) -> None:
    # 10 light pages, page 8 a bomb: parts 1-5 and 6-10.
    job_id = submit(bounds_settings, inflated_pdf(8 * MIB, pages=10, inflated=(8,)))
    history = ended(store, job_id)
    [end] = terminals(history)
    assert isinstance(end, ProcessingFailed), end
    assert end.error_type == "ContentTooLarge"
    assert end.error_message.startswith("Pages 6–10: Page 8 holds more than 4 MiB")
    assert worker.alive()
