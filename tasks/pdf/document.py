"""Open a PDF and refuse the ones that cannot be processed, before any progress is reported.

Two libraries, each for what it is best at (figures in ``docs/benchmarks.md``, "PDF"):

* **pypdfium2** (PDFium) validates: it loads the cross-reference table strictly, tells a wrong
  password apart from a corrupt file, and gives every page's size without parsing its content
  (:mod:`tasks.pdf.pdfium_reader`, which also draws pages). pdfminer (under pdfplumber) is
  lenient instead: a truncated file, or some files encrypted with a user password (revisions 5
  and 6 in pypdf's test corpus), open there with no error and read as garbage or as zero pages.
* **pdfplumber** (pdfminer.six) analyses layout: words with boxes, ruled tables, images. This
  module keeps that side: :class:`PdfDocument` prepares the layout (repairing the file when
  pdfminer cannot read it) and opens the pages.

Pages are opened one at a time (:meth:`PdfDocument.iter_pages`), so a page that pdfminer cannot
build is reported on its own and the other pages are still processed.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pdfplumber
from pdfminer.pdfdocument import PDFDocument
from pdfminer.pdfpage import PDFPage
from pdfplumber.page import Page
from pdfplumber.pdf import PDF
from PIL import Image

from progress_bridge.events import PageInfo

from .content import page_content_size
from .errors import (
    RECURSION_REASON,
    ContentTooLarge,
    CorruptPdf,
    EmptyPdf,
    InvalidPageRange,
    NotAPdf,
    TooManyPages,
    is_recursion,
)
from .pdfium_reader import PdfSource, count_pages, page_sizes
from .pdfium_reader import render_page as _render_page
from .repair import layout_problem, repair

__all__ = [
    "DEFAULT_MAX_PAGES",
    "REPAIRED",
    "PageSlot",
    "PdfDocument",
    "PdfSource",
    "count_pages",
    "open_document",
]

#: Page limit when the caller gives none; the web layer passes its configured limit.
DEFAULT_MAX_PAGES = 2_000
#: The PDF header may start anywhere in the first 1024 bytes (PDF 1.7, annex H.3).
_HEADER_WINDOW = 1024

log = logging.getLogger(__name__)
#: Words of the note a repaired document carries (for one-line summaries to look for).
REPAIRED = "repaired automatically"


@dataclass
class PageSlot:
    """One page of the requested range: either a pdfplumber page or the reason it failed."""

    number: int
    info: PageInfo
    page: Page | None
    error: str | None = None


class PdfDocument:
    """An open, validated PDF. Use as a context manager; :meth:`close` releases both parsers."""

    def __init__(
        self,
        data: bytes,
        page_sizes: list[tuple[float, float]],
        name: str | None,
        password: str | None = None,
    ):
        self._data = data
        self._password = password
        self.name = name
        self.page_sizes = page_sizes
        self._plumber: PDF | None = None
        #: The pages prepare_layout() walked already (so iter_pages does not walk them again).
        self._walked: list[PDFPage] = []
        #: Remarks for the result, e.g. that the file was repaired (see :meth:`prepare_layout`).
        self.notes: list[str] = []

    def prepare_layout(self, last_page: int | None = None) -> None:
        """Make sure pdfminer can read the file up to ``last_page`` (default: the last page);
        repair it with qpdf when it cannot.

        PDFium has read the file already (:func:`open_document`); where pdfminer cannot (it
        finds fewer pages, or its parser fails or recurses without end), the file is rewritten
        by qpdf and the copy is used from here on, with a note in :attr:`notes` and one log
        line. Call it before reporting any progress: it can still refuse the document.

        Raises:
            CorruptPdf: pdfminer cannot read the file even after the repair.
        """
        pages = self.page_count if last_page is None else last_page
        problem = self._open_layout(pages)
        if problem is None:
            return
        try:
            repaired = repair(self._data, self._password)
        except CorruptPdf:
            if self._open_layout(pages, page_boxes=False) is not None:
                raise
            return  # only pages without a size, which qpdf cannot read: they fail one by one
        original = self._data, self._password
        self._data, self._password = repaired, None
        # (a page that has no size anywhere stays so after the repair: it fails on its own)
        if self._open_layout(pages, page_boxes=False) is not None:
            self._data, self._password = original
            raise CorruptPdf(
                "The PDF is damaged: its pages can be counted but not laid out, even after an "
                "automatic repair. Open it in a PDF viewer and save or print it to a new PDF, "
                "then upload that file."
            )
        log.warning("%s: %s; processing a copy repaired by qpdf", self.name or "PDF", problem)
        self.notes.append(
            f"The file is damaged ({problem}); it was {REPAIRED} (qpdf) and the repaired copy "
            "was processed. Check the result against the original."
        )

    def _open_layout(self, pages: int, *, page_boxes: bool = True) -> str | None:
        """Open pdfplumber on the current data and walk the first ``pages`` pages; keep both
        for :meth:`iter_pages` when pdfminer reads them, else close and return the problem."""
        self.close()

        def open_plumber() -> PDFDocument:
            self._plumber = pdfplumber.open(io.BytesIO(self._data), password=self._password)
            return self._plumber.doc

        problem, walked = layout_problem(open_plumber, pages, page_boxes=page_boxes)
        if problem is not None:
            self.close()
        self._walked = walked
        return problem

    @property
    def data(self) -> bytes:
        """The bytes being processed: the file as given, or its repaired copy once
        :meth:`prepare_layout` repaired it (unencrypted then). A caller that fans a document out
        in page ranges can store this copy, so the parts need not repair it again."""
        return self._data

    @property
    def page_count(self) -> int:
        return len(self.page_sizes)

    def page_info(self, number: int) -> PageInfo:
        width, height = self.page_sizes[number - 1]
        return PageInfo(number=number, width=width, height=height)

    def pages_info(self) -> list[PageInfo]:
        return [self.page_info(n) for n in range(1, self.page_count + 1)]

    def render_page(self, number: int, dpi: int) -> Image.Image:
        """Page ``number`` (1-based) as an RGB image at ``dpi``, rendered by PDFium."""
        return _render_page(self._data, self._password, number, dpi)

    def check_range(self, first_page: int, last_page: int | None) -> tuple[int, int]:
        """Resolve ``last_page=None`` to the last page and validate the range (1-based, inclusive).

        Raises:
            InvalidPageRange: the range is empty or outside the document.
        """
        last = self.page_count if last_page is None else last_page
        if not 1 <= first_page <= last <= self.page_count:
            raise InvalidPageRange(
                f"Pages {first_page}–{last} were requested but the document has pages "
                f"1–{self.page_count}."
            )
        return first_page, last

    def iter_pages(
        self, first_page: int, last_page: int, *, max_content_bytes: int | None = None
    ) -> Iterator[PageSlot]:
        """Yield each page of the range, opened by pdfplumber, or with the reason it failed.

        The caller should ``page.close()`` each page when done with it (drops pdfplumber's
        per-page caches, so memory stays flat over long documents).

        Raises:
            ContentTooLarge: (while iterating) a page holds more than ``max_content_bytes`` of
                decompressed drawing instructions (:func:`~tasks.pdf.content.page_content_size`);
                measured before pdfplumber parses the page, which would cost about 1 GiB of
                memory per MiB of dense text.
        """
        if self._plumber is None:
            try:
                self._plumber = pdfplumber.open(io.BytesIO(self._data), password=self._password)
            except Exception as exc:  # prepare_layout() was skipped, or pdfminer disagrees
                reason = RECURSION_REASON if is_recursion(exc) else "its structure is broken"
                raise CorruptPdf(
                    f"The PDF is damaged and its pages cannot be laid out ({reason}). Open it in "
                    "a PDF viewer and save or print it to a new PDF, then upload that file."
                ) from None
        plumber = self._plumber
        pages: Iterator[PDFPage]
        if len(self._walked) >= last_page:
            pages = iter(self._walked)
        else:
            pages = PDFPage.create_pages(plumber.doc)
        doctop = 0.0
        number = 0
        while number < last_page:
            number += 1
            try:
                pdfpage = next(pages)
            except StopIteration:
                pdfpage = None
                error = f"Page {number} is missing from the page tree and cannot be read."
            except Exception as exc:  # pdfminer raises many types on broken page trees
                pdfpage = None
                error = f"Page {number} cannot be found in the page tree ({_describe(exc)})."
            if number < first_page:
                continue
            info = self.page_info(number)
            if pdfpage is None:
                pages = iter(())  # the tree is unusable from here on
                yield PageSlot(number, info, None, error)
                continue
            if max_content_bytes is not None and (
                page_content_size(pdfpage, max_content_bytes) > max_content_bytes
            ):
                raise ContentTooLarge(number, max_content_bytes)
            try:
                page = Page(plumber, pdfpage, page_number=number, initial_doctop=doctop)
            except Exception as exc:
                error = f"Page {number} cannot be parsed ({_describe(exc)})."
                yield PageSlot(number, info, None, error)
                continue
            doctop += float(page.height)
            yield PageSlot(number, info, page)

    def close(self) -> None:
        if self._plumber is not None:
            # Not PDF.close(): it closes every page in ``PDF.pages``, which first builds them all
            # (and fails again on a broken one). Our pages were closed one by one, and the
            # stream is our own BytesIO, so dropping the caches is all that is left.
            self._plumber.flush_cache()
            self._plumber = None
        self._walked = []

    def __enter__(self) -> PdfDocument:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_document(
    source: PdfSource,
    *,
    password: str | None = None,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> PdfDocument:
    """Read and validate a PDF; the document is checked in full before anything is returned.

    Args:
        source: a path or the file's bytes.
        password: the user (or owner) password of an encrypted file.
        max_pages: refuse documents with more pages than this.

    Raises:
        NotAPdf, TruncatedPdf, CorruptPdf, EncryptedPdf, EmptyPdf, TooManyPages: each with a
            ``reason`` to show to the user. ``OSError`` if the path cannot be read.
    """
    if isinstance(source, bytes):
        data, name = source, None
    else:
        path = Path(source)
        data, name = path.read_bytes(), path.name
    if not data:
        raise NotAPdf("The file is empty.")
    if b"%PDF-" not in data[:_HEADER_WINDOW]:
        raise NotAPdf("The file is not a PDF (it does not start with a %PDF- header).")
    sizes = page_sizes(data, password)
    if not sizes:
        raise EmptyPdf("The PDF has no pages.")
    if len(sizes) > max_pages:
        raise TooManyPages(len(sizes), max_pages)
    return PdfDocument(data, sizes, name, password)


def _describe(exc: BaseException) -> str:
    if is_recursion(exc):
        return RECURSION_REASON
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {text[:200]}"
