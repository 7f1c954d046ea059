"""A canvas part whose worker process dies: the job fails once, with the part's reason.

A real ``celery -A tasks.pdf_tasks worker -P prefork -c 2`` subprocess runs a 40-page document
as two 20-page parts. One pool process is killed mid-part (SIGKILL): the part cannot report, its
worker main process records ``WorkerLostError`` (parts set ``reject_on_worker_lost=False``, so it
is not redelivered and its zones are not counted twice), and once the other part has returned,
the chord errback fails the job with the lost part's page range.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from progress_bridge.config import Settings
from progress_bridge.events import ProcessingFailed, ZoneCompleted
from progress_bridge.store import EventStore
from tasks.pdf_tasks import JobFiles, process_pdf
from tests.conftest import TIMEOUT
from tests.integration.pdf_worker import pdf_worker, pool_processes, terminals, wait_for
from tests.pdf_samples import many_pages_pdf

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prefork_settings(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("prefork-data"),
        canvas_page_threshold=4,
        pages_per_subtask=20,
    )


@pytest.fixture(scope="module")
def worker(redis_url: str, prefork_settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "REDIS_URL": redis_url}
    for name in ("data_dir", "canvas_page_threshold", "pages_per_subtask"):
        env[f"PROGRESS_{name.upper()}"] = str(getattr(prefork_settings, name))
    cmd = [sys.executable, "-m", "celery", "-A", "tasks.pdf_tasks", "worker", "-P", "prefork"]
    cmd += ["-c", "2", "--without-mingle", "--without-gossip", "-l", "error"]
    cmd += ["-n", f"pdf-prefork-{uuid.uuid4().hex[:6]}@%h"]
    with pdf_worker(redis_url, prefork_settings, start=False) as app:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for(lambda: _ready(app, proc), "the prefork worker to answer a ping")
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _ready(app: Celery, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "the worker exited during start-up"
    return bool(app.control.ping(timeout=0.5))


def test_a_part_whose_worker_process_dies_fails_the_job_once_with_its_page_range(
    worker: subprocess.Popen[bytes], prefork_settings: Settings, store: EventStore
) -> None:
    # Publish a 40-page job: two 20-page parts, one per pool process.
    files = JobFiles(prefork_settings.data_dir)
    job_id = f"pdf-{uuid.uuid4().hex[:16]}"
    files.upload(job_id).parent.mkdir(parents=True, exist_ok=True)
    files.upload(job_id).write_bytes(many_pages_pdf(40))
    process_pdf.submit(job_id, "big.pdf", owner="alice", task_id=job_id)
    parts = {f"{job_id}-p1": (1, 20), f"{job_id}-p21": (21, 40)}

    # Wait until both parts report zones, then kill one pool process (a crash, no cleanup).
    def both_running() -> bool:
        # (Events in the job's stream are the job's: a zone's page tells which part wrote it.)
        pages = {e.page for e in store.history(job_id) if isinstance(e, ZoneCompleted)}
        return all(any(p is not None and a <= p <= b for p in pages) for a, b in parts.values())

    wait_for(both_running, "both parts to report zones")
    victim = pool_processes(worker.pid)[0]
    os.kill(victim, signal.SIGKILL)

    # The job fails once, with the lost part's page range and WorkerLostError.
    wait_for(lambda: (s := store.snapshot(job_id)) is not None and s.finished, "the job to end")
    history = store.history(job_id)
    [end] = terminals(history)
    assert isinstance(end, ProcessingFailed), end
    assert end.error_type == "WorkerLostError"
    lost_part = next(
        child for child in parts if any(e.type == "processing_failed" for e in store.history(child))
    )
    first, last = parts[lost_part]
    assert end.error_message.startswith(f"Pages {first}–{last}: WorkerLostError")
    [child_end] = terminals(store.history(lost_part))
    assert isinstance(child_end, ProcessingFailed)
    assert child_end.lost
    assert not any(e.type == "processing_completed" for e in history)
