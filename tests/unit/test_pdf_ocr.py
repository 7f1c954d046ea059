"""Pages without a text layer: read by Tesseract, or marked when OCR is unavailable."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.pdf import (
    NO_TEXT_LAYER,
    OCR_TOOL,
    RecordingSink,
    TesseractOcr,
    export_markdown,
    process_document,
)
from tests import pdf_samples
from tests.missing import missing
from tests.pdf_samples import assert_sink_contract


@pytest.fixture(scope="module")
def tesseract() -> TesseractOcr:
    """The real Tesseract; a skip where it is not installed, a failure under CI (where
    scripts/bootstrap installs it), so the OCR tests cannot silently stop running."""
    ocr = TesseractOcr()
    if not ocr.available():
        missing("tesseract is not installed (scripts/bootstrap installs Debian's tesseract-ocr)")
    return ocr


def test_a_scanned_page_is_read_by_ocr_with_the_ocr_tool_and_its_confidence(
    tesseract: TesseractOcr,
) -> None:
    sink = RecordingSink()
    result = process_document(pdf_samples.scanned_pdf(), sink, ocr=tesseract)

    assert_sink_contract(sink)
    texts = [z for z in result.zones if z.kind == "text"]
    assert [z.text for z in texts] == pdf_samples.SCANNED_LINES
    assert {z.tool for z in texts} == {OCR_TOOL}
    assert all(z.confidence is not None and 0.8 <= z.confidence <= 1.0 for z in texts)
    # the events say which tool read the zone, and how sure it was
    processing = {c["zone_id"]: c["tool"] for c in sink.of("zone_processing")}
    completed = {c["zone_id"]: c for c in sink.of("zone_completed")}
    for zone in texts:
        assert processing[zone.zone_id] == OCR_TOOL
        assert completed[zone.zone_id]["confidence"] == zone.confidence
    page = result.pages[0]
    assert page.text_source == "ocr"
    assert page.notes[0].startswith("The page has no text layer (it is a scan); its text was read")
    assert result.tools["tesseract"] == tesseract.version()


def test_without_tesseract_a_scanned_page_is_marked_as_having_no_text_layer(
    tmp_path: Path,
) -> None:
    # OCR made unavailable through the parameter: a command that does not exist
    missing = TesseractOcr(command=str(tmp_path / "no-tesseract"))
    assert not missing.available()
    sink = RecordingSink()

    result = process_document(pdf_samples.scanned_pdf(), sink, ocr=missing)

    assert [z.kind for z in result.zones] == ["figure"]
    figure = result.zones[0]
    assert figure.notes == [NO_TEXT_LAYER]
    [event] = sink.of("zone_completed")
    assert event["summary"].startswith(f"[{NO_TEXT_LAYER}] image 595×842 pt")
    page = result.pages[0]
    assert page.text_source == "none"
    assert "install Tesseract" in page.notes[0]
    assert NO_TEXT_LAYER in export_markdown(result)


def test_ocr_none_skips_ocr_and_marks_the_page_the_same_way() -> None:
    result = process_document(pdf_samples.scanned_pdf(), RecordingSink(), ocr=None)

    assert result.pages[0].text_source == "none"
    assert result.zones[0].notes == [NO_TEXT_LAYER]


def test_a_page_with_a_text_layer_is_not_sent_to_ocr(tmp_path: Path) -> None:
    missing = TesseractOcr(command=str(tmp_path / "no-tesseract"))
    result = process_document(pdf_samples.mixed_pdf(), RecordingSink(), ocr=missing)

    assert result.pages[0].text_source == "layer"
    assert all(not z.notes for z in result.zones)
