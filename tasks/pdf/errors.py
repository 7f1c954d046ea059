"""Why a PDF was refused, as typed exceptions with a sentence a person can act on.

::

    PdfRejected(reason)          the document cannot be processed (a 4xx / processing_failed)
    ├── NotAPdf                  no ``%PDF-`` header in the first 1024 bytes, or empty
    ├── CorruptPdf               the structure cannot be read
    │   └── TruncatedPdf         ... and the file has no ``%%EOF`` at its end: it was cut off
    ├── EncryptedPdf             needs a password that was not given (or was wrong)
    ├── EmptyPdf                 a valid PDF with zero pages
    ├── TooManyPages             more pages than the configured limit
    ├── InvalidPageRange         first_page/last_page outside the document
    └── LimitExceeded            processing the document would cost more than a job may use
        ├── ContentTooLarge      a page's drawing instructions, decompressed, exceed the bound
        ├── MemoryLimitReached   the job's worker process grew past its memory limit
        └── TimeLimitReached     the job ran past its time limit
    ProcessingCancelled          the caller's cancel check said stop (not a rejection)

The :class:`LimitExceeded` family protects the workers from files that are small on disk but
enormous to process (a "decompression bomb": a few KiB whose content streams inflate to many
MiB). :class:`ContentTooLarge` is raised here, by :func:`tasks.pdf.process_document`; the
memory and time limits are enforced by the Celery tasks (``tasks/pdf_tasks.py``), which raise
the other two so a job ends with the same kind of reason whichever bound stopped it.

A page that fails to parse is *not* an exception: :func:`tasks.pdf.process_document` reports a
failed zone for it and processes the other pages (see :class:`tasks.pdf.result.PageResult`),
unless every page of the range fails: then it raises :class:`CorruptPdf` after reporting them.

Every :class:`PdfRejected` can be rebuilt from its ``args`` (the arguments it was made with), so
it survives pickling and Celery's JSON result backend as its own type. Every one has a stable
``code`` (for the REST API and the ``error_type`` of a
``processing_failed`` event) and ``reason``, the human-readable sentence that ``str()`` returns.
"""

from __future__ import annotations

__all__ = [
    "RECURSION_REASON",
    "ContentTooLarge",
    "CorruptPdf",
    "EmptyPdf",
    "EncryptedPdf",
    "InvalidPageRange",
    "LimitExceeded",
    "MemoryLimitReached",
    "NotAPdf",
    "PdfRejected",
    "ProcessingCancelled",
    "TimeLimitReached",
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
        self.args = (page_count, limit)  # rebuildable: TooManyPages(*args)
        self.page_count = page_count
        self.limit = limit


class InvalidPageRange(PdfRejected):
    code = "invalid_page_range"


class LimitExceeded(PdfRejected):
    """A bound on what one job may use was reached; the reason names the bound and its value."""

    code = "limit_exceeded"


_INFLATED = (
    "Small files can hold content that takes far more room and time to process than their size "
    "suggests, on purpose or by a fault of the program that wrote them."
)
_WHAT_TO_DO = (
    "Print the document to a new PDF (or save the heavy pages as images) and upload that file, "
    "or split it into smaller files."
)


def _mib(size: float) -> str:
    return f"{size / 1024 / 1024:.0f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KiB"


class ContentTooLarge(LimitExceeded):
    """Attributes ``page`` and ``limit`` (bytes of decompressed drawing instructions)."""

    code = "content_too_large"

    def __init__(self, page: int, limit: int) -> None:
        super().__init__(
            f"Page {page} holds more than {_mib(limit)} of drawing instructions once "
            f"decompressed, the most one page may hold. {_INFLATED} {_WHAT_TO_DO}"
        )
        self.args = (page, limit)
        self.page = page
        self.limit = limit


class MemoryLimitReached(LimitExceeded):
    """Attribute ``limit``: the bytes the job's worker process may hold."""

    code = "memory_limit"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Processing was stopped because it needed more than {_mib(limit)} of memory, the "
            f"most one job may use. {_INFLATED} {_WHAT_TO_DO}"
        )
        self.args = (limit,)
        self.limit = limit


class TimeLimitReached(LimitExceeded):
    """Attributes ``seconds`` (the limit that was reached) and ``pages`` (what it was for, when
    known)."""

    code = "time_limit"

    def __init__(self, seconds: float, pages: int | None) -> None:
        what = "this document" if pages is None else "1 page" if pages == 1 else f"{pages} pages"
        super().__init__(
            f"Processing was stopped after {seconds:.0f} s, the time allowed for {what}. "
            f"{_INFLATED} {_WHAT_TO_DO}"
        )
        self.args = (seconds, pages)
        self.seconds = seconds
        self.pages = pages


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
