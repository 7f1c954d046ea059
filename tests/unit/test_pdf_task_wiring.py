"""What the PDF tasks say: the job's one-line summary (OCR pages, pages without text, repair),
and the ids of a job's parts."""

from __future__ import annotations

from tasks.pdf import DocumentResult, PageResult
from tasks.pdf_tasks import _summary, job_of_part, part_id

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
    summary = _summary(_result(["layer"] * 3), "report.pdf")
    assert summary["summary"] == "report.pdf: 3 pages, 0 zones"
    assert (summary["pages_ocr"], summary["pages_without_text"], summary["notes"]) == (0, 0, [])


def test_the_summary_counts_pages_read_by_ocr_or_without_text_and_says_it_was_repaired() -> None:
    result = _result(["layer", "ocr", "ocr", "none"], [REPAIR_NOTE])
    summary = _summary(result, "scan.pdf")
    assert summary["summary"] == (
        "scan.pdf: 4 pages, 0 zones; 2 pages read by OCR; 1 page without a text layer, not "
        "read; the file was damaged and repaired automatically"
    )
    assert (summary["pages_ocr"], summary["pages_without_text"]) == (2, 1)
    assert summary["notes"] == [REPAIR_NOTE]
    # Other notes are pointed at, not quoted (the line is cut at 200 characters).
    assert _summary(_result(["layer"], ["Something else."]), None)["summary"].endswith(
        "; see the notes"
    )


def test_a_part_id_names_its_job() -> None:
    assert part_id("pdf-0123abcd", 21) == "pdf-0123abcd-p21"
    assert job_of_part("pdf-0123abcd-p21") == "pdf-0123abcd"
    assert job_of_part("pdf-0123abcd") is None
