"""Zone detection and extraction on generated pages with known content."""

from __future__ import annotations

import pytest

from tasks.pdf import RecordingSink, process_document
from tasks.pdf.extract import text_confidence
from tasks.pdf.zones import ZONES_PER_PAGE, zone_index
from tests import pdf_samples


def test_a_mixed_page_yields_text_table_and_figure_zones_in_reading_order() -> None:
    result = process_document(pdf_samples.mixed_pdf(), RecordingSink())

    assert [(z.zone_id, z.kind) for z in result.zones] == [
        ("p1-z1", "text"),
        ("p1-z2", "text"),
        ("p1-z3", "table"),
        ("p1-z4", "figure"),
        ("p1-z5", "text"),
    ]
    heading, first, table, figure, last = result.zones
    assert heading.text == "Quarterly report"
    assert first.text == pdf_samples.PARAGRAPHS[0]
    assert last.text == pdf_samples.PARAGRAPHS[1]
    assert table.rows == pdf_samples.TABLE_ROWS
    assert (table.tool, table.confidence) == ("pdfplumber.table", 1.0)
    assert figure.figure is not None
    assert (figure.figure.width, figure.figure.height) == (160.0, 100.0)
    assert (figure.figure.pixel_width, figure.figure.pixel_height) == (160, 100)
    assert figure.text is None
    assert [z.index for z in result.zones] == [0, 1, 2, 3, 4]
    # Boxes are in points from the top-left, inside the A4 page, and stacked top to bottom.
    assert all(0 <= z.bbox[0] < z.bbox[2] <= 595.3 for z in result.zones)
    tops = [z.bbox[1] for z in result.zones]
    assert tops == sorted(tops)
    assert figure.bbox == (56.0, table.bbox[3] + 24, 216.0, table.bbox[3] + 124)


def test_text_zones_report_tool_confidence_duration_and_a_summary() -> None:
    sink = RecordingSink()
    process_document(pdf_samples.text_pdf(), sink)

    completed = sink.of("zone_completed")
    assert [c["tool"] for c in completed] == ["pdfplumber.text"] * 3
    assert all(c["confidence"] == 1.0 and c["duration_ms"] >= 0 for c in completed)
    assert completed[1]["summary"] == pdf_samples.PARAGRAPHS[0]


def test_an_image_only_page_is_one_figure_zone_and_no_text() -> None:
    result = process_document(pdf_samples.image_only_pdf(), RecordingSink())
    assert [(z.kind, z.bbox) for z in result.zones] == [("figure", (100.0, 100.0, 420.0, 300.0))]


def test_two_columns_are_read_column_by_column_between_full_width_zones() -> None:
    # The columns' paragraphs line up across the gutter, which a plain top-to-bottom sort
    # (or a naive XY-cut) would read row by row.
    result = process_document(pdf_samples.two_column_pdf(), RecordingSink())
    assert [z.text for z in result.zones] == pdf_samples.TWO_COLUMN_ORDER


def test_zone_indexes_depend_only_on_page_and_position() -> None:
    assert zone_index(1, 1) == 0
    assert zone_index(3, 2) == 2 * ZONES_PER_PAGE + 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Plain readable text.", 1.0),
        ("", 0.0),
        ("(cid:12)(cid:13)ab", 2 / 18),
        ("ok\ufffd\ufffd", 0.5),
        ("\ue000\ue001ab", 0.5),
    ],
)
def test_text_confidence_is_the_share_of_readable_characters(text: str, expected: float) -> None:
    assert text_confidence(text) == pytest.approx(expected, abs=1e-3)
