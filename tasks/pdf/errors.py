"""Why a PDF was refused, as typed exceptions with a sentence a person can act on.

::

    PdfRejected(reason)          the document cannot be processed (a 4xx / processing_failed)
    ├── NotAPdf                  no ``%PDF-`` header in the first 1024 bytes, or empty
    ├── CorruptPdf               the structure cannot be read
    │   └── TruncatedPdf         ... and the file has no ``%%EOF`` at its end: it was cut off
    ├── EncryptedPdf             needs a password that was not given (or was wrong)
    ├── EmptyPdf                 a valid PDF with zero pages
    ├── TooManyPages             more pages than the configured limit
    └── InvalidPageRange         first_page/last_page outside the document
    ProcessingCancelled          the caller's cancel check said stop (not a rejection)

A page that fails to parse is *not* an exception: :func:`tasks.pdf.process_document` reports a
failed zone for it and processes the other pages (see :class:`tasks.pdf.result.PageResult`),
unless every page of the range fails: then it raises :class:`CorruptPdf` after reporting them.

Every :class:`PdfRejected` has a stable ``code`` (for the REST API and the ``error_type`` of a
``processing_failed`` event) and ``reason``, the human-readable sentence that ``str()`` returns.
"""

from __future__ import annotations

__all__ = [
    "RECURSION_REASON",
    "CorruptPdf",
    "EmptyPdf",
    "EncryptedPdf",
    "InvalidPageRange",
    "NotAPdf",
    "PdfRejected",
    "ProcessingCancelled",
    "TooManyPages",
    "TruncatedPdf",
    "is_recursion",
]

#: What a RecursionError inside pdfminer means for the file, in words a user can act on.
RECURSION_REASON = "its objects refer to each other in a loop or are nested too deeply"


class PdfRejected(Exception):
    """The document cannot be processed; ``reason`` says why in words a user understands.

    Attributes:
        reason: one sentence, safe to show to the uploader (no paths, no tracebacks).
        code: a stable machine-readable name of the rejection.
    """

    code = "pdf_rejected"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class NotAPdf(PdfRejected):
    code = "not_a_pdf"


class CorruptPdf(PdfRejected):
    code = "corrupt_pdf"


class TruncatedPdf(CorruptPdf):
    code = "truncated_pdf"


class EncryptedPdf(PdfRejected):
    code = "encrypted_pdf"


class EmptyPdf(PdfRejected):
    code = "empty_pdf"


class TooManyPages(PdfRejected):
    """Attributes ``page_count`` and ``limit`` carry the numbers."""

    code = "too_many_pages"

    def __init__(self, page_count: int, limit: int) -> None:
        super().__init__(
            f"The document has {page_count} pages; at most {limit} pages can be processed."
        )
        self.page_count = page_count
        self.limit = limit


class InvalidPageRange(PdfRejected):
    code = "invalid_page_range"


class ProcessingCancelled(Exception):
    """The caller's ``should_stop`` callback returned true; partial results are discarded."""

    def __init__(self, reason: str = "Processing was cancelled.") -> None:
        super().__init__(reason)
        self.reason = reason


def is_recursion(exc: BaseException | None) -> bool:
    """True for a RecursionError, also when a library wrapped it in its own exception.

    pdfminer recurses along reference chains; on a file whose chain loops it hits Python's
    recursion limit, and the ~1000-frame traceback and "maximum recursion depth exceeded" say
    nothing useful to the uploader: callers report :data:`RECURSION_REASON` instead.
    """
    for _ in range(10):
        if exc is None:
            return False
        if isinstance(exc, RecursionError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
