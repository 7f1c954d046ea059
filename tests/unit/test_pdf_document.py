"""Bad input is refused up front with a typed reason, and nothing is reported for it."""

from __future__ import annotations

import pytest

from tasks.pdf import (
    CorruptPdf,
    EmptyPdf,
    EncryptedPdf,
    InvalidPageRange,
    NotAPdf,
    PdfRejected,
    RecordingSink,
    TooManyPages,
    TruncatedPdf,
    open_document,
    process_document,
)
from tests import pdf_samples


def _rejection(data: bytes, **kwargs: object) -> PdfRejected:
    sink = RecordingSink()
    with pytest.raises(PdfRejected) as info:
        process_document(data, sink, **kwargs)  # type: ignore[arg-type]
    assert sink.calls == [], "a rejected document must report no progress"
    return info.value


def test_a_file_without_pdf_header_is_not_a_pdf() -> None:
    exc = _rejection(pdf_samples.not_a_pdf())
    assert isinstance(exc, NotAPdf)
    assert exc.code == "not_a_pdf"
    assert str(exc) == "The file is not a PDF (it does not start with a %PDF- header)."


def test_an_empty_file_is_not_a_pdf() -> None:
    exc = _rejection(b"")
    assert isinstance(exc, NotAPdf)
    assert str(exc) == "The file is empty."


def test_a_truncated_upload_is_reported_as_cut_off() -> None:
    exc = _rejection(pdf_samples.truncated_pdf())
    assert isinstance(exc, TruncatedPdf)
    assert isinstance(exc, CorruptPdf)
    assert "cut off" in str(exc)


def test_a_damaged_cross_reference_with_an_eof_marker_is_corrupt() -> None:
    # Overwrite the middle of a complete file (keeping %%EOF): damage, not truncation.
    data = bytearray(pdf_samples.mixed_pdf())
    middle = len(data) // 3
    data[middle:] = b"\x00" * (len(data) - middle - 6) + b"%%EOF\n"
    exc = _rejection(bytes(data))
    assert type(exc) is CorruptPdf
    assert str(exc).startswith("The PDF is damaged and cannot be read")


def test_a_broken_page_tree_is_corrupt_not_empty() -> None:
    # "/Kids" misspelt: pdfminer finds no pages (pdfplumber raises TypeError listing them),
    # PDFium counts one page it cannot size.
    data = pdf_samples.many_pages_pdf(3).replace(b"/Kids [", b"/Kidz [", 1)
    exc = _rejection(data)
    assert type(exc) is CorruptPdf
    assert str(exc) == "The PDF is damaged and cannot be read (its page tree is broken)."


def test_an_encrypted_pdf_without_password_is_refused() -> None:
    exc = _rejection(pdf_samples.encrypted_pdf())
    assert isinstance(exc, EncryptedPdf)
    assert str(exc) == "The PDF is encrypted; it cannot be opened without its password."


def test_an_encrypted_pdf_with_a_wrong_password_says_so() -> None:
    exc = _rejection(pdf_samples.encrypted_pdf(), password="guess")
    assert isinstance(exc, EncryptedPdf)
    assert str(exc) == "The PDF is encrypted and the password given is wrong."


def test_an_encrypted_pdf_with_its_password_is_processed() -> None:
    result = process_document(
        pdf_samples.encrypted_pdf("s3cret"), RecordingSink(), password="s3cret"
    )
    assert [z.text for z in result.zones] == [pdf_samples.PARAGRAPHS[0]]


def test_a_pdf_with_zero_pages_is_empty() -> None:
    exc = _rejection(pdf_samples.zero_pages_pdf())
    assert isinstance(exc, EmptyPdf)
    assert str(exc) == "The PDF has no pages."


def test_a_document_over_the_page_limit_is_refused_with_both_numbers() -> None:
    exc = _rejection(pdf_samples.many_pages_pdf(30), max_pages=20)
    assert isinstance(exc, TooManyPages)
    assert (exc.page_count, exc.limit) == (30, 20)
    assert str(exc) == "The document has 30 pages; at most 20 pages can be processed."


@pytest.mark.parametrize(("first", "last"), [(0, 2), (3, 2), (2, 31), (31, None)])
def test_a_page_range_outside_the_document_is_refused(first: int, last: int | None) -> None:
    exc = _rejection(pdf_samples.many_pages_pdf(30), first_page=first, last_page=last)
    assert isinstance(exc, InvalidPageRange)
    assert "the document has pages 1–30" in str(exc)


def test_open_document_reads_page_sizes_without_parsing_content() -> None:
    with open_document(pdf_samples.many_pages_pdf(30)) as doc:
        assert doc.page_count == 30
        info = doc.page_info(7)
    assert (info.number, round(info.width, 2), round(info.height, 2)) == (7, 595.28, 841.89)


def test_open_document_takes_a_path_and_keeps_only_the_file_name(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "report.pdf"
    path.write_bytes(pdf_samples.text_pdf())
    with open_document(path) as doc:
        assert doc.name == "report.pdf"
