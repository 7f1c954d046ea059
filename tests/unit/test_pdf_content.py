"""The bound on a page's decompressed content: measured as pdfminer would read it, without
inflating a bomb, counting forms as often as they are drawn; and the document refused with the
page number before pdfplumber parses that page."""

from __future__ import annotations

import io
import time
import tracemalloc
import zlib
from collections.abc import Iterator

import pdfplumber
import pikepdf
import pytest
from pdfminer.pdfpage import PDFPage

from tasks.pdf import ContentTooLarge, RecordingSink, page_content_size, process_document
from tests import pdf_samples
from tests.pdf_samples import DENSE_TEXT, inflated_pdf, nested_forms_pdf

MIB = 1024 * 1024


def pdfminer_pages(data: bytes) -> Iterator[PDFPage]:
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        yield from PDFPage.create_pages(pdf.doc)


def decoded_contents(data: bytes) -> list[int]:
    """Each page's content streams decoded by qpdf: the reference for the measure."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return [len(page.obj.Contents.read_bytes()) for page in pdf.pages]


def test_an_ordinary_page_measures_its_decompressed_content_exactly() -> None:
    data = pdf_samples.many_pages_pdf(5)
    sizes = [page_content_size(page, 4 * MIB) for page in pdfminer_pages(data)]
    assert sizes == decoded_contents(data)
    assert all(0 < size < 10_000 for size in sizes)


def test_a_bomb_is_measured_without_inflating_it() -> None:
    # 64 MiB of drawing in a 200 KB file: measuring it against 4 MiB inflates 4 MiB, no more
    # (zlib joins its output blocks into one bytes object at the end: twice that at the peak).
    data = inflated_pdf(64 * MIB)
    assert len(data) < 250_000
    [page] = pdfminer_pages(data)
    tracemalloc.start()
    started = time.process_time()
    try:
        size = page_content_size(page, 4 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 4 * MIB < size < 4 * MIB + 16  # stopped just past the limit
    assert peak < 9 * MIB
    assert time.process_time() - started < 1.0
    # Under a higher limit the same page measures its full size.
    [page] = pdfminer_pages(data)
    assert page_content_size(page, 100 * MIB) == 64 * MIB // len(DENSE_TEXT) * len(DENSE_TEXT)


def test_forms_count_as_often_as_they_are_drawn() -> None:
    # 10 × 10 × 10 drawings of one line: about 1,000 lines for a few hundred bytes.
    [page] = pdfminer_pages(nested_forms_pdf(levels=3, fanout=10))
    size = page_content_size(page, 4 * MIB)
    assert 1_000 * len(DENSE_TEXT) <= size < 1_000 * len(DENSE_TEXT) * 1.2
    # 20 ** 5 = 3.2 M lines in 1.7 KB: over the bound, found without drawing them.
    data = nested_forms_pdf(levels=5, fanout=20)
    assert len(data) < 3_000
    [page] = pdfminer_pages(data)
    assert page_content_size(page, 4 * MIB) > 4 * MIB


def _page_with_stream(raw: bytes, filters: list[str]) -> bytes:
    pdf = pikepdf.new()
    stream = pikepdf.Stream(pdf, raw)
    stream.Filter = pikepdf.Array([pikepdf.Name(f) for f in filters])
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, 612, 792], Contents=pdf.make_indirect(stream)
    )
    pdf.pages.append(pikepdf.Page(page))
    out = io.BytesIO()
    pdf.save(out, compress_streams=False)
    return out.getvalue()


def _run_length(data: bytes) -> bytes:
    """RunLengthDecode's encoding: runs of up to 128 copies, literal bytes one at a time."""
    out = bytearray()
    i = 0
    while i < len(data):
        run = 1
        while i + run < len(data) and data[i + run] == data[i] and run < 128:
            run += 1
        out += bytes([257 - run, data[i]]) if run > 1 else bytes([0, data[i]])
        i += run
    return bytes(out + b"\x80")


@pytest.mark.parametrize(
    ("filters", "encode"),
    [
        (["/ASCIIHexDecode", "/FlateDecode"], lambda d: zlib.compress(d).hex().encode()),
        (
            ["/ASCII85Decode", "/FlateDecode"],
            lambda d: __import__("base64").a85encode(zlib.compress(d)) + b"~>",
        ),
        (["/FlateDecode", "/FlateDecode"], lambda d: zlib.compress(zlib.compress(d))),
        (["/RunLengthDecode"], _run_length),
    ],
)
def test_filter_chains_decode_to_the_same_size_as_pdfminer_reads(filters, encode) -> None:  # type: ignore[no-untyped-def]
    content = b"BT /F1 9 Tf 72 700 Td (aaaaaaaaaaaaaaaaaaaaaaaaa) Tj ET\n" * 200
    [page] = pdfminer_pages(_page_with_stream(encode(content), filters))
    assert page_content_size(page, 4 * MIB) == len(content)


def test_a_run_length_bomb_is_cut_at_the_bound() -> None:
    # 64 × expansion: 2 bytes per 128-byte run.
    raw = bytes([129, ord("A")]) * (8 * MIB // 128) + b"\x80"
    [page] = pdfminer_pages(_page_with_stream(raw, ["/RunLengthDecode"]))
    assert 1 * MIB < page_content_size(page, 1 * MIB) < 1 * MIB + 256  # (one run past)


def test_process_document_refuses_a_page_over_the_bound_before_laying_it_out() -> None:
    # Page 2 of 3 inflates to 8 MiB: pdfplumber would need about 8 GiB for it.
    sink = RecordingSink()
    started = time.process_time()
    with pytest.raises(ContentTooLarge) as refused:
        process_document(inflated_pdf(8 * MIB, pages=3, inflated=(2,)), sink)
    assert time.process_time() - started < 2.0
    assert str(refused.value).startswith(
        "Page 2 holds more than 4 MiB of drawing instructions once decompressed, the most one "
        "page may hold."
    )
    assert (refused.value.page, refused.value.limit, refused.value.code) == (
        2,
        4 * MIB,
        "content_too_large",
    )
    # Page 1 was processed and reported; page 2 never reached the zone detector.
    assert {z.page for z in sink.declared} == {1}


def test_the_bound_is_a_parameter_and_none_does_not_measure() -> None:
    data = inflated_pdf(64 * 1024)
    with pytest.raises(ContentTooLarge, match="more than 32 KiB"):
        process_document(data, RecordingSink(), max_page_content_bytes=32 * 1024)
    result = process_document(data, RecordingSink(), max_page_content_bytes=None)
    assert result.pages[0].status == "ok"
