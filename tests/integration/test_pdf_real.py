"""Real-world PDFs written by others (pypdf's test corpus, fetched with pip and cached)."""

from __future__ import annotations

import collections
from pathlib import Path

import pdfplumber
import pypdfium2 as pdfium
import pytest

from tasks.pdf import (
    EncryptedPdf,
    RecordingSink,
    TruncatedPdf,
    process_document,
)
from tests.pdf_samples import assert_sink_contract
from tests.real_pdfs import corpus_pdf_or_skip, pypdf_resources_or_skip


@pytest.fixture(scope="module")
def resources() -> Path:
    return pypdf_resources_or_skip()


def test_a_ruled_table_pdf_yields_one_table_zone_with_its_cells(resources: Path) -> None:
    sink = RecordingSink()
    result = process_document(resources / "Sample_Td-matrix.pdf", sink)

    assert_sink_contract(sink)
    assert [(z.zone_id, z.kind) for z in result.zones] == [("p1-z1", "table")]
    assert result.zones[0].rows == [
        ["Hello PDF 2 1!", "Hello PDF 10 7!"],
        ["Hello PDF!", "Hello PDF 200 0 Td!"],
    ]
    assert result.zones[0].confidence == 1.0


def test_a_government_form_s_framed_fields_are_text_not_tables(resources: Path) -> None:
    # The form frames each field in a one-column grid and its buttons in a one-row grid: no
    # cell has a neighbour to line up with, so neither is a table (they used to be, with a
    # confidence of 0.5).
    result = process_document(resources / "SF424_page2.pdf", RecordingSink())

    assert [z.kind for z in result.zones if z.kind != "text"] == []
    texts = [z.text for z in result.zones]
    assert texts[:4] == [
        "OMB Number: 4040-0004",
        "Expiration Date: 01/31/2009",
        "Application for Federal Assistance SF-424",
        "Version 02",
    ]


def test_a_text_page_is_split_into_paragraph_blocks(resources: Path) -> None:
    result = process_document(resources / "crazyones.pdf", RecordingSink())

    assert all(z.kind == "text" for z in result.zones)
    assert len(result.zones) == 9
    assert result.zones[0].text == "The Crazy Ones"
    assert result.zones[1].text == "October 14, 1998"
    assert result.zones[-1].text is not None
    assert result.zones[-1].text.startswith("While some see them as the crazy ones, we see genius.")


@pytest.mark.parametrize("name", ["git.pdf", "imagemagick-lzw.pdf", "box.pdf"])
def test_an_image_only_page_yields_a_figure_zone_and_no_text(resources: Path, name: str) -> None:
    result = process_document(resources / name, RecordingSink())

    assert [z.kind for z in result.zones] == ["figure"]
    figure = result.zones[0].figure
    assert figure is not None and figure.pixel_width and figure.pixel_height


def test_an_ocr_scan_is_a_background_figure_with_its_text_layer_as_blocks(resources: Path) -> None:
    result = process_document(
        resources / "Seige_of_Vicksburg_Sample_OCR.pdf", RecordingSink(), last_page=1
    )

    assert result.zones[0].kind == "figure"
    assert result.zones[0].bbox == (0.0, 0.0, 432.0, 648.0)  # the whole page
    texts = [z.text or "" for z in result.zones if z.kind == "text"]
    assert "THE SIEGE OF VICKSBURG." in texts


@pytest.mark.parametrize(
    "name",
    [
        "encrypted-file.pdf",
        "crazyones-encrypted-256.pdf",
        "libreoffice-writer-password.pdf",
        "encryption/r4-aes-user-password.pdf",
        "encryption/r6-user-password.pdf",
    ],
)
def test_encrypted_files_are_refused_without_their_password(resources: Path, name: str) -> None:
    with pytest.raises(EncryptedPdf, match="cannot be opened without its password"):
        process_document(resources / name, RecordingSink())


def test_a_revision_5_user_password_file_is_refused_although_pdfminer_opens_it(
    resources: Path,
) -> None:
    # Why PDFium validates: pdfminer opens this user-password file without the password.
    path = resources / "encryption/r5-user-password.pdf"
    with pdfplumber.open(path) as pdf:
        assert len(pdf.pages) == 1
    with pytest.raises(EncryptedPdf):
        process_document(path, RecordingSink())


def test_the_right_password_opens_an_encrypted_file(resources: Path) -> None:
    # pypdf's tests: qpdf --encrypt "asdfzxcv" "" 256 -- unencrypted.pdf r6-user-password.pdf
    result = process_document(
        resources / "encryption/r6-user-password.pdf", RecordingSink(), password="asdfzxcv"
    )
    plain = process_document(resources / "encryption/unencrypted.pdf", RecordingSink())
    assert [z.text for z in result.zones] == [z.text for z in plain.zones]


def test_a_real_pdf_cut_in_half_is_reported_as_truncated(resources: Path) -> None:
    data = (resources / "crazyones.pdf").read_bytes()
    with pytest.raises(TruncatedPdf):
        process_document(data[: len(data) // 2], RecordingSink())


def test_a_multi_page_real_document_keeps_the_sink_contract(resources: Path) -> None:
    sink = RecordingSink()
    result = process_document(resources / "pdflatex-outline.pdf", sink)

    assert_sink_contract(sink)
    assert [p.number for p in result.pages] == [1, 2, 3, 4]
    assert {z.page for z in result.zones} == {1, 2, 3, 4}
    assert all(z.status == "completed" for z in result.zones)


def _pdfium_words(path: Path, page: int) -> list[str]:
    doc = pdfium.PdfDocument(str(path))
    try:
        text = doc[page - 1].get_textpage().get_text_range()
    finally:
        doc.close()
    # PDFium marks a word hyphenated at a line end with U+FFFE and joins it; the page shows two
    return text.replace("\ufffe", "- ").split()


def _bag_f1(extracted: list[str], reference: list[str]) -> float:
    matched = sum((collections.Counter(extracted) & collections.Counter(reference)).values())
    return 2 * matched / (len(extracted) + len(reference))


@pytest.mark.parametrize(("name", "page"), [("hotos17", 1), ("naacl06-shinyama", 2)])
def test_words_of_a_two_column_paper_match_pdfiums(name: str, page: int) -> None:
    path = corpus_pdf_or_skip(name)
    result = process_document(path, RecordingSink(), first_page=page, last_page=page)

    words = [w for z in result.zones for w in (z.text or "").split()]
    words += [w for z in result.zones for row in z.rows or [] for c in row for w in c.split()]
    assert _bag_f1(words, _pdfium_words(path, page)) >= 0.97


def test_unmapped_glyphs_are_dropped_and_their_zone_says_so() -> None:
    # i1040nr page 16 draws check boxes from a symbol font without a Unicode mapping
    path = corpus_pdf_or_skip("i1040nr")
    result = process_document(path, RecordingSink(), first_page=16, last_page=16)

    assert not any("(cid:" in (z.text or "") for z in result.zones)
    noted = [z for z in result.zones if any("without a Unicode mapping" in n for n in z.notes)]
    assert noted
    assert all(z.confidence is not None and z.confidence < 1.0 for z in noted)


def test_a_paper_s_ruled_tables_stay_tables_and_its_empty_diagram_grids_are_figures() -> None:
    path = corpus_pdf_or_skip("naacl06-shinyama")
    tables = process_document(path, RecordingSink(), first_page=2, last_page=2)
    diagram = process_document(path, RecordingSink(), first_page=4, last_page=4)

    rows = [z.rows for z in tables.zones if z.kind == "table"]
    assert rows[0] is not None and rows[0][0] == ["Article", "dump", "be-hit"]
    assert [z for z in diagram.zones if z.kind == "table"] == []
    drawings = [
        z for z in diagram.zones if z.kind == "figure" and z.figure and not z.figure.pixel_width
    ]
    assert len(drawings) == 2


def test_uml_class_boxes_are_not_tables_and_no_cell_cuts_a_word() -> None:
    # GeoBase's UML diagrams: framed class boxes (one column each), and on page 18 a grid
    # whose rule runs through "geometry" (it used to be a 1x2 table "uses ge | ometry").
    path = corpus_pdf_or_skip("geobase-uml")
    for page in (10, 18):
        result = process_document(path, RecordingSink(), first_page=page, last_page=page)
        assert [z for z in result.zones if z.kind == "table"] == []
        words = [w for z in result.zones for w in (z.text or "").split()]
        assert "«spatialDescriptiveEvol»" in words
    assert "ometry" not in words
