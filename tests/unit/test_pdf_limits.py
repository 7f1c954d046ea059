"""The bounds of a PDF job as configuration (PdfLimits), the time limits a job is published
with, and the rejections that carry a bound's reason across Celery."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

import tasks.pdf_tasks as pdf_tasks
from progress_bridge.config import Settings
from progress_bridge.exceptions import ConfigError
from tasks.limits import PdfLimits, limits_of
from tasks.pdf import (
    ContentTooLarge,
    LimitExceeded,
    MemoryLimitReached,
    PdfRejected,
    TimeLimitReached,
    TooManyPages,
)
from tests.pdf_samples import many_pages_pdf, not_a_pdf


def test_time_limits_grow_with_the_pages_a_task_processes() -> None:
    limits = PdfLimits()
    # soft = 30 s + 10 s a page; hard = soft + 30 s
    assert limits.time_limits(0) == (30, 60)
    assert limits.time_limits(1) == (40, 70)
    assert limits.time_limits(10) == (130, 160)
    assert PdfLimits(pdf_time_limit_per_page_s=0.25).time_limits(3) == (31, 61)  # rounded up


def test_limits_are_read_from_the_environment_with_documented_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROGRESS_PDF_TIME_LIMIT_PER_PAGE_S", "2")
    monkeypatch.setenv("PROGRESS_PDF_MAX_PAGE_CONTENT_BYTES", "1048576")
    monkeypatch.setenv("PROGRESS_PDF_MAX_MEMORY_MIB", "2048")
    monkeypatch.setenv("PROGRESS_WORKER_MAX_MEMORY_MIB", "768")
    limits = PdfLimits.from_env()
    assert limits.time_limits(5) == (40, 70)
    assert limits.pdf_max_page_content_bytes == 1024 * 1024
    assert limits.max_memory_bytes == 2048 * 1024 * 1024
    assert limits.worker_max_memory_per_child_kib == 768 * 1024


def test_a_bad_limit_stops_start_up_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROGRESS_PDF_MAX_MEMORY_MIB", "lots")
    with pytest.raises(ConfigError, match="PROGRESS_PDF_MAX_MEMORY_MIB: Input should be"):
        PdfLimits.from_env()
    monkeypatch.setenv("PROGRESS_PDF_MAX_MEMORY_MIB", "256")
    with pytest.raises(ConfigError, match="PROGRESS_WORKER_MAX_MEMORY_MIB must not exceed"):
        PdfLimits.from_env()


def test_the_worker_recycles_processes_above_the_configured_memory() -> None:
    # celeryconfig.py reads the limits once and sets Celery's own setting from them.
    configured = pdf_tasks.app.conf.pdf_limits
    assert isinstance(configured, PdfLimits)
    assert limits_of(pdf_tasks.app) is configured
    assert pdf_tasks.app.conf.worker_max_memory_per_child == configured.worker_max_memory_mib * 1024


@pytest.fixture
def publisher(tmp_path: Path) -> Iterator[Celery]:
    """The project's app with a data dir of its own and a 4-page fan-out threshold."""
    app: Celery = pdf_tasks.app
    saved = {k: app.conf.get(k) for k in ("progress_settings", "pdf_limits")}
    app.conf.update(
        progress_settings=Settings(data_dir=tmp_path, canvas_page_threshold=4),
        pdf_limits=PdfLimits(pdf_time_limit_base_s=10, pdf_time_limit_per_page_s=2),
    )
    try:
        yield app
    finally:
        app.conf.update(saved)


def _store(app: Celery, upload_id: str, data: bytes) -> None:
    path = pdf_tasks.JobFiles(app.conf.progress_settings.data_dir).upload(upload_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_a_job_is_published_with_time_limits_from_its_page_count(publisher: Celery) -> None:
    # 3 pages: processed in the job task, 10 s + 3 × 2 s.
    _store(publisher, "three", many_pages_pdf(3))
    assert pdf_tasks._job_time_limits(publisher, "three") == (16, 46)
    # 40 pages: fans out; the job task itself counts up to the threshold (4 pages).
    _store(publisher, "forty", many_pages_pdf(40))
    assert pdf_tasks._job_time_limits(publisher, "forty") == (18, 48)
    # Unreadable, missing or not an id: the threshold's limit (the task refuses the file).
    _store(publisher, "junk", not_a_pdf())
    for upload_id in ("junk", "missing", "../etc/passwd"):
        assert pdf_tasks._job_time_limits(publisher, upload_id) == (18, 48)


@pytest.mark.parametrize(
    "rejection",
    [
        TooManyPages(2_500, 2_000),
        ContentTooLarge(7, 4 * 1024 * 1024),
        MemoryLimitReached(1024 * 1024 * 1024),
        TimeLimitReached(130, 10),
        TimeLimitReached(60, None),
    ],
)
def test_a_rejection_with_fields_is_rebuilt_as_itself(rejection: PdfRejected) -> None:
    # Celery checks that an exception pickles (else it sends a base class) and its JSON result
    # backend rebuilds it as type(exc)(*exc.args).
    for rebuilt in (pickle.loads(pickle.dumps(rejection)), type(rejection)(*rejection.args)):
        assert type(rebuilt) is type(rejection)
        assert str(rebuilt) == str(rejection) == rejection.reason


def test_each_bound_says_which_bound_and_what_to_do() -> None:
    assert isinstance(ContentTooLarge(1, 1), LimitExceeded)
    assert str(MemoryLimitReached(1024 * 1024 * 1024)).startswith(
        "Processing was stopped because it needed more than 1024 MiB of memory, the most one "
        "job may use."
    )
    assert str(TimeLimitReached(130, 10)).startswith(
        "Processing was stopped after 130 s, the time allowed for 10 pages."
    )
    assert str(TimeLimitReached(70, None)).startswith(
        "Processing was stopped after 70 s, the time allowed for this document."
    )
    for rejection in (ContentTooLarge(3, 4 * 1024 * 1024), MemoryLimitReached(1 << 30)):
        assert "Print the document to a new PDF" in str(rejection)
    assert {ContentTooLarge.code, MemoryLimitReached.code, TimeLimitReached.code} == {
        "content_too_large",
        "memory_limit",
        "time_limit",
    }
