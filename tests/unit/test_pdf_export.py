"""JSON, Markdown and CSV exports of a processed document."""

from __future__ import annotations

import csv
import io
import json

import pytest

from progress_bridge.events import ExportFormat
from tasks.pdf import (
    DocumentResult,
    RecordingSink,
    export_csv,
    export_document,
    export_json,
    export_markdown,
    process_document,
)
from tests import pdf_samples


@pytest.fixture(scope="module")
def mixed() -> DocumentResult:
    result = process_document(pdf_samples.mixed_pdf(), RecordingSink())
    return result.model_copy(update={"source_name": "Q3 report.pdf"})


def test_json_export_holds_every_zone_with_its_box_and_round_trips(mixed: DocumentResult) -> None:
    data = json.loads(export_json(mixed))
    assert [z["zone_id"] for z in data["zones"]] == ["p1-z1", "p1-z2", "p1-z3", "p1-z4", "p1-z5"]
    assert data["zones"][2]["rows"] == pdf_samples.TABLE_ROWS
    assert len(data["zones"][3]["bbox"]) == 4
    assert data["pages"][0]["number"] == 1
    assert DocumentResult.from_dict(data) == mixed


def test_markdown_export_follows_reading_order_with_a_pipe_table_and_figure_line(
    mixed: DocumentResult,
) -> None:
    text = export_markdown(mixed)
    expected_table = (
        "| Region | Units | Revenue |\n"
        "| --- | --- | --- |\n"
        "| North | 120 | 4,800 |\n"
        "| South | 95 | 3,610 |\n"
        "| East | 143 | 5,720 |\n"
    )
    assert text.startswith("# Q3 report.pdf\n\n## Page 1\n\nQuarterly report\n")
    assert expected_table in text
    assert "*[Figure p1-z4: 160 × 100 pt at (56, " in text
    positions = [
        text.index(pdf_samples.PARAGRAPHS[0]),
        text.index("| Region"),
        text.index("*[Figure p1-z4"),
        text.index(pdf_samples.PARAGRAPHS[1]),
    ]
    assert positions == sorted(positions)


def test_markdown_marks_failed_zones_instead_of_dropping_them() -> None:
    result = process_document(pdf_samples.broken_page_pdf(pages=3, broken=2), RecordingSink())
    text = export_markdown(result)
    assert "## Page 2\n\n> *[page p2-z1 could not be processed: Page 2 cannot be parsed" in text


def test_csv_export_puts_every_table_in_one_file_with_its_id() -> None:
    result = process_document(pdf_samples.many_pages_pdf(6), RecordingSink())
    rows = list(csv.reader(io.StringIO(export_csv(result))))
    assert rows[0] == ["table_id", "page", "row", "c1", "c2", "c3"]
    assert rows[1] == ["p3-z3", "3", "1", "0.0", "0.1", "0.2"]
    assert [r[0] for r in rows[1:]] == ["p3-z3"] * 4 + ["p6-z3"] * 4


def test_csv_export_of_a_document_without_tables_is_just_the_header() -> None:
    result = process_document(pdf_samples.text_pdf(), RecordingSink())
    assert export_csv(result) == "table_id,page,row\r\n"


@pytest.mark.parametrize(
    ("fmt", "filename", "media_type"),
    [
        (ExportFormat.JSON, "Q3_report.json", "application/json"),
        (ExportFormat.MARKDOWN, "Q3_report.md", "text/markdown; charset=utf-8"),
        (ExportFormat.CSV, "Q3_report-tables.csv", "text/csv; charset=utf-8"),
    ],
)
def test_export_document_reports_monotonic_progress_ending_at_100(
    mixed: DocumentResult, fmt: ExportFormat, filename: str, media_type: str
) -> None:
    percents: list[float] = []
    output = export_document(mixed, fmt, on_progress=percents.append)
    assert (output.filename, output.media_type) == (filename, media_type)
    assert output.data
    assert percents == sorted(percents)
    assert percents[0] == 0.0 and percents[-1] == 100.0


def test_export_file_names_never_carry_a_path() -> None:
    result = DocumentResult(
        source_name="../../etc/passwd.pdf", page_count=1, first_page=1, last_page=1
    )
    assert export_document(result, ExportFormat.JSON).filename == "passwd.json"
