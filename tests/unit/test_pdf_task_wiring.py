"""What the PDF tasks say: the job's one-line summary (OCR pages, pages without text, repair),
part ids, and the cancelled chord's log line instead of Celery's ERROR."""

from __future__ import annotations

import logging

import pytest
from celery.exceptions import ChordError, TaskRevokedError

from tasks.chord_logs import RevokedChordFilter
from tasks.job_control import job_of_part, part_id
from tasks.pdf import DocumentResult, PageResult
from tasks.summary import summary_of

REPAIR_NOTE = (
    "The file is damaged (its cross-reference table points to the wrong places: 0 of 3 pages "
    "found); it was repaired automatically (qpdf) and the repaired copy was processed. Check "
    "the result against the original."
)


def _result(sources: list[str], notes: list[str] | None = None) -> DocumentResult:
    pages = [
        PageResult(number=n, width=595, height=842, text_source=source)  # type: ignore[arg-type]
        for n, source in enumerate(sources, start=1)
    ]
    return DocumentResult(
        page_count=len(pages), first_page=1, last_page=len(pages), pages=pages, notes=notes or []
    )


def test_the_summary_of_a_plain_document_is_its_size() -> None:
    summary = summary_of(_result(["layer"] * 3), "report.pdf")
    assert summary["summary"] == "report.pdf: 3 pages, 0 zones"
    assert (summary["pages_ocr"], summary["pages_without_text"], summary["notes"]) == (0, 0, [])


def test_the_summary_counts_pages_read_by_ocr_or_without_text_and_says_it_was_repaired() -> None:
    result = _result(["layer", "ocr", "ocr", "none"], [REPAIR_NOTE])
    summary = summary_of(result, "scan.pdf")
    assert summary["summary"] == (
        "scan.pdf: 4 pages, 0 zones; 2 pages read by OCR; 1 page without a text layer, not "
        "read; the file was damaged and repaired automatically"
    )
    assert (summary["pages_ocr"], summary["pages_without_text"]) == (2, 1)
    assert summary["notes"] == [REPAIR_NOTE]
    # Other notes are pointed at, not quoted (the line is cut at 200 characters).
    assert summary_of(_result(["layer"], ["Something else."]), None)["summary"].endswith(
        "; see the notes"
    )


def test_a_part_id_names_its_job() -> None:
    assert part_id("pdf-0123abcd", 21) == "pdf-0123abcd-p21"
    assert job_of_part("pdf-0123abcd-p21") == "pdf-0123abcd"
    assert job_of_part("pdf-0123abcd") is None


def _chord_record(exc: object) -> logging.LogRecord:
    try:
        raise ChordError("stand-in")  # (a traceback to drop)
    except ChordError:
        import sys

        exc_info = sys.exc_info()
    return logging.LogRecord(
        "celery.backends.redis",
        logging.ERROR,
        __file__,
        1,
        "Chord %r raised: %r",
        ("0b6f-group", exc),
        exc_info,
    )


def _revoked_part_error() -> ChordError:
    # What Celery's Redis backend logs when a part of a cancelled job was revoked.
    revoked = TaskRevokedError("job pdf-0123abcd ended (processing_cancelled)")
    error = ChordError(f"Dependency pdf-0123abcd-p6 raised {revoked!r}")
    error.__cause__ = revoked
    return error


def test_a_chord_ended_by_a_revoked_part_is_logged_as_one_info_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="celery.backends.redis")  # a worker run with -l info
    record = _chord_record(_revoked_part_error())
    assert RevokedChordFilter().filter(record)
    assert (record.levelno, record.levelname) == (logging.INFO, "INFO")
    assert record.getMessage() == (
        "job pdf-0123abcd ended before its parts were merged (pdf-0123abcd-p6 revoked: job "
        "pdf-0123abcd ended (processing_cancelled))"
    )
    assert record.exc_info is None and record.exc_text is None


def test_the_info_line_is_not_written_by_a_worker_logging_warnings_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="celery.backends.redis")  # -l warning
    assert not RevokedChordFilter().filter(_chord_record(_revoked_part_error()))


@pytest.mark.parametrize(
    "error",
    [
        ChordError("Dependency pdf-0123abcd-p6 raised ValueError('disk unplugged')"),
        ChordError("Callback error: ConnectionError()"),
        "Dependency pdf-0123abcd-p6 raised RuntimeError('boom')",
    ],
)
def test_every_other_chord_error_stays_an_error(error: object) -> None:
    record = _chord_record(error)
    assert RevokedChordFilter().filter(record)
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
