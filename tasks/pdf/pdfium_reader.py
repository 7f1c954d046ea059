"""What PDFium reads of a file: its validation and page sizes, its page count, a page drawn.

PDFium loads the cross-reference table strictly, tells a wrong password apart from a corrupt
file, and gives every page's size without parsing its content, so it decides which uploads are
refused (:func:`page_sizes`, for :func:`tasks.pdf.document.open_document`) and why.

PDFium is process-global and not thread-safe (its last-error code is global too): every call
into it, here and in :mod:`tasks.pdf.preview`, holds :data:`PDFIUM_LOCK`, so a threads-pool
worker can run several documents. That shared lock is why these calls live in one module.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pypdfium2 as pdfium
from pdfminer.pdfdocument import PDFDocument
from pdfminer.pdfparser import PDFParser
from pdfminer.pdftypes import resolve1
from PIL import Image

from .errors import CorruptPdf, EmptyPdf, EncryptedPdf, PdfRejected, TruncatedPdf

__all__ = ["PDFIUM_LOCK", "PdfSource", "count_pages", "page_sizes", "render_page"]

#: Held around every call into PDFium in this process.
PDFIUM_LOCK = threading.Lock()
#: Where to look for the ``%%EOF`` marker; writers may append a little junk after it.
_TRAILER_WINDOW = 2048
#: Page size (points) assumed when a page has no usable MediaBox, as pdfminer does.
_US_LETTER = (612.0, 792.0)

#: A path, or the file's bytes.
PdfSource = str | os.PathLike[str] | bytes


def page_sizes(data: bytes, password: str | None) -> list[tuple[float, float]]:
    """Every page's ``(width, height)`` in points, as PDFium reads the file.

    Raises:
        EmptyPdf, EncryptedPdf, TruncatedPdf, CorruptPdf: PDFium cannot open the file, each
            with a ``reason`` to show to the user; or no page of it can be read.
    """
    with PDFIUM_LOCK:
        return _page_sizes_locked(data, password)


def count_pages(source: PdfSource) -> int | None:
    """The number of pages as PDFium reads it, without validating anything else; ``None``
    when the file cannot be read or opened (it will be refused when it is processed).

    About a millisecond for most files: for a publisher that needs a size before queueing.
    """
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError:
        return None
    with PDFIUM_LOCK:
        try:
            doc = pdfium.PdfDocument(data)
        except pdfium.PdfiumError:
            return None
        try:
            return len(doc)
        finally:
            doc.close()


def render_page(data: bytes, password: str | None, number: int, dpi: int) -> Image.Image:
    """Page ``number`` (1-based) as an RGB image at ``dpi``, rendered by PDFium."""
    with PDFIUM_LOCK:
        doc = pdfium.PdfDocument(data, password=password)
        try:
            page = doc[number - 1]
            image: Image.Image = page.render(scale=dpi / 72).to_pil().convert("RGB")
            page.close()
        finally:
            doc.close()
    return image


def _page_sizes_locked(data: bytes, password: str | None) -> list[tuple[float, float]]:
    try:
        doc = pdfium.PdfDocument(data, password=password)
    except pdfium.PdfiumError as exc:
        raise _rejection(data, password, exc) from None
    try:
        sizes: list[tuple[float, float]] = []
        unreadable = 0
        for index in range(len(doc)):
            try:
                width, height = doc.get_page_size(index)
            except pdfium.PdfiumError:  # a broken page object; pdfminer will say what is wrong
                width = height = 0.0
                unreadable += 1
            if not (width > 0 and height > 0):  # no usable MediaBox: assume US Letter
                width, height = _US_LETTER
            sizes.append((float(width), float(height)))
    finally:
        doc.close()
    if sizes and unreadable == len(sizes):
        raise CorruptPdf("The PDF is damaged and cannot be read (its page tree is broken).")
    return sizes


def _rejection(data: bytes, password: str | None, exc: pdfium.PdfiumError) -> PdfRejected:
    message = str(exc).lower()
    # PDFium refuses a document whose page tree is empty, and then leaves its last error code
    # as the previous failure's (so the message may even say "password"): check for that first.
    # pdfminer reads both an empty tree and some damaged files as zero pages, so look at the
    # tree itself rather than at a page count.
    if _declares_no_pages(data):
        return EmptyPdf("The PDF has no pages.")
    if "password" in message and b"/Encrypt" in data:
        if password:
            return EncryptedPdf("The PDF is encrypted and the password given is wrong.")
        return EncryptedPdf("The PDF is encrypted; it cannot be opened without its password.")
    if b"%%EOF" not in data[-_TRAILER_WINDOW:]:
        return TruncatedPdf(
            "The PDF is incomplete: it ends before its end-of-file marker, "
            "so it was probably cut off during upload or download."
        )
    return CorruptPdf(
        f"The PDF is damaged and cannot be read ({_pdfium_reason(str(exc))}). Upload the "
        "original file again, or save it anew from the program that made it."
    )


def _declares_no_pages(data: bytes) -> bool:
    """True when the catalog's page tree is readable and says ``/Count 0`` with no kids."""
    try:
        document = PDFDocument(PDFParser(io.BytesIO(data)))
        tree = resolve1(document.catalog.get("Pages"))
        count = resolve1(tree.get("Count"))
        kids = resolve1(tree.get("Kids")) or []
    except Exception:  # damaged beyond reading the tree: not "empty", corrupt
        return False
    return count == 0 and len(kids) == 0


def _pdfium_reason(message: str) -> str:
    # "Failed to load document (PDFium: Data format error)." -> "data format error"
    start = message.find("PDFium: ")
    if start < 0:
        return "unreadable structure"
    return message[start + len("PDFium: ") :].rstrip(").").lower() or "unreadable structure"
