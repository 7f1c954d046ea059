"""Make a file that PDFium reads readable for pdfminer too, by letting qpdf rewrite it.

PDFium (which validates uploads, :mod:`tasks.pdf.document`) rebuilds a damaged cross-reference
table silently; pdfminer (under pdfplumber, which does the layout analysis) is stricter in
places: with object offsets shifted by a few bytes it finds no pages, and a ``/Prev`` chain that
loops back on itself makes it recurse until Python's recursion limit. qpdf (through pikepdf)
reconstructs the table and writes a clean file, which pdfminer then reads.

:func:`layout_problem` says whether pdfminer can read a file (it parses the cross-reference
table and walks the page tree, without reading any page's content); :func:`repair` rewrites it.
Neither raises anything but :class:`~tasks.pdf.errors.CorruptPdf`.
"""

from __future__ import annotations

import io

import pikepdf
from pdfminer.pdfdocument import PDFDocument
from pdfminer.pdfpage import PDFPage
from pdfminer.pdfparser import PDFParser

from .errors import CorruptPdf

__all__ = ["layout_problem", "repair"]


def layout_problem(
    data: bytes, password: str | None, page_count: int, *, page_boxes: bool = True
) -> str | None:
    """Why pdfminer cannot lay out this file, in a short phrase; ``None`` when it can.

    Walking the page tree costs about 3 ms a page (0.9 s for a 311-page manual): a caller that
    processes pages up to N passes ``page_count=N``, and only that much of the tree is walked
    (the pages after it are another range's business).

    Args:
        data: the file.
        password: its password, if encrypted.
        page_count: pdfminer must find at least this many pages (PDFium's count, or the last
            page of the range to process).
        page_boxes: also require every page to have a MediaBox, its own or inherited. A page
            tree node of the wrong type (``/Type /Pagex``) hides the inherited box from
            pdfminer, and pdfplumber then cannot build the page; qpdf rebuilds such a tree.
    """
    try:
        document = PDFDocument(PDFParser(io.BytesIO(data)), password=password or "")
        found = boxless = 0
        for page in PDFPage.create_pages(document):
            found += 1
            boxless += "MediaBox" not in page.attrs
            if found >= page_count:
                break
    except RecursionError:
        return "its cross-reference chain loops back on itself"
    except Exception as exc:  # pdfminer raises many types on a broken structure
        return f"its structure could not be parsed ({type(exc).__name__})"
    if page_boxes and boxless:
        return f"its page tree is malformed ({boxless} of {found} pages have no page size)"
    if found < page_count:
        return (
            "its cross-reference table points to the wrong places: "
            f"{found} of {page_count} pages found"
        )
    return None


def repair(data: bytes, password: str | None) -> bytes:
    """The file rewritten by qpdf: cross-reference table rebuilt, encryption removed.

    Raises:
        CorruptPdf: qpdf cannot read the file either.
    """
    try:
        with pikepdf.open(io.BytesIO(data), password=password or "") as pdf:
            out = io.BytesIO()
            pdf.save(out, encryption=False)
    except (pikepdf.PdfError, RecursionError, ValueError) as exc:
        raise CorruptPdf(
            "The PDF is damaged and cannot be read: its structure is broken beyond automatic "
            "repair. Open it in a PDF viewer and save or print it to a new PDF, then upload "
            "that file."
        ) from exc
    return out.getvalue()
