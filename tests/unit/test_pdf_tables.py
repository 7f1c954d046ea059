"""A table zone only where a ruled grid holds words in rows and columns and cuts none."""

from __future__ import annotations

from tasks.pdf import RecordingSink, export_csv, export_markdown, process_document
from tests import pdf_samples


def test_a_bar_chart_s_empty_grid_is_a_figure_not_a_table() -> None:
    result = process_document(pdf_samples.bar_chart_pdf(), RecordingSink())

    assert [z for z in result.zones if z.kind == "table"] == []
    figures = [z for z in result.zones if z.kind == "figure"]
    assert [z.bbox for z in figures] == [(56.0, 120.0, 476.0, 320.0)]
    assert figures[0].figure is not None and figures[0].figure.pixel_width is None
    # nothing of the chart lands in the CSV export as a table
    assert ",table_row," not in export_csv(result)
    assert ",table," not in export_csv(result)


def test_a_grid_whose_rules_cut_words_is_text_with_whole_words() -> None:
    result = process_document(pdf_samples.ruled_text_column_pdf(), RecordingSink())

    assert [z.kind for z in result.zones] == ["text"]
    assert result.zones[0].text == "\n".join(pdf_samples.COLUMN_TEXT)
    assert "|" not in export_markdown(result)


def test_a_ruled_table_with_filled_cells_is_still_a_table() -> None:
    result = process_document(pdf_samples.mixed_pdf(), RecordingSink())

    tables = [z for z in result.zones if z.kind == "table"]
    assert [t.rows for t in tables] == [pdf_samples.TABLE_ROWS]
