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
from collections.abc import Callable

import pikepdf
from pdfminer.pdfdocument import PDFDocument
from pdfminer.pdfpage import PDFPage

from .errors import CorruptPdf, is_recursion

__all__ = ["layout_problem", "repair"]


def layout_problem(
    open_document: Callable[[], PDFDocument],
    page_count: int,
    *,
    page_boxes: bool = True,
) -> tuple[str | None, list[PDFPage]]:
    """Why pdfminer cannot lay out a file, in a short phrase (``None`` when it can), and the
    pages it found, for the caller to use instead of walking the page tree again.

    Walking the page tree costs about 3 ms a page (0.9 s for a 311-page manual), so only the
    first ``page_count`` pages are walked: a caller processing pages up to N passes N.

    Args:
        open_document: parses the file's cross-reference table with pdfminer.
        page_count: pdfminer must find at least this many pages (PDFium's count, or the last
            page of the range to process).
        page_boxes: also require every page to have a MediaBox, its own or inherited. A page
            tree node of the wrong type (``/Type /Pagex``) hides the inherited box from
            pdfminer, and pdfplumber then cannot build the page; qpdf rebuilds such a tree.
    """
    pages: list[PDFPage] = []
    try:
        document = open_document()
        for page in PDFPage.create_pages(document):
            pages.append(page)
            if len(pages) >= page_count:
                break
    except RecursionError:
        return "its cross-reference chain loops back on itself", []
    except Exception as exc:  # pdfminer raises many types on a broken structure
        if is_recursion(exc):  # pdfplumber wraps it
            return "its cross-reference chain loops back on itself", []
        return f"its structure could not be parsed ({type(exc).__name__})", []
    boxless = sum("MediaBox" not in page.attrs for page in pages)
    if page_boxes and boxless:
        return f"its page tree is malformed ({boxless} of {len(pages)} pages have no page size)", []
    if len(pages) < page_count:
        problem = (
            "its cross-reference table points to the wrong places: "
            f"{len(pages)} of {page_count} pages found"
        )
        return problem, []
    return None, pages


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
