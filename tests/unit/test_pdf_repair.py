"""Malformed but readable files are repaired and processed; unreadable ones fail in a sentence."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

import pdfplumber
import pypdf
import pypdfium2 as pdfium
import pytest

from tasks.pdf import (
    CorruptPdf,
    RecordingSink,
    TruncatedPdf,
    export_markdown,
    merge_results,
    open_document,
    process_document,
)
from tasks.pdf.errors import is_recursion
from tests import pdf_samples


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (pdf_samples.shifted_xref_pdf, "its cross-reference table points to the wrong places"),
        (pdf_samples.prev_loop_pdf, "its cross-reference chain loops back on itself"),
    ],
    ids=["shifted-xref-offsets", "prev-loop"],
)
def test_a_file_pdfium_reads_but_pdfminer_cannot_is_repaired_and_processed(
    make: Callable[[], bytes], problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    data = make()
    # the premise: PDFium and pypdf read the file
    assert len(pdfium.PdfDocument(data)) == 3
    sink = RecordingSink()

    with caplog.at_level(logging.WARNING):
        result = process_document(data, sink)

    plain = process_document(pdf_samples.many_pages_pdf(3), RecordingSink())
    assert [z.text for z in result.zones] == [z.text for z in plain.zones]
    assert len(result.notes) == 1
    assert result.notes[0].startswith(f"The file is damaged ({problem}")
    assert result.to_dict()["notes"] == result.notes
    assert f"> {result.notes[0]}" in export_markdown(result)
    pdf_tasks = [r for r in caplog.records if r.name.startswith("tasks.pdf")]
    assert len(pdf_tasks) == 1, "one log line per repaired file"
    assert pdf_tasks[0].exc_info is None and "repaired by qpdf" in pdf_tasks[0].getMessage()


def test_pypdf_reads_the_hostile_files_too() -> None:
    for data in (pdf_samples.shifted_xref_pdf(), pdf_samples.prev_loop_pdf()):
        assert len(pypdf.PdfReader(io.BytesIO(data)).pages) == 3


def test_pdfminer_s_recursion_on_a_prev_loop_is_recognised_through_pdfplumber_s_wrapper() -> None:
    # what the worker used to log with a ~950-frame traceback
    with pytest.raises(Exception) as info:  # noqa: PT011 - pdfplumber's PdfminerException
        pdfplumber.open(io.BytesIO(pdf_samples.prev_loop_pdf()))
    assert not isinstance(info.value, RecursionError)
    assert is_recursion(info.value)
    assert not is_recursion(ValueError("other"))


def test_page_ranges_of_a_repaired_file_merge_with_the_note_once() -> None:
    data = pdf_samples.prev_loop_pdf()
    parts = [
        process_document(data, RecordingSink(), first_page=1, last_page=2),
        process_document(data, RecordingSink(), first_page=3, last_page=3),
    ]
    merged = merge_results(parts)
    assert len(merged.notes) == 1
    assert [p.number for p in merged.pages] == [1, 2, 3]


def test_a_truncated_file_is_refused_as_cut_off_before_any_progress() -> None:
    sink = RecordingSink()
    with pytest.raises(TruncatedPdf) as info:
        process_document(pdf_samples.truncated_pdf(), sink)
    assert sink.calls == []
    assert "cut off during upload or download" in str(info.value)


def test_garbage_after_a_pdf_header_is_refused_with_a_sentence_to_act_on() -> None:
    sink = RecordingSink()
    with pytest.raises(CorruptPdf) as info:
        process_document(pdf_samples.garbage_pdf(), sink)
    assert sink.calls == []
    message = str(info.value)
    assert message.startswith("The PDF is damaged and cannot be read")
    assert message.endswith(
        "Upload the original file again, or save it anew from the program that made it."
    )
    assert "Error" not in message and "Traceback" not in message


def test_the_repaired_copy_is_available_and_needs_no_second_repair() -> None:
    with open_document(pdf_samples.prev_loop_pdf()) as doc:
        doc.prepare_layout()
        repaired = doc.data
        assert doc.notes
    assert repaired != pdf_samples.prev_loop_pdf()
    result = process_document(repaired, RecordingSink())
    assert result.notes == []
    assert len(result.zones) == pdf_samples.expected_zone_count(3)
