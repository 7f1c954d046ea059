"""PDF jobs with a real in-process worker (threads pool, 2 threads) and generated PDFs.

The project's own Celery app (``tasks.app``) is pointed at the session's server; each test
writes an upload under its generated name, publishes the job as the web API does, and reads the
job's stream back. Canvas tests use a low threshold (4 pages) and 3 pages per part, so a 10-page
document becomes a chord of 4 parts.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery, states
from celery.result import AsyncResult

import tasks.pdf_tasks as pdf_tasks
from progress_bridge.config import Settings
from progress_bridge.events import (
    ExportCompleted,
    ExportFailed,
    ProcessingCancelled,
    ProcessingCompleted,
    ProcessingFailed,
    ProcessingProgress,
    ProgressEvent,
    ZoneCompleted,
)
from progress_bridge.store import EventStore
from progress_bridge.testing import (
    assert_exactly_one_terminal,
    assert_lifecycle,
    assert_percent_only_rises,
    assert_zones_completed_in_order,
)
from tasks.pdf import open_document
from tasks.pdf_tasks import JobFiles, export_result, process_pdf, revoke_job
from tests.conftest import TIMEOUT
from tests.integration.pdf_worker import gate_parts, pdf_worker, result_of, terminals, wait_for
from tests.pdf_samples import (
    expected_zone_count,
    many_pages_pdf,
    mixed_pdf,
    not_a_pdf,
    shifted_xref_pdf,
)
from tests.real_pdfs import pypdf_resources_or_skip

THRESHOLD = 4
PAGES_PER_PART = 3


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pdf-data")


@pytest.fixture(scope="module")
def job_settings(redis_url: str, data_dir: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        data_dir=data_dir,
        canvas_page_threshold=THRESHOLD,
        pages_per_subtask=PAGES_PER_PART,
        cancel_poll_s=0.02,
        progress_max_rate_hz=50,
    )


@pytest.fixture(scope="module")
def worker_app(redis_url: str, job_settings: Settings) -> Iterator[Celery]:
    with pdf_worker(redis_url, job_settings) as app:
        yield app


@pytest.fixture
def files(job_settings: Settings) -> JobFiles:
    return JobFiles(job_settings.data_dir)


def submit(files: JobFiles, data: bytes, owner: str = "alice", name: str = "report.pdf") -> str:
    """Store an upload under a generated name and publish its job, as ``POST /api/jobs`` does."""
    job_id = f"pdf-{uuid.uuid4().hex[:16]}"
    path = files.upload(job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    process_pdf.submit(job_id, name, owner=owner, document_id=name, task_id=job_id)
    return job_id


def ended(store: EventStore, job_id: str) -> list[ProgressEvent]:
    """The job's history once it has its terminal event (and a moment for stragglers)."""
    wait_for(lambda: (s := store.snapshot(job_id)) is not None and s.finished, f"{job_id} to end")
    time.sleep(0.2)  # anything written after the terminal event would show up now
    return store.history(job_id)


@pytest.mark.usefixtures("worker_app")
def test_small_document_reports_its_zones_then_completes_once(
    store: EventStore, files: JobFiles
) -> None:
    # Publish a one-page document with text, a table and a figure.
    job_id = submit(files, mixed_pdf())
    history = ended(store, job_id)
    types = [e.type for e in history]

    # Queued (with the owner), started, zones declared before any is processed, then each zone
    # processing → completed in reading order, and exactly one terminal event, last.
    assert_lifecycle(history, ["processing_queued", "processing_started", "processing_completed"])
    assert history[0].owner == "alice"
    assert types.index("zones_declared") < types.index("zone_processing")
    assert_zones_completed_in_order(history)
    assert_percent_only_rises(history)
    assert_exactly_one_terminal(history, "processing_completed")
    assert isinstance(history[-1], ProcessingCompleted)
    assert history[-1].result_summary is not None
    assert history[-1].result_summary.startswith("report.pdf: 1 pages")
    done = [e for e in history if isinstance(e, ZoneCompleted)]
    assert {e.zone_id for e in done} == {e.zone_id for e in history if e.type == "zone_processing"}
    assert all(e.processing_tool and e.duration_ms is not None for e in done)
    snap = store.snapshot(job_id)
    assert snap is not None
    assert snap.zones_completed == snap.zones_total == len(done) >= 3
    assert {z.kind for z in snap.zones} >= {"text", "table", "figure"}
    # The result is stored under the job's generated name; Celery has the summary too.
    assert files.result(job_id).exists()
    assert result_of(job_id)["zones"] == len(done)


@pytest.mark.usefixtures("worker_app")
def test_a_file_that_is_not_a_pdf_fails_the_job_with_the_reason(
    store: EventStore, files: JobFiles
) -> None:
    job_id = submit(files, not_a_pdf())
    history = ended(store, job_id)
    [terminal] = terminals(history)
    assert isinstance(terminal, ProcessingFailed)
    assert terminal.error_type == "NotAPdf"
    assert "not a PDF" in terminal.error_message
    assert not any(e.type == "zones_declared" for e in history)


@pytest.mark.usefixtures("worker_app")
def test_a_missing_upload_fails_the_job_with_the_reason(store: EventStore, files: JobFiles) -> None:
    job_id = submit(files, mixed_pdf())
    # (simulate the retention rule deleting the upload before the worker reads it: publish a
    # second job on an id that has no file)
    other = f"pdf-{uuid.uuid4().hex[:16]}"
    process_pdf.submit(other, "gone.pdf", owner="alice", task_id=other)
    history = ended(store, other)
    [terminal] = terminals(history)
    assert isinstance(terminal, ProcessingFailed)
    assert terminal.error_type == "UploadMissing"
    assert "no longer available" in terminal.error_message
    ended(store, job_id)


@pytest.mark.usefixtures("worker_app")
def test_large_document_fans_out_with_one_aggregated_progress_and_one_completion(
    store: EventStore, files: JobFiles
) -> None:
    # A 10-page document above the threshold: 4 parts (3+3+3+1 pages) on 2 worker threads.
    pages = 10
    total = expected_zone_count(pages)
    job_id = submit(files, many_pages_pdf(pages))
    history = ended(store, job_id)

    # The job's stream: exactly one terminal event, the completion, and nothing after it.
    assert_exactly_one_terminal(history, "processing_completed")
    assert isinstance(history[-1], ProcessingCompleted)
    assert history[-1].result_summary == f"report.pdf: {pages} pages, {total} zones"

    # Aggregated progress: the summed zones_completed never goes down and reaches the total
    # before the completion; every zone of every part was reported to the job.
    done_counts = [
        e.zones_completed
        for e in history
        if isinstance(e, ProcessingProgress) and e.zones_completed is not None
    ]
    assert done_counts == sorted(done_counts)
    assert done_counts[-1] == total
    zone_events = [e for e in history if isinstance(e, ZoneCompleted)]
    assert len(zone_events) == total
    assert len({e.zone_id for e in zone_events}) == total
    snap = store.snapshot(job_id)
    assert snap is not None
    assert (snap.zones_completed, snap.zones_total, snap.percent) == (total, total, 100.0)
    assert snap.status == "completed"

    # The children: one per page range, each with its own stream marked with the job as parent,
    # each completed; none of them is in the user's job list.
    children = [f"{job_id}-p{first}" for first in (1, 4, 7, 10)]
    # Every event in the job's stream describes the job: the parts write to it as the job (the
    # job's snapshot never names one of its children as its parent).
    assert {(e.job_id, e.parent_id) for e in history} == {(job_id, None)}
    assert {e.root_id for e in history} <= {None, job_id}
    assert (snap.parent_id, snap.owner, snap.document_id) == (None, "alice", "report.pdf")
    for child in children:
        child_history = store.history(child)
        assert child_history[0].parent_id == job_id
        assert child_history[0].owner is None
        assert [e.type for e in terminals(child_history)] == ["processing_completed"]
    assert job_id in store.jobs_of("alice")
    assert not set(children) & set(store.jobs_of("alice"))

    # Celery: the job's own AsyncResult carries the merged result (the body took over its id).
    result = result_of(job_id)
    assert (result["parts"], result["zones"]) == (4, total)
    assert files.result(job_id).exists()
    assert not files.parts_dir(job_id).exists()


@pytest.mark.usefixtures("worker_app")
def test_a_split_jobs_percent_only_rises_and_reads_100_only_with_its_completion(
    store: EventStore, files: JobFiles
) -> None:
    # 10 pages in 4 parts (3+3+3+1), each declaring its zones page by page, on 2 threads.
    job_id = submit(files, many_pages_pdf(10))
    history = ended(store, job_id)

    # One terminal event, the completion, last.
    assert_exactly_one_terminal(history, "processing_completed")
    assert_percent_only_rises(history)
    # The job's percent (what a client shows from its events) only rises, stays below 100
    # while it runs, and gets to 99 once every part is done: page-weighted, not completed /
    # declared-so-far (which read 100 at each page boundary and fell back at the next page).
    running = [e for e in history[:-1] if isinstance(e, ProcessingProgress)]
    percents = [e.percent for e in running]
    assert percents == sorted(percents), percents
    assert max(percents) == 99 and all(p < 100 for p in percents)
    # The parts' progress events on the job say what is being done.
    aggregated = [e for e in running if e.zones_total is not None]
    assert aggregated and all(e.current_operation for e in aggregated)
    snap = store.snapshot(job_id)
    assert snap is not None and (snap.status, snap.percent) == ("completed", 100)
    assert snap.zones_completed == snap.zones_total == expected_zone_count(10)


@pytest.mark.usefixtures("worker_app")
def test_a_damaged_file_is_repaired_once_before_it_fans_out(
    store: EventStore, files: JobFiles, caplog: pytest.LogCaptureFixture
) -> None:
    # 10 pages whose cross-reference offsets are all off by 64 bytes: pdfminer finds no page
    # until qpdf rewrites the file. Above the threshold: 4 parts.
    caplog.set_level(logging.WARNING, logger="tasks.pdf.document")
    damaged = shifted_xref_pdf(pages=10)
    job_id = submit(files, damaged)
    history = ended(store, job_id)

    # The job completes, and its summary says the file was repaired.
    assert isinstance(history[-1], ProcessingCompleted)
    assert history[-1].result_summary == (
        f"report.pdf: 10 pages, {expected_zone_count(10)} zones; the file was damaged and "
        "repaired automatically"
    )
    # Repaired once, by the job: one warning line, and the upload is now the repaired copy,
    # which the parts read as it is.
    repairs = [r for r in caplog.records if "repaired by qpdf" in r.getMessage()]
    assert len(repairs) == 1, [r.getMessage() for r in repairs]
    stored = files.upload(job_id).read_bytes()
    assert stored != damaged
    with open_document(stored) as doc:
        doc.prepare_layout()
        assert doc.notes == []
    # The merged result keeps the document's note once; Celery's result returns it too.
    [note] = json.loads(files.result(job_id).read_text())["notes"]
    assert "repaired automatically (qpdf)" in note
    assert result_of(job_id)["notes"] == [note]


def _failing_range(first_page: int, message: str) -> Callable[..., Any]:
    real = pdf_tasks.process_document

    def process(source: Any, sink: Any, **kwargs: Any) -> Any:
        if kwargs.get("first_page") == first_page:
            raise RuntimeError(message)
        return real(source, sink, **kwargs)

    return process


@pytest.mark.usefixtures("worker_app")
def test_a_failing_child_fails_the_job_with_its_page_range_and_reason(
    store: EventStore, files: JobFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pdf_tasks, "process_document", _failing_range(4, "scanner on fire"))
    job_id = submit(files, many_pages_pdf(10))
    history = ended(store, job_id)
    [terminal] = terminals(history)
    assert isinstance(terminal, ProcessingFailed)
    assert terminal.error_type == "RuntimeError"
    assert terminal.error_message == "Pages 4–6: RuntimeError: scanner on fire"
    # The chord's own error path also ran (every part returned) and was refused as a duplicate.
    wait_for(lambda: AsyncResult(job_id).state == states.FAILURE, "the chord to record its failure")
    assert terminals(store.history(job_id)) == [terminal]


@pytest.mark.usefixtures("worker_app")
def test_the_chord_errback_fails_the_job_when_the_child_cannot_report(
    store: EventStore, files: JobFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A part fails without reporting (as when its worker process dies): the chord errback,
    # run once every part has returned, fails the job with that part's reason.
    monkeypatch.setattr(pdf_tasks, "process_document", _failing_range(7, "disk unplugged"))
    monkeypatch.setattr(pdf_tasks, "_report_part_failure", lambda *a, **k: None)
    job_id = submit(files, many_pages_pdf(10))
    history = ended(store, job_id)
    [terminal] = terminals(history)
    assert isinstance(terminal, ProcessingFailed)
    assert terminal.error_message == "Pages 7–9: RuntimeError: disk unplugged"
    assert terminal.owner == "alice"


@pytest.mark.usefixtures("worker_app")
def test_cancelling_a_fanned_out_job_revokes_the_children_and_ends_it_once(
    store: EventStore, files: JobFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, reached = gate_parts(monkeypatch)
    try:
        # Both worker threads hold a part mid-page; the other two parts wait in the queue.
        job_id = submit(files, many_pages_pdf(10))
        for _ in range(2):
            assert reached.acquire(timeout=TIMEOUT)
        # (Events in the job's stream are the job's: a zone's page tells which part wrote it.)
        running = {
            f"{job_id}-p{(e.page - 1) // PAGES_PER_PART * PAGES_PER_PART + 1}"
            for e in store.history(job_id)
            if isinstance(e, ZoneCompleted) and e.page is not None
        }
        assert len(running) == 2

        # Cancel as DELETE /api/jobs/{id} does: the terminal event first, then revoke.
        store.append(ProcessingCancelled(job_id=job_id, reason="cancelled by alice"))
        revoked = revoke_job(pdf_tasks.app, job_id)
        children = [f"{job_id}-p{first}" for first in (1, 4, 7, 10)]
        assert revoked == [job_id, *children]
    finally:
        gate.set()

    # Every child ends cancelled: the running ones stop at their next zone, the queued ones are
    # dropped as revoked; no child completes, and the job keeps its one terminal event.
    for child in children:
        wait_for(
            lambda c=child: terminals(store.history(c)),
            f"child {child} to end",  # type: ignore[misc]
        )
        [end] = terminals(store.history(child))
        assert isinstance(end, ProcessingCancelled), (child, end)
        wait_for(lambda c=child: AsyncResult(c).state == states.REVOKED, f"{child} REVOKED")  # type: ignore[misc]
    queued = [c for c in children if c not in running]
    for child in queued:
        assert not any(e.type == "processing_started" for e in store.history(child))
    history = ended(store, job_id)
    assert [e.type for e in terminals(history)] == ["processing_cancelled"]
    assert not any(e.type == "processing_completed" for e in history)
    assert not files.result(job_id).exists()


@pytest.mark.usefixtures("worker_app")
def test_cancelling_a_running_single_task_job_stops_it_at_the_next_zone(
    store: EventStore, files: JobFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, reached = gate_parts(monkeypatch)
    try:
        # The job holds after its first zone; cancel as the API does, then let it go on.
        job_id = submit(files, mixed_pdf())
        assert reached.acquire(timeout=TIMEOUT)
        store.append(ProcessingCancelled(job_id=job_id, reason="cancelled by alice"))
        assert revoke_job(pdf_tasks.app, job_id) == [job_id]
        time.sleep(0.05)  # longer than cancel_poll_s: the task's next check sees the cancel
    finally:
        gate.set()
    # It stops before the next zone: no more zones, no completion, Celery says REVOKED.
    wait_for(lambda: AsyncResult(job_id).state == states.REVOKED, "the task to stop")
    history = ended(store, job_id)
    assert [e.type for e in terminals(history)] == ["processing_cancelled"]
    cancel_at = next(i for i, e in enumerate(history) if e.type == "processing_cancelled")
    assert not any(e.type == "zone_processing" for e in history[cancel_at:])
    assert not files.result(job_id).exists()


@pytest.mark.usefixtures("worker_app")
@pytest.mark.parametrize(
    ("fmt", "name", "marker"),
    [
        ("json", "report.json", b'"zones"'),
        ("markdown", "report.md", b"## Page 1"),
        ("csv", "report.csv", b"page,zone_id,kind,row"),
    ],
)
def test_exports_write_a_file_and_report_export_events(
    store: EventStore, files: JobFiles, fmt: str, name: str, marker: bytes
) -> None:
    job_id = submit(files, mixed_pdf())
    ended(store, job_id)
    export_id = f"exp-{uuid.uuid4().hex[:16]}"
    export_result.apply_async((job_id, export_id, fmt), {"owner": "alice"}, task_id=export_id)
    assert result_of(export_id)["filename"] == name

    events = [e for e in store.history(job_id) if getattr(e, "export_id", None) == export_id]
    assert events[0].type == "export_started"
    assert isinstance(events[-1], ExportCompleted)
    path = files.export(export_id, fmt)
    assert events[-1].size_bytes == path.stat().st_size
    assert events[-1].filename == name
    assert marker in path.read_bytes()
    # The export is part of the job: the job's terminal event is unchanged.
    assert [e.type for e in terminals(store.history(job_id))] == ["processing_completed"]


@pytest.mark.usefixtures("worker_app")
def test_an_export_without_a_result_reports_export_failed(
    store: EventStore, files: JobFiles
) -> None:
    job_id = submit(files, not_a_pdf())
    ended(store, job_id)
    export_id = f"exp-{uuid.uuid4().hex[:16]}"
    export_result.apply_async((job_id, export_id, "csv"), task_id=export_id)
    assert isinstance(result_of(export_id), FileNotFoundError)
    [failed] = [e for e in store.history(job_id) if isinstance(e, ExportFailed)]
    assert "has no result to export" in failed.error_message


@pytest.fixture(scope="module")
def resources() -> Path:
    return pypdf_resources_or_skip()


@pytest.mark.usefixtures("worker_app")
def test_a_real_world_document_fans_out_and_aggregates_every_zone(
    store: EventStore, files: JobFiles, resources: Path
) -> None:
    # A 6-page scan with an OCR text layer from pypdf's test corpus: 2 parts of 3 pages.
    data = (resources / "Seige_of_Vicksburg_Sample_OCR.pdf").read_bytes()
    job_id = submit(files, data, name="Vicksburg.pdf")
    history = ended(store, job_id)
    assert [e.type for e in terminals(history)] == ["processing_completed"]
    snap = store.snapshot(job_id)
    assert snap is not None
    zone_events = [e for e in history if isinstance(e, ZoneCompleted)]
    assert snap.zones_completed == snap.zones_total == len(zone_events) >= 6
    assert {z.page for z in snap.zones} == set(range(1, 7))
    # Both parts reported to the job, as the job (no part named as its parent).
    assert {(e.page - 1) // PAGES_PER_PART for e in zone_events if e.page} == {0, 1}
    assert {e.parent_id for e in history} == {None} and snap.parent_id is None
    assert result_of(job_id)["pages"] == 6


@pytest.mark.usefixtures("worker_app")
def test_a_real_world_encrypted_document_fails_the_job_with_the_reason(
    store: EventStore, files: JobFiles, resources: Path
) -> None:
    data = (resources / "encryption" / "r6-user-password.pdf").read_bytes()
    job_id = submit(files, data)
    [terminal] = terminals(ended(store, job_id))
    assert isinstance(terminal, ProcessingFailed)
    assert terminal.error_type == "EncryptedPdf"
    assert "password" in terminal.error_message
