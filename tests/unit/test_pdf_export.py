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
    unwrap,
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


def test_csv_export_has_a_row_per_zone_and_each_table_s_rows_after_its_zone() -> None:
    result = process_document(pdf_samples.many_pages_pdf(6), RecordingSink())
    rows = list(csv.DictReader(io.StringIO(export_csv(result))))
    zone_rows = [r for r in rows if r["kind"] != "table_row"]
    assert [r["zone_id"] for r in zone_rows] == [z.zone_id for z in result.zones]
    first = zone_rows[0]
    assert (first["page"], first["kind"], first["status"], first["row"]) == (
        "1",
        "text",
        "completed",
        "",
    )
    assert [float(first[k]) for k in ("x0", "top", "x1", "bottom")] == pytest.approx(
        result.zones[0].bbox, abs=0.05
    )
    table_rows = [r for r in rows if r["kind"] == "table_row"]
    assert [r["zone_id"] for r in table_rows] == ["p3-z3"] * 4 + ["p6-z3"] * 4
    assert [table_rows[0][c] for c in ("row", "c1", "c2", "c3")] == ["1", "0.0", "0.1", "0.2"]
    # each table's rows follow its own zone's row
    p3_table = next(i for i, r in enumerate(rows) if r["zone_id"] == "p3-z3")
    assert [r["kind"] for r in rows[p3_table : p3_table + 5]] == ["table"] + ["table_row"] * 4


def test_csv_export_of_a_document_without_tables_still_lists_its_zones_with_their_text() -> None:
    result = process_document(pdf_samples.text_pdf(), RecordingSink())
    rows = list(csv.DictReader(io.StringIO(export_csv(result))))
    assert [r["zone_id"] for r in rows] == [z.zone_id for z in result.zones] != []
    assert [r["text"] for r in rows] == [z.text for z in result.zones]
    assert "c1" not in rows[0]


def test_markdown_writes_each_text_block_as_one_paragraph() -> None:
    result = process_document(pdf_samples.ruled_text_column_pdf(), RecordingSink())
    text = export_markdown(result)
    assert len(pdf_samples.COLUMN_TEXT) > 1
    assert unwrap("\n".join(pdf_samples.COLUMN_TEXT)) + "\n" in text


@pytest.mark.parametrize(
    ("text", "paragraph"),
    [
        ("We are trying to\nextend the boundary", "We are trying to extend the boundary"),
        ("Ex-\nisting systems", "Existing systems"),
        ("the MUC-\n6 scenario", "the MUC-6 scenario"),  # a compound: the hyphen stays
        ("COMPANY hired (or fired) PERSON-\nPOST", "COMPANY hired (or fired) PERSON-POST"),
        ("  one\n\n  two  ", "one two"),
        ("a dash -\nthen more", "a dash - then more"),
    ],
)
def test_unwrap_joins_layout_lines_and_line_end_hyphenation(text: str, paragraph: str) -> None:
    assert unwrap(text) == paragraph


@pytest.mark.parametrize(
    ("fmt", "filename", "media_type"),
    [
        (ExportFormat.JSON, "Q3_report.json", "application/json"),
        (ExportFormat.MARKDOWN, "Q3_report.md", "text/markdown; charset=utf-8"),
        (ExportFormat.CSV, "Q3_report.csv", "text/csv; charset=utf-8"),
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
