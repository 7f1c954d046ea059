"""The demo's document: the committed PDF is what its generator makes, and a real multi-page
document the PDF job reads (no network; the file and the generator are local)."""

from __future__ import annotations

import io

import pypdf

from tasks.demo_document import DEMO_PAGES, DEMO_PDF, generate
from tasks.pdf import RecordingSink, process_document


def _texts(data: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages]


def test_the_committed_demo_document_is_the_generated_one() -> None:
    # If this fails, run `python -m tasks.demo_document` and commit tasks/data/demo-report.pdf.
    assert _texts(DEMO_PDF.read_bytes()) == _texts(generate())


def test_the_demo_document_has_pages_of_text_tables_and_charts() -> None:
    result = process_document(DEMO_PDF.read_bytes(), RecordingSink())
    assert result.last_page - result.first_page + 1 == DEMO_PAGES
    kinds = {zone.kind for zone in result.zones}
    assert {"text", "table", "figure"} <= kinds
    assert len(result.zones) >= 5 * DEMO_PAGES  # enough zones to watch, page after page
