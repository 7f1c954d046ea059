"""Flower shows what the page shows: a real ``celery flower`` fed by a real worker's events.

The project's Celery app runs PDF jobs on an in-process worker (threads pool, as in
``test_pdf_tasks``); Flower runs as a child process against the same broker with its API open,
as ``progress-bridge dev`` starts it on loopback. Jobs are held after a zone (a gate in the sink)
so their numbers stand still while Flower's HTTP API is polled; every wait has a deadline.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery, states
from celery.result import AsyncResult

import tasks.pdf_tasks as pdf_tasks
from progress_bridge.config import Settings
from progress_bridge.events import ProcessingCancelled
from progress_bridge.events.snapshot import JobSnapshot
from progress_bridge.store import EventStore
from tasks.pdf_tasks import JobFiles, process_pdf, revoke_job
from tests.conftest import TIMEOUT
from tests.flower import FlowerProcess, parse_flower_text
from tests.integration.pdf_worker import gate_parts, pdf_worker, result_of, wait_for
from tests.pdf_samples import many_pages_pdf, mixed_pdf

THRESHOLD = 4
PAGES_PER_PART = 3
PROCESS_PDF = "tasks.pdf_tasks.process_pdf"
PROCESS_PAGES = "tasks.pdf_tasks.process_pages"


@pytest.fixture(scope="module")
def job_settings(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("flower-data"),
        canvas_page_threshold=THRESHOLD,
        pages_per_subtask=PAGES_PER_PART,
        # Every check reads the job's state: a task released from the gate after a cancel sees
        # it at its next check (with a longer interval it could finish the page unchecked).
        cancel_poll_s=0.0001,
        progress_max_rate_hz=50,
    )


@pytest.fixture(scope="module")
def flower(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlowerProcess]:
    log = tmp_path_factory.mktemp("flower") / "flower.log"
    with FlowerProcess(redis_url, log) as running:
        yield running


@pytest.fixture(scope="module")
def worker_app(redis_url: str, job_settings: Settings, flower: FlowerProcess) -> Iterator[Celery]:
    with pdf_worker(redis_url, job_settings) as app:
        yield app


@pytest.fixture
def files(job_settings: Settings) -> JobFiles:
    return JobFiles(job_settings.data_dir)


def submit(files: JobFiles, data: bytes, name: str = "report.pdf") -> str:
    """Store an upload and publish its job, as ``POST /api/jobs`` does."""
    job_id = f"pdf-{uuid.uuid4().hex[:16]}"
    path = files.upload(job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    process_pdf.submit(job_id, name, owner="alice", document_id=name, task_id=job_id)
    return job_id


def page_numbers(snap: JobSnapshot) -> tuple[int, int, int, str | None]:
    """The numbers the page prints for a running job: percent (rounded as JavaScript's
    ``Math.round``), zones done/total, current operation."""
    return (
        math.floor(snap.percent + 0.5),
        snap.zones_completed,
        snap.zones_total,
        snap.current_operation,
    )


def flower_matches_store(
    flower: FlowerProcess, store: EventStore, job_id: str
) -> tuple[dict[str, Any], JobSnapshot]:
    """Poll until Flower's task page shows the job's current numbers (read from the store before
    and after Flower, unchanged in between); return both views."""
    deadline = time.monotonic() + TIMEOUT
    seen: Any = None
    while time.monotonic() < deadline:
        before = store.snapshot(job_id)
        info = flower.task(job_id)
        after = store.snapshot(job_id)
        if info is not None and before is not None and after is not None:
            seen = (info.get("state"), info.get("result"), page_numbers(after))
            if before.last_id == after.last_id and parse_flower_text(info.get("result")) == (
                page_numbers(after)
            ):
                return info, after
        time.sleep(0.05)
    raise AssertionError(f"Flower never showed the job's numbers: (state, result, store) {seen}")


@pytest.mark.usefixtures("worker_app")
def test_flower_shows_a_running_jobs_percent_zones_and_operation_like_the_page(
    flower: FlowerProcess, store: EventStore, files: JobFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, reached = gate_parts(monkeypatch)
    try:
        # The job holds after its first zone: its numbers stand still.
        job_id = submit(files, mixed_pdf())
        assert reached.acquire(timeout=TIMEOUT)
        wait_for(lambda: store.snapshot(job_id).zones_completed == 1, "the zone counted")  # type: ignore[union-attr]

        # Flower's task page (the API behind it) and its task list show the page's numbers as
        # "N% · done/total zones · operation", with the task's own name and a PROGRESS state.
        info, snap = flower_matches_store(flower, store, job_id)
        assert (info["name"], info["state"]) == (PROCESS_PDF, "PROGRESS")
        assert snap.zones_completed == 1 and snap.zones_total > 1
        assert snap.current_operation, "the job names what it is doing"
        listed = flower.tasks()[job_id]
        assert listed["result"] == info["result"]
        assert listed["state"] == "PROGRESS"
    finally:
        gate.set()

    # At the end: SUCCESS with the task's return value, as for any task.
    done = flower.wait_task(job_id, lambda t: t["state"] == states.SUCCESS, "SUCCESS")
    assert done["name"] == PROCESS_PDF
    assert "report.pdf: 1 pages" in done["result"]


@pytest.mark.usefixtures("worker_app")
def test_a_cancelled_job_ends_revoked_in_the_result_backend_and_in_flower(
    flower: FlowerProcess, store: EventStore, files: JobFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, reached = gate_parts(monkeypatch)
    try:
        # Running and shown as PROGRESS in Flower...
        job_id = submit(files, mixed_pdf())
        assert reached.acquire(timeout=TIMEOUT)
        flower.wait_task(job_id, lambda t: t["state"] == "PROGRESS", "PROGRESS")
        # ...then cancelled as DELETE /api/jobs/{id} does: the terminal event, then revoke.
        store.append(ProcessingCancelled(job_id=job_id, reason="cancelled by alice"))
        revoke_job(pdf_tasks.app, job_id)
    finally:
        gate.set()

    # The task stops at its next check: REVOKED in the result backend and in Flower (where a
    # plain task-revoked would lose against the custom PROGRESS state).
    wait_for(lambda: AsyncResult(job_id).state == states.REVOKED, "REVOKED in the backend")
    info = flower.wait_task(job_id, lambda t: t["state"] == states.REVOKED, "REVOKED")
    assert info["name"] == PROCESS_PDF
    # Its result says where it stopped: the numbers its page shows once it has ended.
    snap = store.snapshot(job_id)
    assert snap is not None and snap.status == "cancelled"
    assert parse_flower_text(info["result"]) == page_numbers(snap)
    # Nothing arrives later to turn it back into PROGRESS.
    time.sleep(0.3)  # any late task-progress event would have reached Flower by now
    assert flower.task(job_id)["state"] == states.REVOKED  # type: ignore[index]


@pytest.mark.usefixtures("worker_app")
def test_a_split_job_keeps_its_name_and_row_and_its_parts_have_rows_of_their_own(
    flower: FlowerProcess, store: EventStore, files: JobFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, reached = gate_parts(monkeypatch)
    try:
        # 10 pages in 4 parts; both worker threads hold a part after a zone.
        job_id = submit(files, many_pages_pdf(10))
        for _ in range(2):
            assert reached.acquire(timeout=TIMEOUT)
        wait_for(lambda: store.snapshot(job_id).zones_completed == 2, "both zones counted")  # type: ignore[union-attr]
        # Mid-job, the job's row shows the job's summed numbers (what its page shows).
        info, snap = flower_matches_store(flower, store, job_id)
        assert (info["name"], info["state"]) == (PROCESS_PDF, "PROGRESS")
        assert snap.zones_completed == 2
    finally:
        gate.set()

    # The job's own row: process_pdf, SUCCESS with the merged summary (not finish_canvas).
    done = flower.wait_task(job_id, lambda t: t["state"] == states.SUCCESS, "SUCCESS")
    assert done["name"] == PROCESS_PDF
    assert "'parts': 4" in done["result"]
    # Each part has its own row under its own id, and the merge step too.
    parts = [f"{job_id}-p{first}" for first in (1, 4, 7, 10)]
    for part in parts:
        row = flower.wait_task(part, lambda t: t["state"] == states.SUCCESS, "SUCCESS")
        assert (row["name"], row["parent_id"]) == (PROCESS_PAGES, job_id)
    merge = flower.wait_task(f"{job_id}-merge", lambda t: t["state"] == states.SUCCESS, "SUCCESS")
    assert merge["name"] == "tasks.pdf_tasks.finish_canvas"
    listed = flower.tasks()
    assert listed[job_id]["name"] == PROCESS_PDF
    # Celery's result backend: the job's AsyncResult carries the merged result.
    result = result_of(job_id)
    assert result["parts"] == 4


@pytest.mark.usefixtures("worker_app")
def test_a_cancelled_split_job_and_its_running_parts_end_revoked(
    flower: FlowerProcess, store: EventStore, files: JobFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, reached = gate_parts(monkeypatch)
    try:
        job_id = submit(files, many_pages_pdf(10))
        for _ in range(2):
            assert reached.acquire(timeout=TIMEOUT)
        flower.wait_task(job_id, lambda t: t["state"] == "PROGRESS", "PROGRESS")
        store.append(ProcessingCancelled(job_id=job_id, reason="cancelled by alice"))
        revoke_job(pdf_tasks.app, job_id)
    finally:
        gate.set()

    # The job, and every part (running ones stop, queued ones are dropped), end REVOKED, in
    # the result backend and in Flower.
    wait_for(lambda: AsyncResult(job_id).state == states.REVOKED, "the job REVOKED in the backend")
    info = flower.wait_task(job_id, lambda t: t["state"] == states.REVOKED, "REVOKED")
    assert info["name"] == PROCESS_PDF
    assert parse_flower_text(info["result"]) == page_numbers(store.snapshot(job_id))  # type: ignore[arg-type]
    for part in [f"{job_id}-p{first}" for first in (1, 4, 7, 10)]:
        wait_for(lambda p=part: AsyncResult(p).state == states.REVOKED, f"{part} REVOKED")  # type: ignore[misc]
        row = flower.wait_task(part, lambda t: t["state"] == states.REVOKED, "REVOKED")
        assert row["name"] == PROCESS_PAGES
